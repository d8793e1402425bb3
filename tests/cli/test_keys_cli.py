"""``staked keys new`` and ``staked keys address``: keystores made from the shell, the key never shown."""

from __future__ import annotations

import json
import os
import select
import stat
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner, Result

from staked.chain_cli import keys
from staking import KEYSTORE_PASSWORD_ENV, load_keystore

PASSWORD = "correct horse battery staple"


def staked_keys(*args: str, password: str | None = PASSWORD) -> Result:
    env = {KEYSTORE_PASSWORD_ENV: password}  # None unsets it
    return CliRunner().invoke(keys, list(args), env=env)


def test_new_writes_an_owner_only_keystore_and_prints_only_its_address(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "operator.json"  # the folder is made too
    result = staked_keys("new", str(path))
    assert result.exit_code == 0, result.output
    account = load_keystore(path, PASSWORD)
    assert result.stdout == f"{account.address}\n"
    assert account.key.hex() not in path.read_text()  # encrypted: the key is in neither output nor file
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    shown = staked_keys("address", str(path), password=None)
    assert (shown.exit_code, shown.stdout) == (0, f"{account.address}\n")


def test_new_refuses_to_overwrite_a_keystore_unless_forced(tmp_path: Path) -> None:
    path = tmp_path / "signer.json"
    first = staked_keys("new", str(path))
    assert first.exit_code == 0, first.output
    kept = path.read_text()

    again = staked_keys("new", str(path))
    assert again.exit_code == 1
    assert f"Error: {path} exists: pass --force to replace it (the key in it is lost)" in again.output
    assert path.read_text() == kept

    forced = staked_keys("new", str(path), "--force")
    assert forced.exit_code == 0, forced.output
    replacement = load_keystore(path, PASSWORD)
    assert forced.stdout == f"{replacement.address}\n" != first.stdout
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [entry.name for entry in tmp_path.iterdir()] == ["signer.json"]  # nothing left aside


def test_new_refuses_an_empty_password_and_a_missing_one_without_a_terminal(tmp_path: Path) -> None:
    empty = staked_keys("new", str(tmp_path / "a.json"), password="")
    assert empty.exit_code == 1
    assert "Error: refusing an empty password" in empty.output
    missing = staked_keys("new", str(tmp_path / "a.json"), password=None)
    assert missing.exit_code == 1
    assert f"Error: no password for {tmp_path / 'a.json'}: set {KEYSTORE_PASSWORD_ENV} or run on a terminal" in (
        missing.output
    )
    assert not (tmp_path / "a.json").exists()


def test_new_asks_for_the_password_twice_on_a_terminal(tmp_path: Path) -> None:
    path = tmp_path / "typed.json"
    env = {name: value for name, value in os.environ.items() if name != KEYSTORE_PASSWORD_ENV}
    controller, terminal = os.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "staked", "keys", "new", str(path)],
        stdin=terminal,
        stdout=subprocess.PIPE,
        stderr=terminal,
        env=env,
        start_new_session=True,  # no controlling terminal: the prompt reads the pseudo-terminal on stdin
    )
    os.close(terminal)
    try:
        for prompt in (b"password for", b"Repeat for confirmation"):
            _read_until(controller, prompt)
            os.write(controller, PASSWORD.encode() + b"\n")
        stdout, _ = process.communicate(timeout=60)
    finally:
        os.close(controller)
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0
    assert stdout.decode() == f"{load_keystore(path, PASSWORD).address}\n"


def test_address_needs_no_password_and_refuses_what_is_not_a_keystore(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    path.write_text(json.dumps({"address": "f39fd6e51aad88f6f4ce6ab8827279cfffb92266", "crypto": {}}))
    shown = staked_keys("address", str(path), password=None)
    assert (shown.exit_code, shown.stdout) == (0, "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266\n")

    path.write_text('{"crypto": {}}')
    no_address = staked_keys("address", str(path))
    assert no_address.exit_code == 1
    assert f"Error: {path} is not a keystore: it has no address field" in no_address.output
    path.write_text("not json")
    assert "is not a keystore: not readable JSON" in staked_keys("address", str(path)).output
    missing = staked_keys("address", str(tmp_path / "nowhere.json"))
    assert missing.exit_code == 2
    assert "does not exist" in missing.output


def _read_until(fd: int, text: bytes, timeout: float = 30.0) -> None:
    seen = b""
    deadline = time.monotonic() + timeout
    while text not in seen:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no {text!r} on the terminal; it shows {seen!r}"
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            seen += os.read(fd, 1024)
