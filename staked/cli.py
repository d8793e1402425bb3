"""``staked``: the command line of the project."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import click

from staking import Anvil, DeploymentConfig, StakedError, Transactor, connect, deploy, dev_accounts

from .demo import run_demo

__all__ = ["main"]

_T = TypeVar("_T")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Stake OPEN, serve paid and verifiable inference, audit and slash."""


@main.command()
@click.option("--port", type=int, default=8545, show_default=True, help="anvil's port on 127.0.0.1")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path(".staked/deployment.json"),
    show_default=True,
    help="where to write the deployment file",
)
@click.option("--json", "as_json", is_flag=True, help="print the deployment as JSON")
def devnet(port: int, out: Path, as_json: bool) -> None:
    """Start anvil, deploy the contracts, and stay up until Ctrl-C."""

    async def serve() -> None:
        async with Anvil(port=port) as chain:
            w3 = await connect(chain.url)
            deployment = await deploy(Transactor(w3, dev_accounts(1)[0]), DeploymentConfig())
            out.parent.mkdir(parents=True, exist_ok=True)
            deployment.save(out)
            if as_json:
                click.echo(deployment.model_dump_json(indent=2))
            else:
                click.echo(f"devnet on {chain.url} (chain id {deployment.chain_id}); deployment in {out}")
                for name, address in deployment.contracts.model_dump().items():
                    click.echo(f"  {name:<18} {address}")
                click.echo("Ctrl-C stops it.")
            await asyncio.Event().wait()

    _run(serve())


@main.command()
@click.option("--json", "as_json", is_flag=True, help="print the final report as JSON")
def demo(as_json: bool) -> None:
    """Run the whole story on a throw-away local chain and print what happened."""
    report = _run(run_demo(echo=None if as_json else click.echo))
    if as_json:
        click.echo(json.dumps(report, indent=2))


def _run(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """Runs a coroutine; our errors end the command with their message, Ctrl-C ends it quietly."""
    try:
        return asyncio.run(coroutine)
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except StakedError as exc:
        raise click.ClickException(str(exc)) from exc
