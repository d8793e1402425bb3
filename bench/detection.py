"""How surely and how fast validators catch each cheating agent of examples/cheaters.py, beside an honest agent.

Run: ``python -m bench.detection`` (or ``python -m bench --only detection``). One anvil with the deployed suite, the
Python reference topics registered as the tiny model's datanet, one vLLM CPU server for the model (the agents' and
the validators' engine) and, for the cheaper-model agent only, a second one serving other weights under the same
name. Two staked validators run the real daemon, their jobs driven by hand: one audits every receipt (rate 1.0) and
challenges, one votes.

Every agent, the honest summarizer first (the baseline), serves ``REQUESTS`` paid calls from one payer through
:class:`runtime.client.AgentClient` (greedy summaries and seeded sampled chats in turn), commits them as one epoch,
and the payer reports every receipt it holds to the auditing validator (``POST /v1/receipts``). Then:

- **detection rate**: the share of the agent's cheating receipts that the validators challenge (a challenge is
  opened only on a finding of the cheat's kind), audited at rate 1.0, greedy and sampled apart. Cheating receipts:
  every one, except the editing agent's chats (it edits summaries only) and the omitting agent's committed ones (it
  leaves out one receipt per epoch);
- **caught at sample rate r**: the probability that a validator auditing a share ``SAMPLE_RATE`` of the epoch opens
  at least one challenge, computed as ``1 - (1 - r d)^n`` from the detection rate ``d`` and the ``n`` cheating
  receipts, and measured by drawing ``SAMPLES`` validators' samples (:func:`validator.sample_positions`, random
  seeds) over the epoch's actual per-receipt outcomes. Equivocation, omission and refused records are caught from
  the payer's reported receipt, at any rate;
- **cheat to slash**: anvil blocks (one per transaction here) and seconds of block time from the epoch's commit to
  the agent's first ``Slashed`` event; the block time is what a real chain would take, set by the voting period
  (bonded challenges), the response window (withholding) or nothing (equivocation).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import pydoc_data.topics
import secrets
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak
from web3 import AsyncWeb3

from agents import VLLMBackend, VLLMServer, build_tiny_model, load_agent_class
from agents.attribution import AttributionIndex, Contribution, Datanet
from bench.report import BarChart, Baseline, Better, Cell, Figure, Section, Table
from bench.runner import run_alone
from runtime.client import AgentClient
from runtime.config import AgentSettings
from runtime.serve import AgentService
from staking import (
    Anvil,
    ChainSettings,
    DeploymentConfig,
    StakingClient,
    Transactor,
    advance_time,
    connect,
    deploy,
    dev_accounts,
    to_wei_open,
)
from staking.types import DisputeKind
from validator import ModelSettings, ValidatorDaemon, ValidatorSettings, sample_positions

SUITE = "detection"
MODEL = "tiny-docs"
EXAMPLES = Path(__file__).parents[1] / "examples"
EXAMPLE = f"{EXAMPLES / 'summarizer.py'}:Summarizer"
# examples/ is not a package: the module is loaded the way an agent host loads an agent's file.
cheaters = sys.modules[load_agent_class(f"{EXAMPLES / 'cheaters.py'}:EditingSummarizer").__module__]

REQUESTS = 16  # per agent, greedy summaries and sampled chats in turn
OUTPUT_TOKENS = 8
SAMPLE_RATE = 0.1  # the validators' default
SAMPLES = 10_000  # validators' samples drawn per agent for the measured probability
PRICE = to_wei_open("0.01")
ACCOUNTS = 16
PAYER, AUDITOR, VOTER, CURATOR = 2, 5, 6, 7
FIRST_OPERATOR = 8  # keys[8] and up operate the agents, one each


@dataclass(frozen=True)
class Case:
    """One agent of the run: its cheat, the fault that catches it, how it is served, which receipts cheat."""

    name: str
    fault: DisputeKind | None  # None: the honest baseline
    parts: Callable[[World], dict[str, Any]] = lambda world: {}
    cheats: Callable[[int, str], bool] = lambda seq, skill: True  # (seq, skill) -> whether that receipt cheats
    cheap_model: bool = False


AGENTS = (
    Case("honest (baseline)", None, cheats=lambda seq, skill: False),
    Case("cheaper model", DisputeKind.OUTPUT, cheap_model=True),
    Case(
        "forged output",
        DisputeKind.OUTPUT,
        parts=lambda world: {"backend": cheaters.ForgingBackend(VLLMBackend(world.vllm_url, dtype="float32"))},
    ),
    Case(
        "edited output",
        DisputeKind.OUTPUT,
        parts=lambda world: {"agent": f"{EXAMPLES / 'cheaters.py'}:EditingSummarizer"},
        cheats=lambda seq, skill: skill == "summarize",
    ),
    Case("wrong attribution", DisputeKind.ATTRIBUTION, parts=lambda world: {"host_class": cheaters.MisattributingHost}),
    Case(
        "two answers, one request", DisputeKind.EQUIVOCATION, parts=lambda w: {"host_class": cheaters.EquivocatingHost}
    ),
    Case(
        "receipt left out",
        DisputeKind.WITHHOLDING,
        parts=lambda world: {"jobs_class": cheaters.OmittingJobs},
        cheats=lambda seq, skill: seq == REQUESTS - 1,
    ),
    Case(
        "records refused",
        DisputeKind.WITHHOLDING,
        parts=lambda world: {"host_class": cheaters.RefusingHost, "jobs_class": cheaters.SilentJobs},
    ),
)


@dataclass
class Outcome:
    """What became of one agent's epoch."""

    agent: Case
    skills: list[str] = field(default_factory=list)  # by seq
    caught: set[int] = field(default_factory=set)  # seqs challenged for the agent's fault
    findings: int = 0  # audits and reported receipts with any finding
    disputes: int = 0
    commit_block: int = 0
    commit_time: int = 0
    slashes: list[tuple[int, int]] = field(default_factory=list)  # (block, timestamp) of each Slashed event

    @property
    def cheating(self) -> list[int]:
        return [seq for seq, skill in enumerate(self.skills) if self.agent.cheats(seq, skill)]


@dataclass(frozen=True)
class World:
    """anvil, the suite, funded accounts, the docs datanet and index registered with the model, two validators."""

    root: Path
    w3: AsyncWeb3[Any]
    keys: list[LocalAccount]
    clients: list[StakingClient]
    chain: ChainSettings
    model_dir: Path
    index_dir: Path
    model_id: bytes
    vllm_url: str
    auditor: ValidatorDaemon
    voter: ValidatorDaemon


def _validator_settings(
    root: Path, name: str, model_id: bytes, model_dir: Path, vllm_url: str, rate: float
) -> ValidatorSettings:
    """A validator of the model and the summarizer's published class, staking 1000 OPEN, with no delays: the
    sample is audited once its seed block is mined, and a record not served is looked for again at the next run."""
    return ValidatorSettings(
        vllm_url=vllm_url,
        models={"0x" + model_id.hex(): ModelSettings(name=MODEL, tokenizer=model_dir, index=root / "index")},
        agents={"summarizer": EXAMPLE},
        state=root / f"{name}.sqlite",
        port=0,
        stake="1000",
        sample_rate=rate,
        audit_delay=0.0,
        retry_seconds=0.0,
        fetch_backoff=0.05,
        fetch_attempts=2,
    )


@contextlib.asynccontextmanager
async def _world(root: Path) -> AsyncIterator[World]:
    model_dir = await asyncio.to_thread(build_tiny_model, root / "model", seed=0)
    async with (
        Anvil(accounts=ACCOUNTS) as chain,
        VLLMServer(model_dir, name=MODEL, kv_cache_gib=1, ready_timeout=900) as server,
    ):
        w3 = await connect(chain.url)
        keys = dev_accounts(ACCOUNTS)
        deployment = await deploy(Transactor(w3, keys[0]), DeploymentConfig())
        clients = [StakingClient(w3, deployment, key) for key in keys]
        for client in clients[1:]:
            await clients[0].transfer(client.address, to_wei_open(100_000))
        contributors = [Account.from_key(keccak(text=f"contributor {n}")).address for n in range(3)]
        net = Datanet.create(root / "datanet", name="python-docs")
        topics = sorted(pydoc_data.topics.topics.items())
        net.add(Contribution(text=t, contributor=c) for (_, t), c in zip(topics, itertools.cycle(contributors)))
        index = await asyncio.to_thread(AttributionIndex.build, root / "index", [net], model_dir)
        curator = clients[CURATOR]
        datanet_id = await curator.create_datanet("python-docs")
        await curator.add_contributions(datanet_id, [c.content_hash for c in net], [c.contributor for c in net])
        model_id = keccak((model_dir / "model.safetensors").read_bytes())
        await curator.register_model(model_id, [datanet_id], index.root, MODEL)
        (root / "deployment.json").write_text(deployment.model_dump_json())
        settings = ChainSettings(rpc_url=chain.url, deployment_file=root / "deployment.json", poll_interval=0.02)
        auditing = _validator_settings(root, "auditor", model_id, model_dir, server.url, 1.0)
        voting = _validator_settings(root, "voter", model_id, model_dir, server.url, 0.0)
        async with (
            ValidatorDaemon.start(auditing, settings, account=keys[AUDITOR], scheduled=False) as auditor,
            ValidatorDaemon.start(voting, settings, account=keys[VOTER], scheduled=False) as voter,
        ):
            yield World(
                root, w3, keys, clients, settings, model_dir, root / "index", model_id, server.url, auditor, voter
            )
        await w3.provider.disconnect()


def _request(n: int) -> tuple[str, dict[str, Any]]:
    if n % 2:
        message = {"role": "user", "content": f"Tell me about Python lists ({n})."}
        return "chat", {"messages": [message], "max_tokens": OUTPUT_TOKENS, "temperature": 1.0, "seed": n}
    return "summarize", {
        "text": f"Request {n}: the for statement iterates over a sequence.",
        "max_words": OUTPUT_TOKENS,
    }


@contextlib.asynccontextmanager
async def _serve(world: World, agent: Case, operator: int, vllm_url: str) -> AsyncIterator[AgentService]:
    parts = agent.parts(world)
    settings = AgentSettings(
        agent=parts.pop("agent", EXAMPLE),
        port=0,
        vllm_url=vllm_url,
        index=world.index_dir,
        tokenizer=world.model_dir,
        model_id="0x" + world.model_id.hex(),
        journal=world.root / f"journal-{operator}.sqlite",
        stake="1000",
    )
    signer = Account.from_key(secrets.token_bytes(32))
    async with AgentService.start(settings, world.chain, operator=world.keys[operator], signer=signer, **parts) as s:
        yield s


async def run(world: World, agent: Case, operator: int, vllm_url: str) -> Outcome:
    """One agent's epoch: paid, committed, reported, audited, voted on and resolved."""
    auditor, voter = world.auditor, world.voter
    outcome = Outcome(agent)
    async with _serve(world, agent, operator, vllm_url) as service:
        address = service.client.address
        store = world.root / f"payer-{operator}.sqlite"
        async with AgentClient(
            service.url, world.keys[PAYER], chain=world.clients[PAYER], deposit=REQUESTS * PRICE, store=store
        ) as payer:
            for n in range(REQUESTS):
                skill, payload = _request(n)
                await payer.call(skill, payload)
                outcome.skills.append(skill)
            receipts = [stored.receipt for stored in await payer.receipts()]
        (commit,) = await service.jobs.commit_epochs(force=True)
        (committed,) = await service.client.receipts.events.EpochCommitted().get_logs(
            argument_filters={"agent": address, "epoch": commit.epoch}, from_block=world.clients[0].deployment.block
        )
        outcome.commit_block = int(committed["blockNumber"])
        outcome.commit_time = int((await world.w3.eth.get_block(outcome.commit_block))["timestamp"])
        await advance_time(world.w3, 1)  # the seed block of the validators' samples
        async with aiohttp.ClientSession(auditor.url) as intake:
            for receipt in receipts:
                async with intake.post("/v1/receipts", json=receipt.model_dump(mode="json", by_alias=True)) as r:
                    r.raise_for_status()
        for _ in range(2):  # a record not served is looked for again before it is challenged
            await auditor.run_once()
        await voter.run_once()
        audits = await auditor.state.audits(address, commit.epoch)
        reports = [r for r in await auditor.state.reports() if int(r.receipt.agent, 16) == int(address, 16)]
        outcome.findings = sum(bool(a.codes) for a in audits) + sum(bool(r.codes) for r in reports)
        challenges = [c for c in await auditor.state.challenges() if int(c.agent, 16) == int(address, 16)]
        outcome.disputes = len(challenges)
        outcome.caught = {c.seq for c in challenges if c.kind is agent.fault}
    # Past the deadline of the agent's disputes: the voting period of bonded ones, the response window of
    # withholding ones; an equivocation was slashed when proven, and the honest agent has none.
    parameters = world.clients[0].deployment.parameters.disputes
    windows: dict[DisputeKind | None, int] = {
        None: 0,
        DisputeKind.EQUIVOCATION: 0,
        DisputeKind.WITHHOLDING: parameters.response_window,
    }
    await advance_time(world.w3, windows.get(agent.fault, parameters.voting_period) + 1)
    await auditor.follow_events()
    await auditor.resolve()
    slashed = (
        await world.clients[0]
        .staking.events.Slashed()
        .get_logs(argument_filters={"operator": address}, from_block=outcome.commit_block)
    )
    for log in slashed:
        block = int(log["blockNumber"])
        outcome.slashes.append((block, int((await world.w3.eth.get_block(block))["timestamp"])))
    return outcome


async def measure(root: Path) -> list[Outcome]:
    """Runs every agent of :data:`AGENTS`, each under its own operator, on one chain."""
    outcomes = []
    async with _world(root) as world:
        for operator, agent in enumerate(AGENTS, start=FIRST_OPERATOR):
            if agent.cheap_model:
                model_dir = await asyncio.to_thread(cheaters.build_cheap_model, root / "cheap-model")
                async with VLLMServer(model_dir, name=MODEL, kv_cache_gib=1, ready_timeout=900) as cheap:
                    outcomes.append(await run(world, agent, operator, cheap.url))
            else:
                outcomes.append(await run(world, agent, operator, world.vllm_url))
    return outcomes


def caught_at_rate(outcome: Outcome, rate: float, samples: int) -> tuple[float, float]:
    """The probability a validator auditing ``rate`` of the epoch challenges the agent: computed from the detection
    rate, and measured over ``samples`` random samples of the epoch's actual outcomes."""
    cheating = outcome.cheating
    detected = len(outcome.caught & set(cheating)) / len(cheating) if cheating else 0.0
    computed = 1 - (1 - rate * detected) ** len(cheating)
    hits = sum(
        bool(outcome.caught.intersection(sample_positions(secrets.token_bytes(32), len(outcome.skills), rate)))
        for _ in range(samples)
    )
    return computed, hits / samples


def _share(caught: set[int], seqs: list[int]) -> str | None:
    return f"{len(caught & set(seqs))}/{len(seqs)}" if seqs else None


def _row(outcome: Outcome) -> tuple[Cell, ...]:
    """One agent's line: caught greedy and sampled receipts, detection rate, chance at the sample rate, timing."""
    agent, cheating = outcome.agent, outcome.cheating
    greedy = [seq for seq in cheating if outcome.skills[seq] == "summarize"]
    sampled = [seq for seq in cheating if outcome.skills[seq] == "chat"]
    rate = len(outcome.caught & set(cheating)) / len(cheating) * 100 if cheating else None
    computed: Cell = None
    measured: Cell = None
    if agent.fault in {DisputeKind.OUTPUT, DisputeKind.ATTRIBUTION}:
        computed, measured = caught_at_rate(outcome, SAMPLE_RATE, SAMPLES)
    elif agent.fault is not None:
        computed = "any rate (payer's report)"
    blocks: Cell = None
    seconds: Cell = None
    if outcome.slashes:
        block, at = outcome.slashes[0]
        blocks, seconds = block - outcome.commit_block, at - outcome.commit_time
    return (
        agent.name,
        agent.fault.name.lower() if agent.fault is not None else None,
        _share(outcome.caught, greedy),
        _share(outcome.caught, sampled),
        rate,
        computed,
        measured,
        outcome.findings,
        outcome.disputes,
        len(outcome.slashes),
        blocks,
        seconds,
    )


async def main() -> Section:
    # The cheats make hosts and validators log every refusal, failed audit and challenge: the figures are the output.
    logging.disable(logging.CRITICAL)
    with tempfile.TemporaryDirectory(prefix="bench-detection-") as directory:
        outcomes = await measure(Path(directory))
    (honest,) = (outcome for outcome in outcomes if outcome.agent.fault is None)
    baseline = Baseline(name="honest agent: share of its receipts challenged", value=honest.disputes / REQUESTS * 100)
    figures = [
        Figure(
            name=f"detection rate, {outcome.agent.name} ({outcome.agent.fault.name.lower()})",
            value=len(outcome.caught & set(outcome.cheating)) / len(outcome.cheating) * 100,
            unit="%",
            baseline=baseline,
            better=Better.HIGHER,
        )
        for outcome in outcomes
        if outcome.agent.fault is not None
    ]
    greedy_n, sampled_n = (REQUESTS + 1) // 2, REQUESTS // 2
    disputes = DeploymentConfig().disputes
    table = Table(
        title=f"{REQUESTS} paid requests per agent ({greedy_n} greedy summaries, {sampled_n} sampled chats), every "
        "receipt audited and reported by the payer",
        columns=(
            "agent",
            "fault",
            "greedy caught",
            "sampled caught",
            "detection %",
            f"P(caught) r={SAMPLE_RATE:g}, computed",
            "measured",
            "findings",
            "disputes",
            "slashes",
            "commit->slash blocks",
            "commit->slash block s",
        ),
        rows=[_row(outcome) for outcome in outcomes],
    )
    return Section(
        suite=SUITE,
        title="How surely and how fast validators catch each cheating agent, beside an honest one",
        description=(
            "One anvil with the deployed suite, CPython's reference topics registered as the tiny model's datanet "
            "and one vLLM CPU server (a second one with other weights for the cheaper-model agent). Each agent of "
            f"examples/cheaters.py, and the honest summarizer first as the baseline, serves {REQUESTS} paid calls of "
            f"{OUTPUT_TOKENS} tokens from one payer, commits them as one epoch, and the payer reports every receipt "
            "to a validator that audits all of them (rate 1.0) and challenges; a second validator votes. Detection "
            "rate: the share of cheating receipts challenged for the cheat's fault. P(caught): the chance that a "
            f"validator auditing {SAMPLE_RATE:g} of the epoch challenges, computed as 1 - (1 - r d)^n and measured "
            f"over {SAMPLES:,} random samples. Commit to slash: anvil blocks and block-time seconds from the commit to "
            f"the first Slashed event, bounded by the voting period ({disputes.voting_period} s) for bonded "
            f"challenges, the response window ({disputes.response_window} s) for withholding and nothing for "
            "equivocation; anvil mines one block per transaction."
        ),
        figures=figures,
        tables=[table],
        charts=[BarChart.of("detection-rate", "Detection rate per cheat, every receipt audited", figures)],
    )


if __name__ == "__main__":
    run_alone(SUITE, main)
