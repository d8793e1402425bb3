"""``staked validator run``: audits agents' receipts, challenges cheats, votes on disputes and resolves them.

It reads one TOML file: ``[chain]`` (:class:`staking.ChainSettings`, whose key is the validator's unless
``--account`` names a devnet account) and ``[validator]`` (:class:`validator.ValidatorSettings`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import click

from staking import ChainSettings
from validator import ValidatorDaemon, ValidatorSettings

from .chain_cli import account_option, devnet_signer, run_async, serve_until_signal

__all__ = ["validator"]

_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@click.group()
def validator() -> None:
    """Validate agents: audit their receipts, challenge cheats, vote on disputes and resolve them."""


@validator.command()
@click.option(
    "--config",
    "config",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="TOML file with [chain] (the validator's key) and [validator] tables; STAKED_* variables override it",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
    help="what the validator logs to stderr",
)
@click.option(
    "--once", is_flag=True, help="run every job once (events, audits, reports, votes, resolutions), then exit"
)
@account_option("validator-1, validator-2")
def run(config: Path, log_level: str, once: bool, account_name: str | None) -> None:
    """Run the validator CONFIG describes until Ctrl-C or SIGTERM, then let running jobs finish and stop.

    Before running it stakes up to [validator] stake when set, and checks that the stake is above the minimum,
    that vLLM serves every configured model and that every configured index is the one registered on chain.
    """
    logging.basicConfig(level=log_level.upper(), format=_LOG_FORMAT)

    async def run_jobs() -> tuple[str, ...]:
        settings, chain = ValidatorSettings.load(config), ChainSettings.load(config)
        account = devnet_signer(account_name)
        if not once:
            await serve_until_signal(
                ValidatorDaemon.start(settings, chain, account=account),
                lambda up: f"validator {up.address} running; intake and metrics at {up.url} (Ctrl-C to stop)",
            )
            return ()
        async with ValidatorDaemon.start(settings, chain, account=account, scheduled=False) as daemon:
            failed = await daemon.run_once()
            click.echo(f"{daemon!r}")
            return failed

    failed = run_async(run_jobs())
    if failed:
        raise click.ClickException(f"job(s) failed: {', '.join(failed)} (see the log)")
