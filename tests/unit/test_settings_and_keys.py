from __future__ import annotations

from pathlib import Path

import pytest
from eth_account import Account

from staking import ChainSettings, ConfigError, account_from_env, create_keystore, load_keystore
from staking.keys import KEYSTORE_PASSWORD_ENV


def test_file_values_are_overridden_by_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "staked.toml"
    config.write_text('[chain]\nrpc_url = "http://10.0.0.1:8545"\nconfirmations = 2\n')
    assert ChainSettings.load(config).confirmations == 2
    monkeypatch.setenv("STAKED_CONFIRMATIONS", "4")
    settings = ChainSettings.load(config)
    assert (settings.rpc_url, settings.confirmations) == ("http://10.0.0.1:8545", 4)


def test_defaults_without_a_file() -> None:
    assert ChainSettings.load().rpc_url == "http://127.0.0.1:8545"


@pytest.mark.parametrize(
    ("content", "field"),
    [('[chain]\nconfirmations = -1\n', "confirmations"), ('[chain]\nrpc_url = "ftp://x"\n', "rpc_url"),
     ('[chain]\nno_such_setting = 1\n', "no_such_setting")],
)  # fmt: skip
def test_a_wrong_value_names_its_field(tmp_path: Path, content: str, field: str) -> None:
    config = tmp_path / "staked.toml"
    config.write_text(content)
    with pytest.raises(ConfigError, match=field):
        ChainSettings.load(config)


def test_missing_or_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        ChainSettings.load(tmp_path / "absent.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[chain\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        ChainSettings.load(bad)


def test_keystore_round_trip_and_wrong_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "key.json"
    account = Account.create()
    assert create_keystore(path, "correct horse", account) == account.address
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_keystore(path, "correct horse").key == account.key
    monkeypatch.setenv(KEYSTORE_PASSWORD_ENV, "correct horse")
    assert load_keystore(path).address == account.address
    with pytest.raises(ConfigError, match="wrong password") as caught:
        load_keystore(path, "battery staple")
    assert caught.value.__cause__ is None  # nothing of the decryption leaks through the chain
    with pytest.raises(ConfigError, match="refusing to overwrite"):
        create_keystore(path, "another")


def test_keystore_without_a_password_source_fails_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "key.json"
    create_keystore(path, "pw")
    monkeypatch.delenv(KEYSTORE_PASSWORD_ENV, raising=False)
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    with pytest.raises(ConfigError, match=KEYSTORE_PASSWORD_ENV):
        load_keystore(path)


def test_account_from_env_never_shows_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    account = Account.create()
    monkeypatch.setenv("DEV_KEY", account.key.hex())
    assert account_from_env("DEV_KEY").address == account.address
    monkeypatch.setenv("DEV_KEY", "not-a-key-but-secret")
    with pytest.raises(ConfigError) as caught:
        account_from_env("DEV_KEY")
    assert "not-a-key-but-secret" not in str(caught.value)
    monkeypatch.delenv("DEV_KEY")
    with pytest.raises(ConfigError, match="not set"):
        account_from_env("DEV_KEY")
