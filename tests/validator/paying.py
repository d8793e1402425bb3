"""Driving a real agent host for the daemon's tests: paid calls through payment channels (pre-signed vouchers, many
channels at once, in order within each), and a validator's settings for the host's model and agent."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

import aiohttp
from eth_account.signers.local import LocalAccount

from runtime.api import SkillResponse
from runtime.payments import channel_payment_payload
from runtime.protocol import (
    PAYMENT_REQUIRED_HEADER,
    PAYMENT_SIGNATURE_HEADER,
    ChannelRequirements,
    decode_payment_required,
    encode_header,
)
from staking import StakingClient, Voucher, sign, to_wei_open
from validator import ModelSettings, ValidatorSettings

#: The example agent's price per call.
PRICE = to_wei_open("0.01")
MODEL = "tiny-docs"  # the session's vLLM model (tests/conftest.py)


def greedy(n: int) -> tuple[str, dict[str, Any]]:
    """A greedy summary: every token must be the validator's arg-max."""
    return "summarize", {"text": f"Request {n}: the for statement iterates over a sequence.", "max_words": 4}


def sampled(n: int) -> tuple[str, dict[str, Any]]:
    """A seeded sampled chat: every token must lie in the sampling support."""
    message = {"role": "user", "content": f"Tell me about lists, {n}"}
    return "chat", {"messages": [message], "max_tokens": 4, "temperature": 1.0, "seed": n}


class Channel:
    """A payer's channel to the agent, paying one call after the other with cumulative vouchers."""

    def __init__(self, payer: LocalAccount, client: StakingClient, channel_id: bytes, terms: ChannelRequirements):
        self.payer, self.client, self.channel_id, self.terms = payer, client, channel_id, terms
        self.paid = 0

    def header(self) -> str:
        self.paid += PRICE
        voucher = Voucher(self.channel_id, self.paid)
        signature = sign(self.payer, self.client.channel_domain(), voucher)
        return encode_header(channel_payment_payload(self.terms, voucher, signature))


async def open_channels(
    http: aiohttp.ClientSession, payer: LocalAccount, client: StakingClient, agent: str, count: int, calls: int
) -> list[Channel]:
    """``count`` channels from ``payer`` to ``agent``, each funded for ``calls`` calls."""
    async with http.post("/v1/skills/summarize", json={"text": "x"}) as response:
        _, terms = decode_payment_required(response.headers[PAYMENT_REQUIRED_HEADER]).accepts
    assert isinstance(terms, ChannelRequirements)
    channels = []
    for _ in range(count):
        channel_id = await client.open_channel(agent, calls * PRICE)
        channels.append(Channel(payer, client, channel_id, terms))
    return channels


async def pay(http: aiohttp.ClientSession, channel: Channel, skill: str, body: dict[str, Any]) -> SkillResponse:
    async with http.post(f"/v1/skills/{skill}", json=body, headers={PAYMENT_SIGNATURE_HEADER: channel.header()}) as r:
        assert r.status == 200, await r.text()
        return SkillResponse.model_validate(await r.json())


async def pay_many(
    http: aiohttp.ClientSession, channels: list[Channel], requests: list[tuple[str, dict[str, Any]]]
) -> list[SkillResponse]:
    """Pays every request, the channels side by side and each channel's calls in order; answers in request order."""
    answers: dict[int, SkillResponse] = {}
    lanes: list[list[int]] = [[] for _ in channels]
    for number, lane in zip(range(len(requests)), itertools.cycle(range(len(channels))), strict=False):
        lanes[lane].append(number)

    async def run(channel: Channel, numbers: list[int]) -> None:
        for number in numbers:
            answers[number] = await pay(http, channel, *requests[number])

    await asyncio.gather(*(run(channel, lane) for channel, lane in zip(channels, lanes, strict=True)))
    return [answers[number] for number in range(len(requests))]


def validator_settings(
    state: Path, model_id: bytes, tokenizer: Path, index: Path, vllm_url: str, agent_class: str, **options: Any
) -> ValidatorSettings:
    """A validator of the host's model and agent, staking 1000 OPEN, with intervals and delays for tests: the
    sample is audited as soon as its seed block is mined, and a failed read is retried at the next run."""
    defaults: dict[str, Any] = {
        "vllm_url": vllm_url,
        "models": {"0x" + model_id.hex(): ModelSettings(name=MODEL, tokenizer=tokenizer, index=index)},
        "agents": {"summarizer": agent_class},
        "state": state,
        "port": 0,
        "stake": "1000",
        "audit_delay": 0.0,
        "retry_seconds": 0.0,
        "fetch_backoff": 0.05,
        "fetch_attempts": 2,
    }
    return ValidatorSettings(**{**defaults, **options})
