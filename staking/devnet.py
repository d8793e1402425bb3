"""``staked devnet``: anvil, the deployed suite, and named development accounts funded with OPEN.

Development accounts are anvil's, derived from its public mnemonic, so no private key is ever written to disk: the
devnet file records each name's derivation index and address, and :func:`devnet_account` derives the key again.
"""

from __future__ import annotations

from pathlib import Path

from eth_account.signers.local import LocalAccount
from pydantic import BaseModel, ConfigDict, Field

from .anvil import dev_accounts
from .deploy import Deployment, DeploymentConfig, deploy
from .errors import ConfigError
from .transactions import Transactor
from .units import to_wei_open

__all__ = ["DevnetAccount", "DevnetInfo", "devnet_account", "load_devnet", "start_devnet_suite"]

#: How many accounts of each kind a devnet names, and the OPEN each receives.
_ROLES = (("agent", 2, 10_000), ("validator", 2, 10_000), ("payer", 2, 1_000), ("contributor", 3, 0))


class DevnetAccount(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    address: str
    index: int = Field(ge=0, description="derivation index under anvil's public development mnemonic")


class DevnetInfo(BaseModel):
    """What ``staked devnet`` writes next to the deployment file."""

    model_config = ConfigDict(frozen=True)

    rpc_url: str
    deployment: Deployment
    accounts: tuple[DevnetAccount, ...]

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")

    def account(self, name: str) -> DevnetAccount:
        """The account called ``name`` (``treasury``, ``agent-1``, ``validator-2``, ...)."""
        for account in self.accounts:
            if account.name == name:
                return account
        raise ConfigError(f"no devnet account {name!r}; known: {', '.join(a.name for a in self.accounts)}")


def account_count() -> int:
    """Accounts anvil must fund with ETH for a devnet: the treasury (deployer) plus every named role."""
    return 1 + sum(count for _, count, _ in _ROLES)


async def start_devnet_suite(rpc_url: str, treasury: Transactor) -> DevnetInfo:
    """Deploys the suite from ``treasury`` (anvil's first account) and funds the named accounts with OPEN."""
    deployment = await deploy(treasury, DeploymentConfig())
    token = deployment.contract(treasury.w3, "OpenToken")
    accounts = [DevnetAccount(name="treasury", address=treasury.address, index=0)]
    keys = dev_accounts(account_count())
    index = 1
    for role, count, open_each in _ROLES:
        for number in range(1, count + 1):
            key = keys[index]
            accounts.append(DevnetAccount(name=f"{role}-{number}", address=key.address, index=index))
            if open_each:
                await treasury.send(token.functions.transfer(key.address, to_wei_open(open_each)))
            index += 1
    return DevnetInfo(rpc_url=rpc_url, deployment=deployment, accounts=tuple(accounts))


def load_devnet(path: str | Path) -> DevnetInfo:
    """Reads a devnet file.

    Raises:
        ConfigError: it is missing (no devnet running from here) or invalid.
    """
    try:
        return DevnetInfo.model_validate_json(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path} not found: start `staked devnet` first") from exc
    except ValueError as exc:
        raise ConfigError(f"{path} is invalid: {exc}") from exc


def devnet_account(info: DevnetInfo, name: str) -> LocalAccount:
    """The signing account of devnet account ``name``."""
    return dev_accounts(info.account(name).index + 1)[-1]
