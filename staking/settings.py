"""Chain settings of a process: a TOML file's ``[chain]`` table, overridden by ``STAKED_*`` environment variables.

Example ``staked.toml``::

    [chain]
    rpc_url = "https://l2.example/rpc"
    deployment_file = "deployment.json"
    keystore = "keys/agent.json"
    confirmations = 2

``STAKED_CONFIRMATIONS=4`` then wins over the file. A wrong value fails at start-up with a message naming the field.
"""

from __future__ import annotations

import asyncio
import tomllib
from contextvars import ContextVar
from pathlib import Path
from typing import Any, ClassVar, Self

from eth_account.signers.local import LocalAccount
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from .errors import ConfigError
from .keys import account_from_env, load_keystore

__all__ = ["ChainSettings", "TomlTableSettings"]

# The file `ChainSettings.load` reads; a context variable so concurrent loads of different files cannot mix.
_CONFIG_FILE: ContextVar[Path | None] = ContextVar("staked_config_file", default=None)


class _TomlTable(PydanticBaseSettingsSource):
    """The ``[chain]`` table of the file being loaded (nothing when no file is)."""

    def __init__(self, settings_cls: type[BaseSettings], table: str) -> None:
        super().__init__(settings_cls)
        self._table = table

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover - unused
        raise NotImplementedError("values are read all at once in __call__")

    def __call__(self) -> dict[str, Any]:
        path = _CONFIG_FILE.get()
        if path is None:
            return {}
        try:
            with path.open("rb") as file:
                document = tomllib.load(file)
        except FileNotFoundError as exc:
            raise ConfigError(f"config file {path} not found") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
        table = document.get(self._table, {})
        if not isinstance(table, dict):
            raise ConfigError(f"config file {path}: [{self._table}] must be a table")
        return table


class TomlTableSettings(BaseSettings):
    """Settings read from one table of a TOML file (``toml_table``), overridden by environment variables.

    Subclasses name their table and their environment prefix; :meth:`load` reads both.
    """

    toml_table: ClassVar[str]

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _TomlTable(settings_cls, cls.toml_table)

    @classmethod
    def load(cls, path: str | Path | None = None) -> Self:
        """Reads ``path`` (optional) and the environment.

        Raises:
            ConfigError: the file is missing or malformed, or a value is invalid (the message names the field).
        """
        token = _CONFIG_FILE.set(Path(path) if path is not None else None)
        try:
            return cls()
        except ValidationError as exc:
            raise ConfigError(f"invalid [{cls.toml_table}] settings: {exc}") from exc
        finally:
            _CONFIG_FILE.reset(token)


class ChainSettings(TomlTableSettings):
    """How a process reaches the chain and signs. One instance per process, built by :meth:`load`."""

    model_config = SettingsConfigDict(env_prefix="STAKED_", extra="forbid", frozen=True)
    toml_table: ClassVar[str] = "chain"

    rpc_url: str = Field("http://127.0.0.1:8545", pattern=r"^(https?|wss?)://", description="JSON-RPC endpoint")
    deployment_file: Path = Field(Path(".staked/deployment.json"), description="written by deploy/devnet")
    keystore: Path | None = Field(None, description="encrypted JSON keystore of the signing account")
    private_key_env: str | None = Field(
        None, description="name of an environment variable holding a private key (development only)"
    )
    confirmations: int = Field(0, ge=0, le=64, description="blocks to wait after inclusion")
    gas_margin: float = Field(1.2, ge=1.0, le=3.0, description="factor over the gas estimate")
    poll_interval: float = Field(0.05, gt=0, le=10, description="seconds between receipt polls")
    receipt_timeout: float = Field(120.0, gt=0, description="seconds to wait for inclusion")

    async def signing_account(self) -> LocalAccount | None:
        """The account these settings sign with: the keystore's, else the environment variable's, else ``None``.

        Raises:
            ConfigError: the keystore cannot be read or decrypted, or the variable holds no valid key.
        """
        if self.keystore is not None:
            return await asyncio.to_thread(load_keystore, self.keystore)  # scrypt: keep it off the loop
        if self.private_key_env is not None:
            return account_from_env(self.private_key_env)
        return None

    def transactor_options(self) -> dict[str, Any]:
        """How a :class:`~staking.Transactor` built from these settings sends: confirmations, gas margin, polling."""
        return {
            "confirmations": self.confirmations,
            "gas_margin": self.gas_margin,
            "poll_interval": self.poll_interval,
            "receipt_timeout": self.receipt_timeout,
        }
