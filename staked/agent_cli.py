"""``staked agent serve`` runs an agent host; ``staked call`` pays an agent from the shell, and ``staked pay`` signs
one payment for another HTTP client (``curl``) to send.

They read one TOML file: ``[chain]`` (:class:`staking.ChainSettings`, whose key is the operator's for ``serve``
and the payer's for ``call`` and ``pay``; ``--account`` names a devnet account instead) and, for ``serve``,
``[agent]`` (:class:`runtime.config.AgentSettings`).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path

import click
from eth_account.signers.local import LocalAccount
from pydantic import JsonValue

from runtime.client import DEFAULT_STORE, AgentClient, PaidCall, sign_exact_payment
from runtime.config import AgentSettings
from runtime.protocol import ExactPaymentPayload, Scheme, encode_header
from runtime.receipt_store import ChannelAccount
from runtime.serve import AgentService
from staking import ChainSettings, ConfigError, StakingClient, format_open, to_wei_open

from .chain_cli import account_option, config_option, devnet_signer, run_async, serve_until_signal

__all__ = ["agent", "call", "pay"]

payer_config_option = config_option("the payer")
payer_option = account_option("payer-1, payer-2")

_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@click.group()
def agent() -> None:
    """Serve an agent: paid HTTP inference with a signed receipt for every answer."""


@agent.command()
@click.option(
    "--config",
    "config",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="TOML file with [chain] (the operator's key) and [agent] tables; STAKED_* variables override it",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
    help="what the host logs to stderr",
)
@account_option("agent-1, agent-2")
def serve(config: Path, log_level: str, account_name: str | None) -> None:
    """Serve the agent CONFIG names until Ctrl-C or SIGTERM, then drain requests and stop.

    Before serving it checks that vLLM serves the agent's model and that the operator is registered with this
    signer and staked above the minimum (registering and staking when [agent] stake is set). --account replaces
    the operator's key only: the receipt signer is always [agent]'s.
    """
    logging.basicConfig(level=log_level.upper(), format=_LOG_FORMAT)

    async def run() -> None:
        settings, chain = AgentSettings.load(config), ChainSettings.load(config)
        host = AgentService.start(settings, chain, operator=devnet_signer(account_name))
        await serve_until_signal(host, lambda up: f"serving {up.agent.name} at {up.url} (Ctrl-C to stop)")

    run_async(run())


@click.command()
@click.argument("url")
@click.argument("skill")
@click.argument("input_json", metavar="JSON")
@payer_config_option
@payer_option
@click.option(
    "--scheme",
    type=click.Choice(["channel", "exact"]),
    default="channel",
    show_default=True,
    help="pay from a payment channel, or with one EIP-3009 authorization per call",
)
@click.option(
    "--deposit",
    default="1",
    show_default=True,
    help="OPEN a new channel is opened with, and topped up by when it runs out",
)
@click.option(
    "--store",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_STORE,
    show_default=True,
    help="the SQLite file of receipts and channel state",
)
@click.option("--idempotency-key", help="names the call: the same key again returns the same answer, charged once")
@click.option("--json", "as_json", is_flag=True, help="print the output, receipt, price and settlement as JSON")
def call(
    url: str,
    skill: str,
    input_json: str,
    config: Path | None,
    account_name: str | None,
    scheme: str,
    deposit: str,
    store: Path,
    idempotency_key: str | None,
    as_json: bool,
) -> None:
    """Call SKILL of the agent at URL with the input JSON ('-' reads it from stdin), paying as it asks.

    Prints the output, the receipt (verified against the agent's registration on chain and kept in the store for
    disputes) and the price.
    """
    try:
        payload: JsonValue = json.loads(sys.stdin.read() if input_json == "-" else input_json)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="JSON") from exc
    try:
        deposit_wei = to_wei_open(deposit)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--deposit") from exc

    async def pay() -> tuple[PaidCall, ChannelAccount | None]:
        client, wallet = await _payer(config, account_name)
        try:
            async with AgentClient(
                url, wallet, chain=client, scheme=Scheme(scheme), deposit=deposit_wei, store=store
            ) as agent_client:
                paid = await agent_client.call(skill, payload, idempotency_key=idempotency_key)
                return paid, await agent_client.channel_account()
        finally:
            await client.w3.provider.disconnect()

    paid, channel = run_async(pay())
    if as_json:
        document = {
            "request_id": paid.request_id,
            "skill": paid.skill,
            "output": paid.output,
            "price": str(paid.price),
            "scheme": paid.scheme.value,
            "receipt": paid.receipt.model_dump(mode="json", by_alias=True),
            "settlement": paid.settlement.model_dump(mode="json", by_alias=True, exclude_none=True),
        }
        if channel is not None and paid.scheme is Scheme.CHANNEL:
            document["channel"] = {
                "id": "0x" + channel.channel_id.hex(),
                "deposit": str(channel.deposit),
                "paid": str(channel.paid),
            }
        click.echo(json.dumps(document, indent=2))
        return
    click.echo(json.dumps(paid.output, indent=2, ensure_ascii=False))
    paid_by = paid.scheme.value
    if paid.scheme is Scheme.CHANNEL and channel is not None:
        left = f"{format_open(channel.remaining)} of {format_open(channel.deposit)} OPEN left"
        paid_by += f" 0x{channel.channel_id.hex()} ({left})"
    click.echo(f"price: {format_open(paid.price)} OPEN, paid by {paid_by}")
    click.echo(f"receipt (verified, stored in {store}):")
    click.echo(json.dumps(paid.receipt.model_dump(mode="json", by_alias=True), indent=2))


@click.command()
@click.argument("url")
@click.argument("skill")
@payer_config_option
@payer_option
@click.option("--json", "as_json", is_flag=True, help="print the header and the x402 payment document in it as JSON")
def pay(url: str, skill: str, config: Path | None, account_name: str | None, as_json: bool) -> None:
    """Print a PAYMENT-SIGNATURE header value that pays one call of SKILL of the agent at URL, for curl to send.

    It is an x402 `exact` payment: an EIP-3009 authorization of the price on the agent's card, signed once the card
    is checked against the chain (chain id, registration, signer, model), valid for the maxTimeoutSeconds agents
    advertise (x402). No channel is opened and nothing is stored; the agent settles it on chain once it answers a
    call paid with it, and it pays for one call only (the same call sent again with it gets the same answer,
    another call is refused as replayed).

    \b
    curl -H "PAYMENT-SIGNATURE: $(staked pay URL summarize --account payer-1)" \\
         --json '{"text": "..."}' URL/v1/skills/summarize
    """

    async def sign() -> ExactPaymentPayload:
        client, _ = await _payer(config, account_name)
        try:
            return await sign_exact_payment(url, skill, chain=client)
        finally:
            await client.w3.provider.disconnect()

    payment = run_async(sign())
    header = encode_header(payment)
    if as_json:
        click.echo(json.dumps({"header": header, "payment": payment.model_dump(mode="json", by_alias=True)}, indent=2))
        return
    authorization = payment.payload.authorization
    expiry = datetime.fromtimestamp(authorization.valid_before, UTC).isoformat(timespec="seconds")
    click.echo(
        f"pays {format_open(authorization.value)} OPEN to {authorization.to} for one {skill!r} call until {expiry}",
        err=True,
    )
    click.echo(header)


async def _payer(config: Path | None, account_name: str | None) -> tuple[StakingClient, LocalAccount]:
    """The payer's staking client and key: a devnet account by name, or the key the ``[chain]`` settings name."""
    settings = ChainSettings.load(config)
    client = await StakingClient.from_settings(settings, devnet_signer(account_name))
    if client.account is None:
        await client.w3.provider.disconnect()
        raise ConfigError("paying needs the payer's key: set keystore in [chain], or pass --account NAME")
    return client, client.account
