"""``staked``: the command line of the project."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import click
from rich.console import Console
from web3.types import TxReceipt

from staking import (
    Anvil,
    ChainSettings,
    Role,
    StakingClient,
    Transactor,
    connect,
    dev_accounts,
    format_open,
    to_wei_open,
)
from staking.devnet import account_count, start_devnet_suite

from .agent_cli import agent, call, pay
from .chain_cli import account_option, config_option, deploy_command, devnet_signer, echo_contracts, keys, run_async
from .datanet_cli import datanet
from .demo import prepare_demo_model, run_demo
from .model_cli import model, vllm
from .status import render_status
from .validator_cli import validator

__all__ = ["main"]

_ROLES = {"agent": Role.AGENT, "validator": Role.VALIDATOR}

role_argument = click.argument("role", type=click.Choice(sorted(_ROLES)))
staker_option = account_option("agent-1, validator-2, ...")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Stake OPEN, serve paid and verifiable inference, audit and slash."""


main.add_command(agent)
main.add_command(call)
main.add_command(datanet)
main.add_command(deploy_command)
main.add_command(keys)
main.add_command(model)
main.add_command(pay)
main.add_command(validator)
main.add_command(vllm)


@main.command()
@click.option("--port", type=int, default=8545, show_default=True, help="anvil's port on 127.0.0.1")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".staked"),
    show_default=True,
    help="where to write deployment.json and devnet.json",
)
@click.option(
    "--block-time",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="also mine a block every this many seconds, as a live chain does (block time moves on without "
    "transactions); transactions are mined at once either way  [default: blocks only for transactions]",
)
@click.option("--json", "as_json", is_flag=True, help="print the devnet (deployment and accounts) as JSON")
def devnet(port: int, directory: Path, block_time: float | None, as_json: bool) -> None:
    """Start anvil, deploy the contracts, fund named accounts, and stay up until Ctrl-C."""

    async def serve() -> None:
        async with Anvil(port=port, accounts=account_count(), block_time=block_time) as chain:
            treasury = Transactor(await connect(chain.url), dev_accounts(1)[0])
            info = await start_devnet_suite(chain.url, treasury)
            info.deployment.save(directory / "deployment.json")
            info.save(directory / "devnet.json")
            if as_json:
                click.echo(info.model_dump_json(indent=2))
            else:
                click.echo(f"devnet on {chain.url}, chain id {info.deployment.chain_id}; files in {directory}/")
                echo_contracts(info.deployment)
                for account in info.accounts:
                    click.echo(f"  {account.name:<18} {account.address}")
                click.echo("Ctrl-C stops it.")
            await asyncio.Event().wait()

    directory.mkdir(parents=True, exist_ok=True)
    run_async(serve())


@main.command()
@click.option("--json", "as_json", is_flag=True, help="print the final report as JSON")
@click.option(
    "--model",
    "model_dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=None,
    help="serve this model directory (served name tiny-docs) instead of building the demo model",
)
@click.option("--vllm-url", default=None, help="a vLLM server already serving --model, instead of starting one")
@click.option("--quick", is_flag=True, help="serve the untrained tiny model instead of training the demo model once")
def demo(as_json: bool, model_dir: Path | None, vllm_url: str | None, quick: bool) -> None:
    """Run the whole story on a throw-away local chain with real inference, and print what happened.

    The first run trains the demo model on the demo datanet (minutes on a CPU; Ctrl-C checkpoints it) and keeps both
    in .staked/demo for the next runs.
    """
    if vllm_url is not None and model_dir is None:
        raise click.UsageError("--vllm-url needs --model: the model that server serves")
    console = None if as_json else Console()
    datanet_dir = None
    if model_dir is None:
        datanet_dir, model_dir = prepare_demo_model(console, quick=quick)
    report = run_async(run_demo(console, model_dir=model_dir, vllm_url=vllm_url, datanet_dir=datanet_dir))
    if as_json:
        click.echo(json.dumps(report, indent=2))


@main.command()
@role_argument
@click.argument("amount")
@config_option("the signing account")
@staker_option
def stake(role: str, amount: str, config: Path | None, account_name: str | None) -> None:
    """Stake AMOUNT OPEN in ROLE; AMOUNT is decimal OPEN, such as 1000 or 0.5."""
    wei = _amount(amount)
    _transact(config, account_name, f"staking {amount} OPEN as {role}", lambda c: c.stake(_ROLES[role], wei))


@main.command()
@role_argument
@click.argument("amount")
@config_option("the signing account")
@staker_option
def unstake(role: str, amount: str, config: Path | None, account_name: str | None) -> None:
    """Start unbonding AMOUNT OPEN of ROLE stake (withdrawable after the unbonding period)."""
    wei = _amount(amount)
    _transact(
        config, account_name, f"unstaking {amount} OPEN of {role}", lambda c: c.request_unstake(_ROLES[role], wei)
    )


@main.command()
@role_argument
@config_option("the signing account")
@staker_option
def withdraw(role: str, config: Path | None, account_name: str | None) -> None:
    """Withdraw every unlocked unbonding entry of ROLE."""

    async def act() -> None:
        client = await _client(config, account_name)
        click.echo(f"withdrawing unlocked {role} stake of {client.address} ...")
        paid = await client.withdraw_stake(_ROLES[role])
        click.echo(f"withdrew {format_open(paid)} OPEN")

    run_async(act())


@main.command()
@config_option("the signing account")
@click.option("--json", "as_json", is_flag=True, help="print the status as JSON")
def status(config: Path | None, as_json: bool) -> None:
    """Show stakes, agents, channels, epochs and disputes of the deployment."""

    async def show() -> None:
        client = await _client(config, None, read_only=True)
        click.echo(await render_status(client, as_json=as_json))

    run_async(show())


def _amount(text: str) -> int:
    try:
        return to_wei_open(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="AMOUNT") from exc


async def _client(config: Path | None, account_name: str | None, *, read_only: bool = False) -> StakingClient:
    settings = ChainSettings.load(config)
    if account_name is not None:
        return await StakingClient.from_settings(settings, devnet_signer(account_name))
    if read_only:
        settings = settings.model_copy(update={"keystore": None, "private_key_env": None})
    return await StakingClient.from_settings(settings)


def _transact(
    config: Path | None,
    account_name: str | None,
    doing: str,
    action: Callable[[StakingClient], Awaitable[TxReceipt]],
) -> None:
    async def act() -> None:
        client = await _client(config, account_name)
        click.echo(f"{doing} from {client.address}; waiting for the receipt ...")
        receipt = await action(client)
        click.echo(f"done in block {receipt['blockNumber']} (gas {receipt['gasUsed']:,})")

    run_async(act())
