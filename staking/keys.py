"""Signing keys: from an encrypted JSON keystore (EIP-2335-style scrypt, as eth-account writes it) or, for
development, from an environment variable. A key is never printed, logged or put in an error message.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from .errors import ConfigError

__all__ = ["KEYSTORE_PASSWORD_ENV", "account_from_env", "create_keystore", "load_keystore"]

#: Environment variable holding a keystore's password, for daemons that cannot be asked.
KEYSTORE_PASSWORD_ENV = "STAKED_KEYSTORE_PASSWORD"


def load_keystore(path: str | Path, password: str | None = None) -> LocalAccount:
    """Decrypts the keystore at ``path``.

    The password is ``password`` if given, else ``$STAKED_KEYSTORE_PASSWORD``, else asked on the terminal.
    Decryption runs scrypt and takes about a second: from async code, call it through ``asyncio.to_thread``.

    Raises:
        ConfigError: the file is missing or not a keystore, no password is available, or it is wrong.
    """
    path = Path(path)
    try:
        keystore = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"keystore {path} not found") from exc
    except (OSError, ValueError) as exc:
        raise ConfigError(f"keystore {path} is not readable JSON") from exc
    secret = password if password is not None else _password_for(path)
    try:
        private_key = Account.decrypt(keystore, secret)
    except ValueError:  # eth-account says "MAC mismatch" for a wrong password; nothing of the key leaks here
        raise ConfigError(f"cannot decrypt keystore {path}: wrong password or corrupt file") from None
    account: LocalAccount = Account.from_key(private_key)
    return account


def create_keystore(path: str | Path, password: str, account: LocalAccount | None = None) -> str:
    """Writes ``account`` (a new random one when omitted) encrypted with ``password``; returns its address.

    Raises:
        ConfigError: ``path`` exists already (a keystore is never overwritten) or the password is empty.
    """
    path = Path(path)
    if not password:
        raise ConfigError("a keystore needs a non-empty password")
    account = account or Account.create()
    keystore = Account.encrypt(account.key, password)
    try:
        with path.open("x", encoding="utf-8") as file:  # "x": fail rather than overwrite a key
            json.dump(keystore, file)
    except FileExistsError as exc:
        raise ConfigError(f"{path} exists; refusing to overwrite a keystore") from exc
    path.chmod(0o600)
    return str(account.address)


def account_from_env(variable: str) -> LocalAccount:
    """The account whose hex private key is in environment variable ``variable`` (development only).

    Raises:
        ConfigError: the variable is unset or does not hold a private key (its value is never shown).
    """
    value = os.environ.get(variable)
    if not value:
        raise ConfigError(f"environment variable {variable} is not set")
    try:
        account: LocalAccount = Account.from_key(value)
    except (ValueError, TypeError):
        raise ConfigError(f"environment variable {variable} does not hold a valid private key") from None
    return account


def _password_for(path: Path) -> str:
    password = os.environ.get(KEYSTORE_PASSWORD_ENV)
    if password is not None:
        return password
    if not sys.stdin.isatty():
        raise ConfigError(f"no password for keystore {path}: set {KEYSTORE_PASSWORD_ENV} or run interactively")
    return getpass.getpass(f"password for {path}: ")
