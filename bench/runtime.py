"""What being paid costs an agent: the payment + attribution + receipt + journal path over the bare skill call.

Run: ``python -m bench.runtime`` (or ``python -m bench --only runtime``). One anvil, the deployed suite, the example
summarizer agent served by :class:`runtime.serve.AgentService` over HTTP, paid with channel vouchers:

- *instant backend*: a backend that answers at once with a fixed model call (a passage of the docs, so that
  attribution finds spans), to isolate the runtime; baseline: ``agent.invoke`` of the same skill, in process.
- *vLLM CPU*: the session's tiny model on a real vLLM server; baseline: ``agent.invoke`` on the same server.
- journal bytes per paid request (SQLite file + WAL).

Gas per paid request (channel vouchers against ``exact``) is :mod:`bench.gas`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import pydoc_data.topics
import tempfile
import time
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak

from agents import Backend, EngineInfo, ModelCall, SamplingParams, Score, StreamDelta, VLLMServer, build_tiny_model
from agents.attribution import AttributionIndex, Contribution, Datanet, load_tokenizer
from agents.backend import Prompt
from agents.factory import model_id as model_id_of
from agents.protocol import ChatMessage, TokenLogprob
from bench.report import BarChart, Baseline, Better, Figure, Headline, Section, Table
from bench.runner import percentiles, run_alone
from runtime.config import AgentSettings
from runtime.payments import channel_payment_payload
from runtime.protocol import PAYMENT_SIGNATURE_HEADER, ChannelRequirements, encode_header
from runtime.serve import AgentService
from staking import (
    Anvil,
    ChainSettings,
    DeploymentConfig,
    StakingClient,
    Transactor,
    Voucher,
    connect,
    deploy,
    dev_accounts,
    sign,
    to_wei_open,
)

SUITE = "runtime"
EXAMPLE = str(Path(__file__).parents[1] / "examples" / "summarizer.py") + ":Summarizer"
PRICE = to_wei_open("0.01")
INSTANT_REQUESTS = 400
VLLM_REQUESTS = 40
CONCURRENT_CHANNELS = 16
BODY = {"text": "The for statement iterates over the items of any sequence.", "max_words": 8}


class InstantBackend(Backend):
    """Answers every call at once with the same output tokens: the runtime's cost with inference taken out."""

    def __init__(self, output_ids: Sequence[int], model: str) -> None:
        self._output = tuple(output_ids)
        self._engine = EngineInfo(engine="instant", version="0", model=model, dtype="float32", max_model_len=4096)

    async def engine(self, model: str) -> EngineInfo:
        return self._engine

    async def complete(self, model: str, prompt: Prompt, params: SamplingParams) -> ModelCall:
        return self._call("completion", prompt if isinstance(prompt, str) else "", params)

    async def chat(self, model: str, messages: Sequence[ChatMessage], params: SamplingParams) -> ModelCall:
        return self._call("chat", messages[-1].content, params)

    def _call(self, kind: Any, prompt: str, params: SamplingParams) -> ModelCall:
        return ModelCall(
            kind=kind,
            request_id="instant",
            engine=self._engine,
            sampling=params,
            prompt=prompt,
            prompt_token_ids=(1, 2, 3),
            output="…",
            output_token_ids=self._output,
            logprobs=tuple(TokenLogprob(token_id=token, logprob=0.0) for token in self._output),
            finish_reason="length",
            started_at=datetime.now(UTC),
            duration_s=0.0,
        )

    def stream_complete(self, model: str, prompt: Prompt, params: SamplingParams) -> AsyncGenerator[StreamDelta, None]:
        raise NotImplementedError

    def stream_chat(
        self, model: str, messages: Sequence[ChatMessage], params: SamplingParams
    ) -> AsyncGenerator[StreamDelta, None]:
        raise NotImplementedError

    async def score(
        self, model: str, prompt_token_ids: Sequence[int], output_token_ids: Sequence[int], *, top: int = 1
    ) -> Score:
        raise NotImplementedError

    async def tokenize(self, model: str, text: str, *, add_special_tokens: bool = True) -> tuple[int, ...]:
        raise NotImplementedError

    async def close(self) -> None:
        return None


class _World:
    """anvil, the suite, funded accounts, the docs datanet and its index, the model registered."""

    def __init__(self, root: Path, chain: Anvil, clients: list[StakingClient], keys: list[LocalAccount]) -> None:
        self.root, self.chain, self.clients, self.keys = root, chain, clients, keys
        self.model_dir = build_tiny_model(root / "model", seed=0)
        self.index_dir = root / "index"

    async def setup(self) -> None:
        curator = self.clients[7]
        contributors = [Account.from_key(keccak(text=f"contributor {n}")).address for n in range(3)]
        net = Datanet.create(self.root / "datanet", name="python-docs")
        topics = sorted(pydoc_data.topics.topics.items())
        net.add(Contribution(text=t, contributor=c) for (_, t), c in zip(topics, itertools.cycle(contributors)))
        index = await asyncio.to_thread(AttributionIndex.build, self.index_dir, [net], self.model_dir)
        datanet_id = await curator.create_datanet("python-docs")
        await curator.add_contributions(datanet_id, [c.content_hash for c in net], [c.contributor for c in net])
        self.model_id = model_id_of(self.model_dir)
        await curator.register_model(self.model_id, [datanet_id], index.root, "tiny-docs")
        # A passage of the docs as the output, so attribution does its real work on every request.
        tokenizer = load_tokenizer(self.model_dir)
        self.quoted = tokenizer.encode(topics[10][1][:400], add_special_tokens=False).ids[:32]

    def settings(self, journal: Path, vllm_url: str = "http://127.0.0.1:9") -> tuple[AgentSettings, ChainSettings]:
        deployment_file = self.root / "deployment.json"
        deployment_file.write_text(self.clients[0].deployment.model_dump_json())
        agent = AgentSettings(
            agent=EXAMPLE,
            port=0,
            vllm_url=vllm_url,
            index=self.index_dir,
            tokenizer=self.model_dir,
            model_id="0x" + self.model_id.hex(),
            journal=journal,
            stake="1000",
        )
        return agent, ChainSettings(rpc_url=self.chain.url, deployment_file=deployment_file, poll_interval=0.02)


@contextlib.asynccontextmanager
async def _world() -> AsyncIterator[_World]:
    with tempfile.TemporaryDirectory() as directory:
        async with Anvil(accounts=10) as chain:
            w3 = await connect(chain.url)
            keys = dev_accounts(10)
            deployment = await deploy(Transactor(w3, keys[0]), DeploymentConfig())
            clients = [StakingClient(w3, deployment, key) for key in keys]
            for client in clients[1:]:
                await clients[0].transfer(client.address, to_wei_open(100_000))
            world = _World(Path(directory), chain, clients, keys)
            await world.setup()
            yield world


async def _channels(world: _World, service: AgentService, count: int, deposit: int) -> list[tuple[int, bytes]]:
    payers = list(range(2, 7))
    opened = []
    for n in range(count):
        payer = payers[n % len(payers)]
        opened.append((payer, await world.clients[payer].open_channel(service.client.address, deposit)))
    return opened


def _headers(world: _World, requirements: ChannelRequirements, payer: int, channel_id: bytes, steps: int) -> list[str]:
    """Pre-signed vouchers for ``steps`` requests on one channel (signing is the client's cost, not the agent's)."""
    headers = []
    for step in range(1, steps + 1):
        voucher = Voucher(channel_id, step * PRICE)
        signature = sign(world.keys[payer], world.clients[payer].channel_domain(), voucher)
        headers.append(encode_header(channel_payment_payload(requirements, voucher, signature)))
    return headers


async def _measure(world: _World, service: AgentService, requests: int) -> dict[str, float]:
    """Latency of the bare skill call and of the paid HTTP call; paid req/s over concurrent channels."""
    # One untimed call first: vLLM's first request (and the first connection) would otherwise land in the baseline.
    await service.agent.invoke("summarize", BODY)
    bare = []
    for _ in range(requests):
        started = time.perf_counter()
        await service.agent.invoke("summarize", BODY)
        bare.append(time.perf_counter() - started)
    # The baseline's throughput at the same concurrency as the paid calls': CONCURRENT_CHANNELS at a time.
    per_worker = max(1, requests // CONCURRENT_CHANNELS)

    async def invoke_many() -> None:
        for _ in range(per_worker):
            await service.agent.invoke("summarize", BODY)

    started = time.perf_counter()
    await asyncio.gather(*(invoke_many() for _ in range(CONCURRENT_CHANNELS)))
    bare_rps = per_worker * CONCURRENT_CHANNELS / (time.perf_counter() - started)
    _, requirements = service.host.verifier.requirements(PRICE)
    (payer, channel_id), *_ = await _channels(world, service, 1, requests * PRICE)
    sequential = _headers(world, requirements, payer, channel_id, requests)
    per_channel = max(1, requests // CONCURRENT_CHANNELS)
    concurrent = [
        _headers(world, requirements, p, c, per_channel)
        for p, c in await _channels(world, service, CONCURRENT_CHANNELS, per_channel * PRICE)
    ]
    paid = []
    async with aiohttp.ClientSession(service.url) as http:

        async def call(header: str) -> None:
            async with http.post("/v1/skills/summarize", json=BODY, headers={PAYMENT_SIGNATURE_HEADER: header}) as r:
                if r.status != 200:
                    raise RuntimeError(f"a paid call answered {r.status}: {await r.text()}")
                await r.read()

        for header in sequential:
            started = time.perf_counter()
            await call(header)
            paid.append(time.perf_counter() - started)

        async def run(headers: list[str]) -> None:
            for header in headers:
                await call(header)

        started = time.perf_counter()
        await asyncio.gather(*(run(headers) for headers in concurrent))
        elapsed = time.perf_counter() - started
    bare_p50, bare_p99 = percentiles(bare)
    paid_p50, paid_p99 = percentiles(paid)
    return {
        "bare_p50_ms": bare_p50 * 1e3,
        "bare_p99_ms": bare_p99 * 1e3,
        "paid_p50_ms": paid_p50 * 1e3,
        "paid_p99_ms": paid_p99 * 1e3,
        "added_p50_ms": (paid_p50 - bare_p50) * 1e3,
        "added_p99_ms": (paid_p99 - bare_p99) * 1e3,
        "paid_rps": per_channel * CONCURRENT_CHANNELS / elapsed,
        "bare_rps": bare_rps,
    }


def _journal_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in (path, path.with_name(path.name + "-wal")) if p.exists())


def _figures(backend: str, figures: dict[str, float], *, headlines: bool) -> list[Figure]:
    """Paid over HTTP against ``agent.invoke`` in process: latency p50 and p99, and throughput."""
    latency = [
        Figure(
            name=f"paid HTTP call latency {p}, {backend}",
            value=figures[f"paid_{p}_ms"],
            unit="ms",
            baseline=Baseline(name=f"agent.invoke in process, {p}", value=figures[f"bare_{p}_ms"]),
            better=Better.LOWER,
            headline=Headline.PAYMENT_OVERHEAD if headlines and p == "p50" else None,
        )
        for p in ("p50", "p99")
    ]
    throughput = Figure(
        name=f"paid req/s over {CONCURRENT_CHANNELS} concurrent channels, {backend}",
        value=figures["paid_rps"],
        unit="req/s",
        baseline=Baseline(name=f"agent.invoke in process, {CONCURRENT_CHANNELS} at a time", value=figures["bare_rps"]),
        better=Better.HIGHER,
        headline=Headline.PAID_RPS if headlines else None,
    )
    return [*latency, throughput]


async def main() -> Section:
    async with _world() as world:
        agent_settings, chain_settings = world.settings(world.root / "instant.sqlite")
        backend = InstantBackend(world.quoted, "tiny-docs")
        async with AgentService.start(
            agent_settings, chain_settings, operator=world.keys[1], signer=Account.create(), backend=backend
        ) as service:
            instant = await _measure(world, service, INSTANT_REQUESTS)
            await service.jobs.commit_epochs(force=True)
        journal = _journal_bytes(agent_settings.journal)
        paid_requests = INSTANT_REQUESTS + (INSTANT_REQUESTS // CONCURRENT_CHANNELS) * CONCURRENT_CHANNELS

        async with VLLMServer(world.model_dir, name="tiny-docs", kv_cache_gib=1, ready_timeout=900) as server:
            agent_settings, chain_settings = world.settings(world.root / "vllm.sqlite", server.url)
            async with AgentService.start(
                agent_settings, chain_settings, operator=world.keys[8], signer=Account.create()
            ) as service:
                vllm = await _measure(world, service, VLLM_REQUESTS)

    # The instant backend's figures are the headline's: they are the runtime's own cost, inference taken out.
    instant_name, vllm_name = "instant backend", "vLLM CPU, tiny model"
    figures = [*_figures(instant_name, instant, headlines=True), *_figures(vllm_name, vllm, headlines=False)]
    runs = ((instant_name, INSTANT_REQUESTS, instant), (vllm_name, VLLM_REQUESTS, vllm))
    latency = [figure for figure in figures if figure.unit == "ms"]
    throughput = [figure for figure in figures if figure.unit == "req/s"]
    return Section(
        suite=SUITE,
        title="What being paid costs an agent: payment, attribution, receipt and journal over the bare skill call",
        description=(
            "One anvil with the deployed suite; the example summarizer agent served over HTTP by AgentService and "
            "paid with channel vouchers signed ahead (signing is the payer's cost). Each paid call is compared with "
            "agent.invoke of the same skill in process, in the same run. With an instant backend, which answers at "
            "once with a passage of the docs so that attribution does its real work, the difference is the "
            "runtime's own cost; with the tiny model on vLLM CPU it is what a caller sees. Latency is measured one "
            f"call at a time, throughput over {CONCURRENT_CHANNELS} channels at once. Gas per paid request is the "
            "gas suite's."
        ),
        figures=figures,
        tables=[
            Table(
                title="Paid over HTTP against agent.invoke in process",
                columns=(
                    "backend",
                    "requests",
                    "invoke p50 ms",
                    "paid p50 ms",
                    "added p50 ms",
                    "invoke p99 ms",
                    "paid p99 ms",
                    "added p99 ms",
                    "invoke req/s",
                    "paid req/s",
                ),
                rows=[
                    (
                        backend,
                        requests,
                        m["bare_p50_ms"],
                        m["paid_p50_ms"],
                        m["added_p50_ms"],
                        m["bare_p99_ms"],
                        m["paid_p99_ms"],
                        m["added_p99_ms"],
                        m["bare_rps"],
                        m["paid_rps"],
                    )
                    for backend, requests, m in runs
                ],
            ),
            Table(
                title="Journal (SQLite file and WAL) after the instant run's epoch is committed",
                columns=("paid requests", "bytes", "bytes per paid request"),
                rows=[(paid_requests, journal, journal / paid_requests)],
            ),
        ],
        charts=[
            BarChart.of("latency", "Paid HTTP call against agent.invoke: latency", latency, log=True),
            BarChart.of("throughput", "Paid HTTP calls against agent.invoke: throughput", throughput, log=True),
        ],
    )


if __name__ == "__main__":
    run_alone(SUITE, main)
