"""``staked keys`` and ``staked deploy``: the keys and the deployment a real chain needs, and the pieces every
command shares to sign and to run (``--account``, running a coroutine, serving until a signal).

``staked devnet`` does both for a laptop (anvil's public development keys, default parameters). On a real chain an
operator makes keystores with ``staked keys new``, names one as the deployer in ``[chain]``, sets the parameters in
``[deployment]`` and runs ``staked deploy``; every other command then reads the deployment file it writes.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import sys
import tomllib
from collections.abc import Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, Final, TypeVar

import click
from eth_account.signers.local import LocalAccount
from eth_utils.address import is_address, to_checksum_address
from pydantic import ValidationError
from pydantic_core import ErrorDetails
from web3.contract.async_contract import AsyncContract, AsyncContractFunction
from web3.types import TxReceipt

from staking import (
    KEYSTORE_PASSWORD_ENV,
    ChainSettings,
    ConfigError,
    Deployment,
    DeploymentConfig,
    StakedError,
    Transactor,
    connect,
    create_keystore,
    deploy,
    format_open,
    to_wei_open,
)
from staking.deploy import OPEN_AMOUNT_PARAMETERS
from staking.devnet import devnet_account, load_devnet

__all__ = [
    "account_option",
    "config_option",
    "deploy_command",
    "devnet_signer",
    "echo_contracts",
    "keys",
    "run_async",
    "serve_until_signal",
]

_T = TypeVar("_T")
#: Where ``staked devnet`` records its named accounts; ``--account NAME`` reads it from the working directory.
_DEVNET_FILE: Final = Path(".staked/devnet.json")


# -- shared by the commands --------------------------------------------------------------------------------------


def config_option(signer: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--config FILE``: the TOML file whose ``[chain]`` table reaches the chain and holds ``signer``'s key."""
    return click.option(
        "--config",
        "config",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help=f"TOML file with a [chain] table ({signer}'s key); STAKED_* environment variables override it",
    )


def account_option(examples: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--account NAME``: sign as a devnet account (``examples`` lists likely names) instead of ``[chain]``'s key."""
    return click.option(
        "--account",
        "account_name",
        default=None,
        metavar="NAME",
        help=f"sign as this account of the running `staked devnet` ({examples}) instead of [chain]'s key",
    )


def devnet_signer(account_name: str | None) -> LocalAccount | None:
    """The key of devnet account ``account_name`` (``None`` when no name is given: then ``[chain]``'s key signs).

    Raises:
        ConfigError: no devnet file in the working directory, or no account of that name in it.
    """
    return devnet_account(load_devnet(_DEVNET_FILE), account_name) if account_name is not None else None


def run_async(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """Runs a command's coroutine; our errors end the command with their message, Ctrl-C ends it quietly."""
    try:
        return asyncio.run(coroutine)
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except StakedError as exc:
        raise click.ClickException(str(exc)) from exc


async def serve_until_signal(service: AbstractAsyncContextManager[_T], ready: Callable[[_T], str]) -> None:
    """Enters ``service``, prints ``ready(service)``, and leaves it (gracefully: the service drains) on SIGINT or
    SIGTERM. A signal during start-up stops the service as soon as it is up."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with service as running:
        click.echo(ready(running))
        await stop.wait()


def echo_contracts(deployment: Deployment) -> None:
    """One line per contract of ``deployment``: its name and address."""
    for name, address in deployment.contracts.model_dump().items():
        click.echo(f"  {name:<18} {address}")


# -- staked keys ---------------------------------------------------------------------------------------------------


@click.group()
def keys() -> None:
    """Create and read encrypted JSON keystores ([chain] keystore, [agent] signer_keystore)."""


@keys.command("new")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="replace FILE when it exists (the key in it is lost)")
def new_key(file: Path, force: bool) -> None:
    """Create FILE, a keystore of a new random key, and print its address (never the key).

    The password is $STAKED_KEYSTORE_PASSWORD, else asked twice on the terminal; it must not be empty. FILE is
    readable by its owner only (mode 0600), and an existing FILE is kept unless --force is given.
    """
    if file.exists() and not force:
        raise click.ClickException(f"{file} exists: pass --force to replace it (the key in it is lost)")
    password = _new_password(file)
    file.parent.mkdir(parents=True, exist_ok=True)
    try:
        if not force:
            address = create_keystore(file, password)
        else:
            # Written aside then renamed over FILE: the old key is only gone once the new one is on disk.
            temporary = file.with_name(f".{file.name}.{secrets.token_hex(4)}.new")
            try:
                address = create_keystore(temporary, password)
                temporary.replace(file)
            finally:
                temporary.unlink(missing_ok=True)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(address)


@keys.command("address")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def key_address(file: Path) -> None:
    """Print the address of keystore FILE, read from its "address" field (no password needed)."""
    try:
        document = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise click.ClickException(f"{file} is not a keystore: not readable JSON") from None
    address = document.get("address") if isinstance(document, dict) else None
    if not isinstance(address, str) or not is_address(address):
        raise click.ClickException(f"{file} is not a keystore: it has no address field")
    click.echo(to_checksum_address(address))


def _new_password(file: Path) -> str:
    password = os.environ.get(KEYSTORE_PASSWORD_ENV)
    if password is None:
        if not sys.stdin.isatty():
            raise click.ClickException(f"no password for {file}: set {KEYSTORE_PASSWORD_ENV} or run on a terminal")
        password = click.prompt(f"password for {file}", hide_input=True, confirmation_prompt=True, err=True)
    if not password:
        raise click.ClickException("refusing an empty password: it is all that protects the key on disk")
    return password


# -- staked deploy ------------------------------------------------------------------------------------------------


def _parameters_help() -> str:
    """The ``[deployment]`` table with every default, as the help of ``staked deploy`` shows it."""
    lines = ["\b", "[deployment]"]
    for name, value in DeploymentConfig().model_dump().items():
        if name == "disputes":
            lines.append("[deployment.disputes]")
            lines += [_parameter_line("disputes." + key, default) for key, default in value.items()]
        else:
            lines.append(_parameter_line(name, value))
    return "\n".join(lines)


def _parameter_line(name: str, default: object) -> str:
    key = name.rpartition(".")[2]
    if default is None:
        return f'# {key} = "0x..."  # an address; the deployer by default'
    if name in OPEN_AMOUNT_PARAMETERS:
        return f'{key} = "{format_open(int(str(default)))}"  # OPEN'
    return f"{key} = {default}  # {'basis points' if key.endswith('_bps') else 'seconds'}"


_DEPLOY_HELP: Final = f"""Deploy the contract suite from [chain]'s key; write the deployment file other commands read.

The parameters come from the [deployment] table of the config file; every key is optional (below with its
default). Durations are seconds, shares basis points, amounts decimal OPEN as a string or an integer ("0.5", 1000;
never a float). A bad value stops the command, naming the field, before anything is sent.

{_parameters_help()}
"""


@click.command("deploy", help=_DEPLOY_HELP)
@click.option(
    "--config",
    "config",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="TOML file: [chain] names the RPC endpoint and the deployer's key (keystore or private_key_env), "
    "[deployment] the parameters; STAKED_* variables override [chain]",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="where to write the deployment file  [default: [chain] deployment_file]",
)
@click.option("--force", is_flag=True, help="replace an existing deployment file (its contracts stay on chain)")
@click.option("--json", "as_json", is_flag=True, help="print the file written, the gas used and the deployment as JSON")
def deploy_command(config: Path, out: Path | None, force: bool, as_json: bool) -> None:
    try:
        settings = ChainSettings.load(config)
    except StakedError as exc:
        raise click.ClickException(str(exc)) from exc
    parameters = _deployment_config(config)
    out = out or settings.deployment_file
    if out.exists() and not force:
        raise click.ClickException(f"{out} exists: pass --force to replace it, or --out to write elsewhere")
    deployment, gas = run_async(_deploy_suite(settings, parameters))
    out.parent.mkdir(parents=True, exist_ok=True)
    deployment.save(out)
    if as_json:
        document = {"file": str(out), "gas_used": gas, "deployment": deployment.model_dump(mode="json")}
        click.echo(json.dumps(document, indent=2))
        return
    click.echo(
        f"deployed to chain {deployment.chain_id} from block {deployment.block} by {deployment.deployer} "
        f"(gas {gas:,}); wrote {out}"
    )
    echo_contracts(deployment)


async def _deploy_suite(settings: ChainSettings, parameters: DeploymentConfig) -> tuple[Deployment, int]:
    """Deploys the suite with ``parameters`` from the key ``settings`` name; returns it and the gas it used.

    Raises:
        ConfigError: no deployer key, or it has no ETH for gas.
        ChainError: the chain is unavailable, or a deployment transaction failed.
    """
    account = await settings.signing_account()
    if account is None:
        raise ConfigError("deploying needs the deployer's key: set keystore (or private_key_env) in [chain]")
    w3 = await connect(settings.rpc_url)
    try:
        chain_id = await w3.eth.chain_id
        if await w3.eth.get_balance(account.address) == 0:
            raise ConfigError(f"the deployer {account.address} has no ETH on chain {chain_id} to pay for gas")
        sender = _MeteredTransactor(w3, account, **settings.transactor_options())
        click.echo(f"deploying to chain {chain_id} at {settings.rpc_url} from {account.address} ...", err=True)
        return await deploy(sender, parameters), sender.gas_used
    finally:
        await w3.provider.disconnect()


class _MeteredTransactor(Transactor):
    """A :class:`Transactor` that adds up the gas its transactions used: what a deployment cost."""

    gas_used: int = 0

    async def send(self, call: AsyncContractFunction, *, value: int = 0, action: str | None = None) -> TxReceipt:
        receipt = await super().send(call, value=value, action=action)
        self.gas_used += receipt["gasUsed"]
        return receipt

    async def deploy(self, name: str, *args: Any) -> tuple[AsyncContract, TxReceipt]:
        contract, receipt = await super().deploy(name, *args)
        self.gas_used += receipt["gasUsed"]
        return contract, receipt


def _deployment_config(path: Path) -> DeploymentConfig:
    """The ``[deployment]`` table of ``path`` (the defaults when it has none), amounts converted to wei.

    Raises:
        click.ClickException: a value is invalid; the message names the field.
    """
    with path.open("rb") as file:  # readable TOML: ChainSettings.load has read it
        table = tomllib.load(file).get("deployment", {})
    if not isinstance(table, dict):
        raise click.ClickException(f"invalid [deployment] in {path}: it must be a table")
    try:
        return DeploymentConfig.model_validate(_amounts_in_wei(table))
    except ValidationError as exc:
        problems = "; ".join(_problem(error) for error in exc.errors(include_url=False))
    except ValueError as exc:  # an amount of OPEN
        problems = str(exc)
    raise click.ClickException(f"invalid [deployment] in {path}: {problems}")


def _amounts_in_wei(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``table`` with its amounts of OPEN in wei.

    Raises:
        ValueError: an amount is not decimal OPEN; the message names it.
    """
    converted: dict[str, Any] = {}
    for key, value in table.items():
        name = prefix + key
        if isinstance(value, dict):
            converted[key] = _amounts_in_wei(value, name + ".")
        elif name in OPEN_AMOUNT_PARAMETERS:
            converted[key] = _open_amount(name, value)
        else:
            converted[key] = value
    return converted


def _open_amount(name: str, value: object) -> int:
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise ValueError(f'{name}: write OPEN as a string or an integer ("0.5", 1000), not {value!r}')
    try:
        return to_wei_open(value)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None


def _problem(error: ErrorDetails) -> str:
    """One validation error as ``field: what is wrong``, with amount bounds in OPEN as they were written."""
    where = ".".join(str(part) for part in error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    bounds = error.get("ctx", {})
    if where in OPEN_AMOUNT_PARAMETERS and "ge" in bounds:
        message = f"must be at least {format_open(int(bounds['ge']))} OPEN"
    elif where in OPEN_AMOUNT_PARAMETERS and "le" in bounds:
        message = f"must be at most {format_open(int(bounds['le']))} OPEN"
    elif error["type"] == "extra_forbidden":
        message = "no such parameter"
    return f"{where}: {message}" if where else message
