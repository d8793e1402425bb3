"""The validator daemon against a real honest agent host (anvil + vLLM CPU + examples/summarizer.py): over 208 paid
receipts, greedy and sampled, one validator auditing every receipt and one auditing a sample find nothing and
challenge nothing; a false challenge of the honest agent is re-audited and voted down, and restarting the daemon
repeats neither an audit nor a vote, and still resolves the dispute after its deadline.

The daemons run with ``scheduled=False`` and their jobs are driven by hand (``run_once`` and the job coroutines).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak
from web3 import AsyncWeb3

from agents import VLLMServer
from runtime.api import SkillResponse
from runtime.serve import AgentService
from staking import ChainSettings, StakingClient, advance_time
from staking.types import DisputeKind, DisputeState

# The runtime's agent host fixtures, shared with this module (one chain per module, the session's vLLM).
from tests.runtime.conftest import (  # noqa: F401
    EXAMPLE_AGENT,
    PAYER,
    agent_service,
    agent_settings,
    chain_settings,
    clients,
    docs_index,
    model_id,
    signer,
)
from validator import (
    AuditOutcome,
    AuditRecord,
    AuditStatus,
    ValidatorDaemon,
    ValidatorSettings,
    VoteDecision,
    sample_positions,
    sampling_seed,
)

from .paying import greedy, open_channels, pay_many, sampled, validator_settings

pytestmark = pytest.mark.chain

RECEIPTS = 208
CHANNELS = 8
#: keys[5] audits every receipt, keys[6] a quarter of them; keys[4] challenges an honest answer for nothing.
FULL, SAMPLER, CHALLENGER = 5, 6, 4
SAMPLE_RATE = 0.25


@dataclass(frozen=True)
class Epoch:
    number: int
    answers: list[SkillResponse]


@dataclass(frozen=True)
class Audited:
    """What the two validators did with the epoch, and their metrics."""

    full: tuple[AuditRecord, ...]
    sampled: tuple[AuditRecord, ...]
    seed_block: int
    metrics: str


@pytest.fixture(scope="module")
async def http(agent_service: AgentService) -> AsyncIterator[aiohttp.ClientSession]:  # noqa: F811
    async with aiohttp.ClientSession(agent_service.url) as session:
        yield session


@pytest.fixture(scope="module")
async def epoch(
    agent_service: AgentService,  # noqa: F811
    http: aiohttp.ClientSession,
    clients: list[StakingClient],  # noqa: F811
    keys: list[LocalAccount],
    w3: AsyncWeb3[Any],
) -> Epoch:
    """208 paid answers, greedy summaries and sampled chats in turn, committed by the agent as one epoch."""
    agent = agent_service.client.address
    channels = await open_channels(http, keys[PAYER], clients[PAYER], agent, CHANNELS, RECEIPTS // CHANNELS)
    answers = await pay_many(http, channels, [greedy(n) if n % 2 else sampled(n) for n in range(RECEIPTS)])
    (commit,) = await agent_service.jobs.commit_epochs(force=True)
    assert commit.receipt_count == RECEIPTS
    await advance_time(w3, 1)  # mines the block after the commit, whose hash seeds the samples
    return Epoch(commit.epoch, answers)


@pytest.fixture(scope="module")
def state_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("validators")


def settings_for(
    state: Path, model: bytes, tokenizer: Path, index: Path, vllm_server: VLLMServer, rate: float
) -> ValidatorSettings:
    return validator_settings(state, model, tokenizer, index, vllm_server.url, EXAMPLE_AGENT, sample_rate=rate)


@pytest.fixture(scope="module")
async def audited(
    epoch: Epoch,
    state_files: Path,
    chain_settings: ChainSettings,  # noqa: F811
    keys: list[LocalAccount],
    model_id: bytes,  # noqa: F811
    tiny_model_dir: Path,
    docs_index: Path,  # noqa: F811
    vllm_server: VLLMServer,
) -> Audited:
    """Both validators started on the committed epoch and every job run once."""
    full = settings_for(state_files / "full.sqlite", model_id, tiny_model_dir, docs_index, vllm_server, 1.0)
    rate = settings_for(state_files / "sampled.sqlite", model_id, tiny_model_dir, docs_index, vllm_server, SAMPLE_RATE)
    async with (
        ValidatorDaemon.start(full, chain_settings, account=keys[FULL], scheduled=False) as everything,
        ValidatorDaemon.start(rate, chain_settings, account=keys[SAMPLER], scheduled=False) as sample,
    ):
        assert await everything.run_once() == ()
        assert await sample.run_once() == ()
        committed = await sample.state.epoch(epoch.answers[0].receipt.agent, epoch.number)
        assert committed is not None
        assert committed.seed_block is not None
        async with aiohttp.ClientSession(everything.url) as session, session.get("/metrics") as response:
            metrics = await response.text()
        return Audited(await everything.state.audits(), await sample.state.audits(), committed.seed_block, metrics)


async def test_an_honest_agent_is_never_challenged_over_208_greedy_and_sampled_receipts(
    audited: Audited,
    epoch: Epoch,
    agent_service: AgentService,  # noqa: F811
    keys: list[LocalAccount],
    w3: AsyncWeb3[Any],
) -> None:
    calls = {answer.skill for answer in epoch.answers}
    assert calls == {"summarize", "chat"}  # greedy and sampled decoding
    # Every receipt audited by the first validator, each the agent's answer at its position, none with a finding.
    assert [(audit.epoch, audit.seq) for audit in audited.full] == [(epoch.number, seq) for seq in range(RECEIPTS)]
    by_seq = {answer.receipt.seq: answer.request_id for answer in epoch.answers}
    for audit in (*audited.full, *audited.sampled):
        assert (audit.status, audit.outcome, audit.codes) == (AuditStatus.DONE, AuditOutcome.PASSED, ())
        assert audit.request_id == by_seq[audit.seq]
    # The second validator audited its own sample: the positions its key draws from the seed block's hash.
    seed_hash = bytes((await w3.eth.get_block(audited.seed_block))["hash"])
    agent = agent_service.client.address
    expected = sample_positions(sampling_seed(keys[SAMPLER], agent, epoch.number, seed_hash), RECEIPTS, SAMPLE_RATE)
    assert tuple(audit.seq for audit in audited.sampled) == expected
    assert 0 < len(expected) < RECEIPTS
    # Nothing was disputed, by either validator.
    assert await agent_service.client.dispute_count() == 0
    assert f'staked_validator_audits_total{{outcome="passed"}} {float(RECEIPTS)}' in audited.metrics
    assert "staked_validator_challenges_total{" not in audited.metrics
    stake = re.search(r"^staked_validator_stake_wei (\S+)$", audited.metrics, re.M)
    assert stake is not None
    assert float(stake.group(1)) == 1000 * 10**18


async def test_a_false_challenge_is_voted_down_and_a_restart_repeats_no_audit_and_no_vote(
    audited: Audited,
    epoch: Epoch,
    state_files: Path,
    chain_settings: ChainSettings,  # noqa: F811
    clients: list[StakingClient],  # noqa: F811
    keys: list[LocalAccount],
    model_id: bytes,  # noqa: F811
    tiny_model_dir: Path,
    docs_index: Path,  # noqa: F811
    vllm_server: VLLMServer,
    agent_service: AgentService,  # noqa: F811
    w3: AsyncWeb3[Any],
) -> None:
    challenger, agent = clients[CHALLENGER], agent_service.client
    target = epoch.answers[0].receipt
    dispute_id = await challenger.challenge(
        target.receipt, target.signature_bytes, DisputeKind.OUTPUT, keccak(b"no evidence at all")
    )
    settings = settings_for(state_files / "full.sqlite", model_id, tiny_model_dir, docs_index, vllm_server, 1.0)

    async with ValidatorDaemon.start(settings, chain_settings, account=keys[FULL], scheduled=False) as daemon:
        assert await daemon.run_once() == ()
        # The only audit of this run is the vote's re-audit of the disputed receipt: no sampled position again.
        assert repr(daemon.auditor).endswith("audits=1 failed=0>")
        (vote,) = await daemon.state.votes()
        assert (vote.dispute_id, vote.decision, vote.tx_hash is not None) == (dispute_id, VoteDecision.REJECT, True)
        assert "no OUTPUT fault" in vote.reason
    dispute = await agent.dispute(dispute_id)
    assert (dispute.state, dispute.uphold_weight, dispute.reject_weight) == (DisputeState.OPEN, 0, 1000 * 10**18)

    async with ValidatorDaemon.start(settings, chain_settings, account=keys[FULL], scheduled=False) as daemon:
        assert await daemon.run_once() == ()
        assert repr(daemon.auditor).endswith("audits=0 failed=0>")  # neither audits nor votes again
        assert len(await daemon.state.votes()) == 1
        assert (await agent.dispute(dispute_id)).reject_weight == 1000 * 10**18
        bond = agent.deployment.parameters.disputes.challenge_bond
        assert await agent.balance_of(agent.disputes.address) == bond  # held while the dispute is open
        await advance_time(w3, agent.deployment.parameters.disputes.voting_period + 1)
        (resolution,) = await daemon.resolve()
        assert (resolution.dispute_id, resolution.state, resolution.resolved_by_us) == (
            dispute_id, DisputeState.REJECTED, True,
        )  # fmt: skip
        assert await daemon.resolve() == ()
        assert len(await daemon.state.audits()) == RECEIPTS
    # A rejected challenge's bond is paid out (to the agent it accused).
    assert await agent.balance_of(agent.disputes.address) == 0
    assert (await agent.dispute(dispute_id)).state is DisputeState.REJECTED
