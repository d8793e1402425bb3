"""Every cheat of examples/cheaters.py caught and slashed end to end, on anvil and vLLM CPU, by the real validator
daemon.

One chain and two staked validators serve the whole module: keys[5] audits every receipt and challenges, keys[6]
audits nothing itself but re-audits and votes on the others' challenges, so a bonded challenge reaches its quorum.
Each test starts one cheating agent under its own operator (keys[8] and up) and receipt signer, has keys[2] pay it
a few greedy summaries over HTTP with channel vouchers, commits the agent's epoch, runs the validators' jobs by hand,
moves block time past the deadline and checks the outcome on chain:

=============================== ============================== ====================================================
cheat                           caught as                      outcome
=============================== ============================== ====================================================
cheaper model, forged output,   an Output challenge per        upheld by the vote: each slashes ``outputSlashBps``
edited output                   receipt, with evidence         of the agent's stake, refunds the payer the price,
                                                               returns the challenger its bond with a reward
wrong attribution               an Attribution challenge per   the same
                                receipt
two answers for one request     equivocation, proven from the  slashed at once, ``equivocationSlashBps`` each; the
                                payer's reported receipt       prover rewarded; nothing to refund
receipt left out of the epoch,  inclusion challenges the       slashed ``withholdingSlashBps`` each after the
records refused                 agent does not answer          response window; the bond back with a reward
=============================== ============================== ====================================================

The cheaper model runs on a second vLLM server, started in its test and stopped after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak
from web3 import AsyncWeb3

from agents import VLLMBackend, VLLMServer, load_agent_class
from agents.record import SignedReceiptDocument, receipt_access_header
from runtime.api import SkillResponse
from runtime.config import AgentSettings
from runtime.journal import EpochCommit
from runtime.serve import AgentService
from staking import Anvil, ChainSettings, StakingClient, advance_time, dev_accounts
from staking.deploy import DisputeParameters
from staking.types import DisputeKind, DisputeState, Role

# The runtime's agent host fixtures (its agent_settings replaced by one per cheater), on this module's chain.
from tests.runtime.conftest import (  # noqa: F401
    EXAMPLE_AGENT,
    PAYER,
    chain_settings,
    clients,
    docs_index,
    model_id,
)
from tests.validator.paying import MODEL, PRICE, greedy, open_channels, pay_many, validator_settings
from validator import (
    AuditOutcome,
    AuditRecord,
    AuditStatus,
    ChallengeRecord,
    ReportStatus,
    ValidatorDaemon,
    ValidatorSettings,
    VoteDecision,
)

pytestmark = pytest.mark.chain

#: More funded accounts than the root conftest's 8: every cheater has an operator of its own.
ACCOUNTS = 16
#: keys[5] audits every receipt and challenges; keys[6] audits nothing but votes.
AUDITOR, VOTER = 5, 6
EDITING, FORGING, MISATTRIBUTING, CHEAP, EQUIVOCATING, OMITTING, REFUSING = range(8, 15)
#: Paid requests per cheater: each cheating receipt is disputed on its own.
REQUESTS = 3
CHEATERS = Path(__file__).parents[2] / "examples" / "cheaters.py"
# examples/ is not a package: the module is loaded the way an agent host loads an agent's file.
cheaters = sys.modules[load_agent_class(f"{CHEATERS}:EditingSummarizer").__module__]


@pytest.fixture(scope="module")
async def chain() -> AsyncIterator[Anvil]:
    async with Anvil(accounts=ACCOUNTS) as anvil:
        yield anvil


@pytest.fixture(scope="module")
def keys() -> list[LocalAccount]:
    return dev_accounts(ACCOUNTS)


@dataclass(frozen=True)
class World:
    """The module's chain, accounts, registered model and validators."""

    w3: AsyncWeb3[Any]
    keys: list[LocalAccount]
    clients: list[StakingClient]
    chain_settings: ChainSettings
    model_id: bytes
    index: Path
    tokenizer: Path
    vllm_url: str
    journals: Path
    auditor: ValidatorDaemon
    voter: ValidatorDaemon

    @property
    def disputes(self) -> DisputeParameters:
        return self.clients[0].deployment.parameters.disputes

    @property
    def payer(self) -> StakingClient:
        return self.clients[PAYER]


@pytest.fixture(scope="module")
async def world(
    w3: AsyncWeb3[Any],
    keys: list[LocalAccount],
    clients: list[StakingClient],  # noqa: F811
    chain_settings: ChainSettings,  # noqa: F811
    model_id: bytes,  # noqa: F811
    docs_index: Path,  # noqa: F811
    tiny_model_dir: Path,
    vllm_server: VLLMServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[World]:
    root = tmp_path_factory.mktemp("cheaters")

    def settings(name: str, rate: float) -> ValidatorSettings:
        # The validators replay the agents' published class, not the one a cheater runs.
        state = root / f"{name}.sqlite"
        return validator_settings(
            state, model_id, tiny_model_dir, docs_index, vllm_server.url, EXAMPLE_AGENT, sample_rate=rate
        )

    async with (
        ValidatorDaemon.start(settings("auditor", 1.0), chain_settings, account=keys[AUDITOR], scheduled=False) as a,
        ValidatorDaemon.start(settings("voter", 0.0), chain_settings, account=keys[VOTER], scheduled=False) as v,
    ):
        yield World(
            w3, keys, clients, chain_settings, model_id, docs_index, tiny_model_dir, vllm_server.url, root, a, v
        )


@contextlib.asynccontextmanager
async def cheater(
    world: World, operator: int, *, agent: str = EXAMPLE_AGENT, vllm_url: str | None = None, **swapped: Any
) -> AsyncIterator[AgentService]:
    """The summarizer served under ``operator`` with its own signer, ``swapped`` parts passed to
    ``AgentService.start`` (``host_class``, ``jobs_class``, ``backend``)."""
    settings = AgentSettings(
        agent=agent,
        port=0,
        vllm_url=vllm_url or world.vllm_url,
        index=world.index,
        tokenizer=world.tokenizer,
        model_id="0x" + world.model_id.hex(),
        journal=world.journals / f"journal-{operator}.sqlite",
        stake="1000",
    )
    signer = Account.from_key(keccak(text=f"the receipt signer of operator {operator}"))
    async with AgentService.start(
        settings, world.chain_settings, operator=world.keys[operator], signer=signer, **swapped
    ) as service:
        yield service


async def pay_and_commit(
    world: World, service: AgentService, count: int = REQUESTS
) -> tuple[list[SkillResponse], EpochCommit]:
    """``count`` paid greedy summaries, then the agent's epoch committed by its own jobs and the block that seeds
    the validators' samples mined."""
    async with aiohttp.ClientSession(service.url) as http:
        channels = await open_channels(http, world.keys[PAYER], world.payer, service.client.address, 1, count)
        answers = await pay_many(http, channels, [greedy(n) for n in range(count)])
    (commit,) = await service.jobs.commit_epochs(force=True)
    await advance_time(world.w3, 1)
    return answers, commit


async def report(daemon: ValidatorDaemon, receipts: Sequence[SignedReceiptDocument]) -> None:
    """The payer posts the receipts it holds to the validator's intake."""
    async with aiohttp.ClientSession(daemon.url) as intake:
        for receipt in receipts:
            body = receipt.model_dump(mode="json", by_alias=True)
            async with intake.post("/v1/receipts", json=body) as response:
                assert response.status == 202, await response.text()


@dataclass(frozen=True)
class Money:
    """The agent's stake and the payer's and the auditing validator's OPEN, at one moment."""

    active: int
    slashable: int
    payer: int
    auditor: int


async def money(world: World, agent: str) -> Money:
    stake = await world.payer.stake_info(agent, Role.AGENT)
    return Money(
        stake.active,
        stake.slashable,
        await world.payer.balance_of(world.payer.address),
        await world.payer.balance_of(world.auditor.address),
    )


def summary(answer: SkillResponse) -> str:
    """The summary a paid answer carries."""
    assert isinstance(answer.output, dict)
    return str(answer.output["summary"])


def slashes(slashable: int, bps: int, count: int) -> list[int]:
    """The amounts ``count`` slashes of ``bps`` take one after the other from ``slashable`` stake."""
    amounts = []
    for _ in range(count):
        amounts.append(slashable * bps // 10_000)
        slashable -= amounts[-1]
    return amounts


def reward(amounts: Sequence[int], bps: int) -> int:
    return sum(amount * bps // 10_000 for amount in amounts)


async def audits_of(world: World, commit: EpochCommit, agent: str) -> tuple[AuditRecord, ...]:
    return await world.auditor.state.audits(agent, commit.epoch)


async def challenges_of(world: World, agent: str) -> list[ChallengeRecord]:
    return [c for c in await world.auditor.state.challenges() if int(c.agent, 16) == int(agent, 16)]


async def challenged_upheld_and_slashed(
    world: World, service: AgentService, commit: EpochCommit, kind: DisputeKind, codes: set[str]
) -> None:
    """The bonded path: every receipt of the epoch fails its audit with findings among ``codes`` only, is
    challenged as ``kind`` with evidence, upheld by the other validator's re-audit, and slashed at resolution, the
    payer refunded and the challenger paid."""
    agent, auditor, voter = service.client.address, world.auditor, world.voter
    assert await auditor.run_once() == ()
    audits = await audits_of(world, commit, agent)
    assert [audit.seq for audit in audits] == list(range(commit.receipt_count))
    for audit in audits:
        assert audit.outcome is AuditOutcome.FAILED
        assert audit.codes
        assert set(audit.codes) <= codes, audit.codes
    challenges = await challenges_of(world, agent)
    assert sorted((c.kind, c.epoch, c.seq) for c in challenges) == [
        (kind, commit.epoch, seq) for seq in range(commit.receipt_count)
    ]
    assert all(challenge.evidence_hash is not None for challenge in challenges)

    assert await voter.run_once() == ()
    votes = {vote.dispute_id: vote for vote in await voter.state.votes()}
    assert {votes[c.dispute_id].decision for c in challenges} == {VoteDecision.UPHOLD}

    before = await money(world, agent)
    await advance_time(world.w3, world.disputes.voting_period + 1)
    resolutions = await voter.resolve()
    ids = {challenge.dispute_id for challenge in challenges}
    assert sorted(r.dispute_id for r in resolutions) == sorted(ids)
    amounts = slashes(before.slashable, world.disputes.output_slash_bps, len(challenges))
    assert [(r.state, r.slashed) for r in resolutions] == [(DisputeState.UPHELD, amount) for amount in amounts]
    after = await money(world, agent)
    assert (after.active, after.slashable) == (before.active - sum(amounts), before.slashable - sum(amounts))
    assert after.payer == before.payer + len(challenges) * PRICE
    bonds = len(challenges) * world.disputes.challenge_bond
    assert after.auditor == before.auditor + bonds + reward(amounts, world.disputes.challenger_reward_bps)


async def withheld_and_slashed(world: World, service: AgentService, challenges: list[ChallengeRecord]) -> None:
    """The withholding path: the agent does not prove the challenged receipts, and after the response window each
    challenge slashes it, returning the challenger its bond with a reward; no payer is refunded."""
    agent = service.client.address
    for challenge in challenges:
        dispute = await world.payer.dispute(challenge.dispute_id)
        assert (dispute.kind, dispute.state, dispute.challenger) == (
            DisputeKind.WITHHOLDING, DisputeState.OPEN, world.auditor.address,
        )  # fmt: skip
    assert await service.jobs.answer_inclusion_challenges() == ()  # the agent cannot, or will not, prove them
    before = await money(world, agent)
    assert await world.auditor.follow_events() >= len(challenges)  # its own challenges, as the chain has them
    assert await world.auditor.resolve() == ()  # not before the deadline
    await advance_time(world.w3, world.disputes.response_window + 1)
    resolutions = await world.auditor.resolve()
    assert sorted(r.dispute_id for r in resolutions) == sorted(c.dispute_id for c in challenges)
    amounts = slashes(before.slashable, world.disputes.withholding_slash_bps, len(challenges))
    assert [(r.state, r.slashed) for r in resolutions] == [(DisputeState.UPHELD, amount) for amount in amounts]
    after = await money(world, agent)
    assert (after.active, after.slashable) == (before.active - sum(amounts), before.slashable - sum(amounts))
    assert after.payer == before.payer
    bonds = len(challenges) * world.disputes.inclusion_bond
    assert after.auditor == before.auditor + bonds + reward(amounts, world.disputes.prover_reward_bps)


async def test_an_output_edited_after_generation_is_caught_by_replay_voted_and_slashed(world: World) -> None:
    async with cheater(world, EDITING, agent=f"{CHEATERS}:EditingSummarizer") as service:
        answers, commit = await pay_and_commit(world, service)
        assert all(summary(answer).endswith(cheaters.EDIT) for answer in answers)
        await challenged_upheld_and_slashed(world, service, commit, DisputeKind.OUTPUT, {"replay-differs"})


async def test_a_fabricated_output_is_caught_by_rescoring_voted_and_slashed(world: World) -> None:
    forging = cheaters.ForgingBackend(VLLMBackend(world.vllm_url, dtype="float32"))
    async with cheater(world, FORGING, backend=forging) as service:
        answers, commit = await pay_and_commit(world, service)
        for answer in answers:
            assert summary(answer)
            assert cheaters.FABRICATED.startswith(summary(answer))
        # Its likelihoods are the model's own: only the greedy rule (tokens that are not the arg-max) catches it.
        await challenged_upheld_and_slashed(world, service, commit, DisputeKind.OUTPUT, {"token-violation"})


async def test_a_wrong_attribution_is_caught_by_recomputing_it_voted_and_slashed(world: World) -> None:
    async with cheater(world, MISATTRIBUTING, host_class=cheaters.MisattributingHost) as service:
        _, commit = await pay_and_commit(world, service)
        await challenged_upheld_and_slashed(world, service, commit, DisputeKind.ATTRIBUTION, {"attribution-mismatch"})


async def test_a_cheaper_model_under_the_registered_name_is_caught_by_rescoring_voted_and_slashed(
    world: World, tmp_path: Path
) -> None:
    model_dir = await asyncio.to_thread(cheaters.build_cheap_model, tmp_path / "cheap-model")
    async with (
        VLLMServer(model_dir, name=MODEL, kv_cache_gib=1, ready_timeout=900) as cheap,
        cheater(world, CHEAP, vllm_url=cheap.url) as service,
    ):
        _, commit = await pay_and_commit(world, service)
        await challenged_upheld_and_slashed(
            world, service, commit, DisputeKind.OUTPUT, {"token-violation", "likelihood-mismatch"}
        )


async def test_two_answers_signed_for_one_request_are_proven_from_the_payers_receipt_and_slashed_at_once(
    world: World,
) -> None:
    async with cheater(world, EQUIVOCATING, host_class=cheaters.EquivocatingHost) as service:
        agent = service.client.address
        answers, commit = await pay_and_commit(world, service, count=2)
        assert all(summary(answer).endswith(" (revised)") for answer in answers)
        before = await money(world, agent)
        await report(world.auditor, [answer.receipt for answer in answers])
        assert not await challenges_of(world, agent)  # one receipt of each request is held so far: nothing to prove

        # Auditing the epoch, the validator reads the agent's own receipts: each contradicts one the payer holds.
        assert await world.auditor.run_once() == ()
        audits = await audits_of(world, commit, agent)
        assert [(a.seq, a.outcome) for a in audits] == [(0, AuditOutcome.PASSED), (1, AuditOutcome.PASSED)]
        proofs = await challenges_of(world, agent)
        assert sorted(c.subject.hex() for c in proofs) == sorted(a.request_id[2:] for a in answers)
        assert {c.kind for c in proofs} == {DisputeKind.EQUIVOCATION}
        for proof in proofs:
            dispute = await world.payer.dispute(proof.dispute_id)
            assert (dispute.state, dispute.challenger) == (DisputeState.UPHELD, world.auditor.address)
    amounts = slashes(before.slashable, world.disputes.equivocation_slash_bps, len(proofs))
    await world.auditor.follow_events()
    resolved = {r.dispute_id: r for r in await world.auditor.state.resolutions()}
    assert [resolved[proof.dispute_id].slashed for proof in sorted(proofs, key=lambda c: c.dispute_id)] == amounts
    after = await money(world, agent)
    assert (after.active, after.slashable) == (before.active - sum(amounts), before.slashable - sum(amounts))
    assert after.payer == before.payer
    assert after.auditor == before.auditor + reward(amounts, world.disputes.prover_reward_bps)


async def test_a_receipt_left_out_of_the_committed_epoch_is_challenged_and_slashed_as_withheld(world: World) -> None:
    async with cheater(world, OMITTING, jobs_class=cheaters.OmittingJobs) as service:
        agent = service.client.address
        answers, commit = await pay_and_commit(world, service)
        assert commit.receipt_count == REQUESTS - 1
        omitted = answers[-1].receipt
        await report(world.auditor, [omitted])

        assert await world.auditor.run_once() == ()
        audits = await audits_of(world, commit, agent)
        assert [(a.seq, a.outcome) for a in audits] == [(0, AuditOutcome.PASSED), (1, AuditOutcome.PASSED)]
        (followed,) = [r for r in await world.auditor.state.reports() if r.receipt == omitted]
        assert (followed.status, followed.outcome, followed.codes) == (
            ReportStatus.DONE, AuditOutcome.FAILED, ("not-included",),
        )  # fmt: skip
        challenges = await challenges_of(world, agent)
        assert [(c.kind, c.epoch, c.seq) for c in challenges] == [(DisputeKind.WITHHOLDING, commit.epoch, 2)]
        await withheld_and_slashed(world, service, challenges)


async def test_an_agent_refusing_to_serve_its_records_is_challenged_and_slashed_as_withholding(world: World) -> None:
    async with cheater(world, REFUSING, host_class=cheaters.RefusingHost, jobs_class=cheaters.SilentJobs) as service:
        agent = service.client.address
        answers, commit = await pay_and_commit(world, service, count=2)
        # Not even the payer gets its record.
        path = f"/v1/receipts/{answers[0].request_id}"
        header = receipt_access_header(world.keys[PAYER], agent, path, int(time.time()))
        async with aiohttp.ClientSession(service.url) as http, http.get(path, headers={"Authorization": header}) as r:
            assert r.status == 404
        await report(world.auditor, [answer.receipt for answer in answers])

        # Sampled, the records are not served: tried again, then challenged with the receipts the payer reported.
        assert await world.auditor.run_once() == ()
        assert not await challenges_of(world, agent)
        unserved = await world.auditor.audit()
        assert [(a.seq, a.status) for a in unserved] == [(0, AuditStatus.UNSERVED), (1, AuditStatus.UNSERVED)]
        challenges = await challenges_of(world, agent)
        assert sorted((c.kind, c.epoch, c.seq) for c in challenges) == [
            (DisputeKind.WITHHOLDING, commit.epoch, seq) for seq in range(2)
        ]
        await withheld_and_slashed(world, service, challenges)
