"""A bonded challenge end to end: an agent that edits its summaries after generation (examples/cheaters.py) is
caught by one validator's replay, challenged with the evidence it serves, upheld by a second validator's own
re-audit and slashed at resolution, with the payer refunded and the challenger rewarded. Both daemons run on anvil
and the session's vLLM against a real agent host, their jobs driven by hand.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from eth_account.signers.local import LocalAccount
from web3 import AsyncWeb3

from agents import VLLMServer
from runtime.config import AgentSettings
from runtime.serve import AgentService
from staking import ChainSettings, StakingClient, advance_time
from staking.types import DisputeKind, DisputeState, Role

# The runtime's agent host fixtures (its agent_settings replaced below), one chain per module, the session's vLLM.
from tests.runtime.conftest import (  # noqa: F401
    EXAMPLE_AGENT,
    OPERATOR,
    PAYER,
    agent_service,
    chain_settings,
    clients,
    docs_index,
    model_id,
    signer,
)
from tests.validator.paying import PRICE, greedy, open_channels, pay_many, validator_settings
from validator import AuditOutcome, Evidence, ValidatorDaemon, ValidatorSettings, VoteDecision

pytestmark = pytest.mark.chain

CHEAT = str(Path(__file__).parents[2] / "examples" / "cheaters.py") + ":EditingSummarizer"
#: keys[5] audits every receipt and challenges; keys[6] audits nothing but votes.
AUDITOR, VOTER = 5, 6


@pytest.fixture(scope="module")
def agent_settings(
    tmp_path_factory: pytest.TempPathFactory,
    vllm_server: VLLMServer,
    docs_index: Path,  # noqa: F811
    tiny_model_dir: Path,
    model_id: bytes,  # noqa: F811
) -> AgentSettings:
    return AgentSettings(
        agent=CHEAT,
        port=0,
        vllm_url=vllm_server.url,
        index=docs_index,
        tokenizer=tiny_model_dir,
        model_id="0x" + model_id.hex(),
        journal=tmp_path_factory.mktemp("journal") / "journal.sqlite",
        stake="1000",
    )


def settings_for(
    state: Path, model: bytes, tokenizer: Path, index: Path, vllm_server: VLLMServer, rate: float
) -> ValidatorSettings:
    # The validators replay the agent's published class, not the one it runs.
    return validator_settings(state, model, tokenizer, index, vllm_server.url, EXAMPLE_AGENT, sample_rate=rate)


@pytest.fixture(scope="module")
async def validators(
    agent_service: AgentService,  # noqa: F811
    chain_settings: ChainSettings,  # noqa: F811
    keys: list[LocalAccount],
    tmp_path_factory: pytest.TempPathFactory,
    model_id: bytes,  # noqa: F811
    tiny_model_dir: Path,
    docs_index: Path,  # noqa: F811
    vllm_server: VLLMServer,
) -> AsyncIterator[tuple[ValidatorDaemon, ValidatorDaemon]]:
    root = tmp_path_factory.mktemp("validators")
    auditing = settings_for(root / "auditor.sqlite", model_id, tiny_model_dir, docs_index, vllm_server, 1.0)
    voting = settings_for(root / "voter.sqlite", model_id, tiny_model_dir, docs_index, vllm_server, 0.0)
    async with (
        ValidatorDaemon.start(auditing, chain_settings, account=keys[AUDITOR], scheduled=False) as auditor,
        ValidatorDaemon.start(voting, chain_settings, account=keys[VOTER], scheduled=False) as voter,
    ):
        yield auditor, voter


async def test_an_edited_output_is_challenged_with_evidence_upheld_by_vote_and_slashed(
    validators: tuple[ValidatorDaemon, ValidatorDaemon],
    agent_service: AgentService,  # noqa: F811
    clients: list[StakingClient],  # noqa: F811
    keys: list[LocalAccount],
    w3: AsyncWeb3[Any],
) -> None:
    auditor, voter = validators
    operator, payer = clients[OPERATOR], clients[PAYER]
    async with aiohttp.ClientSession(agent_service.url) as http:
        channels = await open_channels(http, keys[PAYER], payer, operator.address, 1, 1)
        (answer,) = await pay_many(http, channels, [greedy(7)])
    assert isinstance(answer.output, dict)
    assert str(answer.output["summary"]).endswith(" Certified accurate.")
    (commit,) = await agent_service.jobs.commit_epochs(force=True)
    await advance_time(w3, 1)  # the seed block

    # The auditing validator replays the published class, finds the edit and challenges with evidence.
    assert await auditor.run_once() == ()
    (audit,) = await auditor.state.audits()
    assert (audit.epoch, audit.seq, audit.outcome, audit.codes) == (
        commit.epoch,
        0,
        AuditOutcome.FAILED,
        ("replay-differs",),
    )
    (challenge,) = await auditor.state.challenges()
    assert challenge.kind is DisputeKind.OUTPUT
    assert challenge.evidence_hash is not None
    path = "/v1/evidence/0x" + challenge.evidence_hash.hex()
    async with aiohttp.ClientSession(auditor.url) as http, http.get(path) as response:
        assert response.status == 200
        evidence = Evidence.model_validate_json(await response.read())
    assert evidence.evidence_hash == challenge.evidence_hash
    assert evidence.document.receipt == answer.receipt
    assert [finding.code for finding in evidence.findings] == ["replay-differs"]

    # The other validator re-audits the disputed receipt itself and upholds; the challenger cannot vote.
    assert await voter.run_once() == ()
    (vote,) = await voter.state.votes()
    assert (vote.dispute_id, vote.decision) == (challenge.dispute_id, VoteDecision.UPHOLD)
    assert "replay-differs" in vote.reason
    assert await auditor.vote() == ()  # it follows the events first
    await auditor.follow_events()
    (own,) = await auditor.vote()
    assert own.decision is VoteDecision.INELIGIBLE

    # After the voting period the dispute is upheld: the agent slashed, the payer refunded, the challenger paid.
    parameters = operator.deployment.parameters.disputes
    slashable = (await operator.stake_info(operator.address, Role.AGENT)).slashable
    paid, balance = await payer.balance_of(payer.address), await auditor.client.balance_of(auditor.address)
    await advance_time(w3, parameters.voting_period + 1)
    (resolution,) = await voter.resolve()
    slashed = slashable * parameters.output_slash_bps // 10_000
    assert (resolution.state, resolution.slashed) == (DisputeState.UPHELD, slashed)
    assert await payer.balance_of(payer.address) == paid + PRICE
    reward = slashed * parameters.challenger_reward_bps // 10_000
    assert await auditor.client.balance_of(auditor.address) == balance + parameters.challenge_bond + reward
    await auditor.follow_events()
    assert [r.state for r in await auditor.state.resolutions()] == [DisputeState.UPHELD]
    assert await auditor.resolve() == ()
