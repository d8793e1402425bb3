"""The validator daemon's on-chain proofs against a real agent host (anvil + vLLM CPU + examples/summarizer.py): a
receipt a payer reports that the agent left out of its committed epoch is challenged as withheld and the agent
slashed after the response window; two receipts signed for one request are proven as equivocation at once; the
receipts intake refuses what its agent did not sign; start-up refuses an unstaked validator and a foreign index;
``staked validator run --once`` runs every job once.

The withheld receipt is made by committing the agent's epoch by hand with a receipts root over all but one of its
receipts: the host's journal never sees that commit, so it cannot prove the receipt, as a cheating agent could not.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from click.testing import CliRunner
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak
from web3 import AsyncWeb3

from agents import VLLMServer
from agents.attribution import AttributionIndex
from agents.record import SignedReceiptDocument
from runtime.serve import AgentService
from staked.validator_cli import validator
from staking import ChainSettings, MerkleTree, StakingClient, advance_time, sign, to_wei_open
from staking.eip712 import struct_hash
from staking.types import DisputeKind, DisputeState, Role

# The runtime's agent host fixtures, shared with this module (one chain per module, the session's vLLM).
from tests.runtime.conftest import (  # noqa: F401
    EXAMPLE_AGENT,
    OPERATOR,
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
    IndexRootMismatchError,
    ReportStatus,
    ValidatorConfigError,
    ValidatorDaemon,
    ValidatorSettings,
)

from .paying import greedy, open_channels, pay_many, validator_settings

pytestmark = pytest.mark.chain

#: keys[5] validates; keys[6] holds no validator stake.
VALIDATOR, UNSTAKED = 5, 6
KEY_VARIABLE = "STAKED_TEST_VALIDATOR_KEY"


def settings_for(
    state: Path, model: bytes, tokenizer: Path, index: Path, vllm_server: VLLMServer, **options: object
) -> ValidatorSettings:
    # Rate 0: nothing is sampled, so only the receipts payers report are followed up here.
    return validator_settings(
        state, model, tokenizer, index, vllm_server.url, EXAMPLE_AGENT, **{"sample_rate": 0.0, **options}
    )


@pytest.fixture(scope="module")
async def http(agent_service: AgentService) -> AsyncIterator[aiohttp.ClientSession]:  # noqa: F811
    async with aiohttp.ClientSession(agent_service.url) as session:
        yield session


@pytest.fixture(scope="module")
async def daemon(
    agent_service: AgentService,  # noqa: F811
    chain_settings: ChainSettings,  # noqa: F811
    keys: list[LocalAccount],
    tmp_path_factory: pytest.TempPathFactory,
    model_id: bytes,  # noqa: F811
    tiny_model_dir: Path,
    docs_index: Path,  # noqa: F811
    vllm_server: VLLMServer,
) -> AsyncIterator[ValidatorDaemon]:
    state = tmp_path_factory.mktemp("validator") / "state.sqlite"
    settings = settings_for(state, model_id, tiny_model_dir, docs_index, vllm_server)
    async with ValidatorDaemon.start(settings, chain_settings, account=keys[VALIDATOR], scheduled=False) as running:
        yield running


@pytest.fixture(scope="module")
async def intake(daemon: ValidatorDaemon) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(daemon.url) as session:
        yield session


async def report(intake: aiohttp.ClientSession, receipt: SignedReceiptDocument) -> tuple[int, dict[str, object]]:
    """A payer posts a receipt it holds to the validator."""
    async with intake.post("/v1/receipts", json=receipt.model_dump(mode="json", by_alias=True)) as response:
        return response.status, await response.json()


async def test_a_receipt_left_out_of_its_committed_epoch_is_challenged_and_the_agent_slashed(
    daemon: ValidatorDaemon,
    intake: aiohttp.ClientSession,
    agent_service: AgentService,  # noqa: F811
    http: aiohttp.ClientSession,
    clients: list[StakingClient],  # noqa: F811
    keys: list[LocalAccount],
    w3: AsyncWeb3[Any],
) -> None:
    operator = clients[OPERATOR]
    channels = await open_channels(http, keys[PAYER], clients[PAYER], operator.address, 1, 3)
    receipts = [answer.receipt for answer in await pay_many(http, channels, [greedy(n) for n in range(3)])]
    epoch = receipts[0].epoch
    assert [(receipt.epoch, receipt.seq) for receipt in receipts] == [(epoch, 0), (epoch, 1), (epoch, 2)]
    # The agent commits its epoch with the first two receipts only (no fees, no rewards).
    kept, omitted = receipts[:2], receipts[2]
    tree = MerkleTree([receipt.receipt.leaf(operator.receipt_domain()) for receipt in kept])
    await operator.commit_epoch(epoch, tree.root, len(kept), 0, b"\x00" * 32, 0)

    status, body = await report(intake, omitted)
    assert (status, body["status"]) == (202, "accepted")
    assert await daemon.follow_events() >= 1
    (followed,) = await daemon.check_reports()
    assert (followed.status, followed.outcome, followed.codes) == (
        ReportStatus.DONE,
        AuditOutcome.FAILED,
        ("not-included",),
    )
    (challenge,) = await daemon.state.challenges()
    assert (challenge.kind, challenge.agent, challenge.epoch, challenge.seq) == (
        DisputeKind.WITHHOLDING, operator.address, epoch, 2,
    )  # fmt: skip
    dispute = await operator.dispute(challenge.dispute_id)
    assert (dispute.kind, dispute.state, dispute.challenger) == (
        DisputeKind.WITHHOLDING,
        DisputeState.OPEN,
        daemon.address,
    )

    # The agent cannot prove it; after the response window the validator resolves and the agent is slashed.
    slashable = (await operator.stake_info(operator.address, Role.AGENT)).slashable
    parameters = operator.deployment.parameters.disputes
    assert await daemon.follow_events() >= 1
    assert await daemon.resolve() == ()  # not before the deadline
    await advance_time(w3, parameters.response_window + 1)
    (resolution,) = await daemon.resolve()
    slashed = slashable * parameters.withholding_slash_bps // 10_000
    assert (resolution.dispute_id, resolution.state, resolution.slashed) == (
        challenge.dispute_id, DisputeState.UPHELD, slashed,
    )  # fmt: skip
    assert (await operator.stake_info(operator.address, Role.AGENT)).slashable == slashable - slashed
    assert (await operator.dispute(challenge.dispute_id)).state is DisputeState.UPHELD


async def test_two_receipts_signed_for_one_request_are_proven_as_equivocation_at_once(
    daemon: ValidatorDaemon,
    intake: aiohttp.ClientSession,
    agent_service: AgentService,  # noqa: F811
    http: aiohttp.ClientSession,
    clients: list[StakingClient],  # noqa: F811
    keys: list[LocalAccount],
    signer: LocalAccount,  # noqa: F811
) -> None:
    operator = clients[OPERATOR]
    # Back above the minimum after the withholding slash; the agent gives up the epoch committed by hand.
    stake = await operator.stake_info(operator.address, Role.AGENT)
    await operator.stake(Role.AGENT, to_wei_open(1_000) - stake.active)
    assert await agent_service.jobs.commit_epochs(force=True) == ()
    channels = await open_channels(http, keys[PAYER], clients[PAYER], operator.address, 1, 1)
    (answer,) = await pay_many(http, channels, [greedy(100)])
    honest = answer.receipt
    # The agent's signer also signed another answer to the same request.
    other = dataclasses.replace(honest.receipt, output_hash=keccak(b"another answer"))
    forged = SignedReceiptDocument.of(other, sign(signer, operator.receipt_domain(), other))
    slashable = (await operator.stake_info(operator.address, Role.AGENT)).slashable

    assert (await report(intake, honest))[0] == 202
    assert not [c for c in await daemon.state.challenges() if c.kind is DisputeKind.EQUIVOCATION]
    assert (await report(intake, forged))[0] == 202  # proven while the payer waits
    (proof,) = [c for c in await daemon.state.challenges() if c.kind is DisputeKind.EQUIVOCATION]
    assert proof.subject.hex() == honest.request_id[2:]
    dispute = await operator.dispute(proof.dispute_id)
    assert (dispute.kind, dispute.state, dispute.challenger) == (
        DisputeKind.EQUIVOCATION, DisputeState.UPHELD, daemon.address,
    )  # fmt: skip
    slashed = slashable * operator.deployment.parameters.disputes.equivocation_slash_bps // 10_000
    assert (await operator.stake_info(operator.address, Role.AGENT)).slashable == slashable - slashed

    # Following the reports up: the agent serves the honest one, which is not the forged one.
    finished = await daemon.check_reports()
    assert [(r.receipt.output_hash, r.outcome) for r in finished] == [
        (forged.output_hash, "equivocation: the agent serves another receipt")
    ]
    assert await daemon.follow_events() >= 1
    resolution = next(r for r in await daemon.state.resolutions() if r.dispute_id == proof.dispute_id)
    assert (resolution.state, resolution.slashed) == (DisputeState.UPHELD, slashed)


async def test_the_intake_refuses_what_the_agent_did_not_sign_and_serves_evidence_and_metrics(
    daemon: ValidatorDaemon,
    intake: aiohttp.ClientSession,
    clients: list[StakingClient],  # noqa: F811
) -> None:
    async with intake.post("/v1/receipts", data=b"not json", headers={"Content-Type": "application/json"}) as r:
        assert (r.status, (await r.json())["error"]["code"]) == (400, "invalid_receipt")
    (held,) = (await daemon.state.reports())[:1]
    stranger = Account.create()
    receipt = held.receipt.receipt
    status, body = await report(
        intake, SignedReceiptDocument.of(receipt, sign(stranger, clients[OPERATOR].receipt_domain(), receipt))
    )
    assert (status, body["error"]["code"]) == (422, "not_the_agents_receipt")  # type: ignore[index]
    status, body = await report(intake, held.receipt)
    assert (status, body["status"]) == (200, "known")

    document = json.dumps({"why": "the output was edited"}).encode()
    await daemon.state.put_evidence(keccak(document), "output", document)
    async with intake.get("/v1/evidence/0x" + keccak(document).hex()) as r:
        assert (r.status, await r.read()) == (200, document)
    async with intake.get("/v1/evidence/0x" + "00" * 32) as r:
        assert r.status == 404
    async with intake.get("/v1/evidence/nothing") as r:
        assert r.status == 400
    async with intake.get("/metrics") as r:
        metrics = await r.text()
    assert 'staked_validator_challenges_total{kind="withholding"} 1.0' in metrics
    assert 'staked_validator_challenges_total{kind="equivocation"} 1.0' in metrics
    assert 'staked_validator_receipts_received_total{result="rejected"} 1.0' in metrics
    async with intake.get("/healthz") as r:
        assert (r.status, (await r.json())["validator"]) == (200, daemon.address)


async def test_start_refuses_a_validator_under_the_minimum_stake_and_an_index_not_registered(
    daemon: ValidatorDaemon,
    chain_settings: ChainSettings,  # noqa: F811
    keys: list[LocalAccount],
    tmp_path: Path,
    model_id: bytes,  # noqa: F811
    tiny_model_dir: Path,
    docs_index: Path,  # noqa: F811
    index: AttributionIndex,
    vllm_server: VLLMServer,
) -> None:
    unstaked = settings_for(tmp_path / "a.sqlite", model_id, tiny_model_dir, docs_index, vllm_server, stake=None)
    with pytest.raises(ValidatorConfigError, match=r"has 0 OPEN staked, under the minimum of 1000 OPEN"):
        async with ValidatorDaemon.start(unstaked, chain_settings, account=keys[UNSTAKED], scheduled=False):
            pass
    # tests/validator/conftest.py's index is built from other data: not the one registered with the model.
    foreign = settings_for(tmp_path / "b.sqlite", model_id, tiny_model_dir, index.directory, vllm_server, stake=None)
    with pytest.raises(IndexRootMismatchError) as raised:
        async with ValidatorDaemon.start(foreign, chain_settings, account=keys[VALIDATOR], scheduled=False):
            pass
    assert raised.value.registered == "0x" + AttributionIndex.open(docs_index, tiny_model_dir).root.hex()


async def test_staked_validator_run_once_runs_every_job_and_refuses_an_unstaked_key(
    daemon: ValidatorDaemon,
    chain_settings: ChainSettings,  # noqa: F811
    keys: list[LocalAccount],
    tmp_path: Path,
    model_id: bytes,  # noqa: F811
    tiny_model_dir: Path,
    docs_index: Path,  # noqa: F811
    vllm_server: VLLMServer,
) -> None:
    config = tmp_path / "validator.toml"
    config.write_text(
        f'[chain]\nrpc_url = "{chain_settings.rpc_url}"\ndeployment_file = "{chain_settings.deployment_file}"\n'
        f'private_key_env = "{KEY_VARIABLE}"\npoll_interval = 0.02\n\n'
        f'[validator]\nvllm_url = "{vllm_server.url}"\nstate = "{tmp_path / "state.sqlite"}"\nport = 0\n'
        f"sample_rate = 0.0\n\n"
        f'[validator.models."0x{model_id.hex()}"]\nname = "tiny-docs"\ntokenizer = "{tiny_model_dir}"\n'
        f'index = "{docs_index}"\n\n[validator.agents]\nsummarizer = "{EXAMPLE_AGENT}"\n'
    )
    arguments = ["run", "--config", str(config), "--once", "--log-level", "warning"]
    runner = CliRunner()
    # The command runs its own event loop: in a thread, while this test's loop serves the agent.
    done = await asyncio.to_thread(runner.invoke, validator, arguments, env={KEY_VARIABLE: keys[VALIDATOR].key.hex()})
    assert done.exit_code == 0, done.output
    assert "<ValidatorDaemon" in done.output
    refused = await asyncio.to_thread(runner.invoke, validator, arguments, env={KEY_VARIABLE: keys[UNSTAKED].key.hex()})
    assert refused.exit_code == 1
    assert "under the minimum of 1000 OPEN" in refused.output


async def test_scheduled_jobs_run_on_their_intervals_without_failing(
    daemon: ValidatorDaemon,
    chain_settings: ChainSettings,  # noqa: F811
    keys: list[LocalAccount],
    tmp_path: Path,
    model_id: bytes,  # noqa: F811
    tiny_model_dir: Path,
    docs_index: Path,  # noqa: F811
    vllm_server: VLLMServer,
) -> None:
    intervals = {f"{job}_seconds": 0.1 for job in ("events", "audit", "vote", "resolve")}
    settings = settings_for(tmp_path / "state.sqlite", model_id, tiny_model_dir, docs_index, vllm_server, **intervals)
    async with ValidatorDaemon.start(settings, chain_settings, account=keys[VALIDATOR]) as running:

        async def every_job_ran_twice() -> None:
            while min(running.runs.values()) < 2:  # noqa: ASYNC110 - the daemon counts runs; nothing to wait on
                await asyncio.sleep(0.05)

        await asyncio.wait_for(every_job_ran_twice(), timeout=300)
    assert set(running.failures.values()) == {0}


async def test_a_sampled_record_the_agent_does_not_serve_is_challenged_with_the_receipt_a_payer_holds(
    daemon: ValidatorDaemon,
    agent_service: AgentService,  # noqa: F811
    chain_settings: ChainSettings,  # noqa: F811
    clients: list[StakingClient],  # noqa: F811
    keys: list[LocalAccount],
    signer: LocalAccount,  # noqa: F811
    tmp_path: Path,
    model_id: bytes,  # noqa: F811
    tiny_model_dir: Path,
    docs_index: Path,  # noqa: F811
    vllm_server: VLLMServer,
) -> None:
    operator = clients[OPERATOR]
    stake = await operator.stake_info(operator.address, Role.AGENT)
    await operator.stake(Role.AGENT, to_wei_open(1_000) - stake.active)
    # The honest receipt of the equivocation test is receipt 0 of the agent's current epoch; its signer also signed
    # receipt 1, which the agent never journaled and so never serves. The agent commits both.
    honest = next(r.receipt for r in await daemon.state.reports() if r.receipt.seq == 0 and r.receipt.epoch > 1)
    hidden_receipt = dataclasses.replace(honest.receipt, request_id=keccak(b"a hidden request"), seq=1)
    domain = operator.receipt_domain()
    hidden = SignedReceiptDocument.of(hidden_receipt, sign(signer, domain, hidden_receipt))
    tree = MerkleTree([honest.receipt.leaf(domain), hidden_receipt.leaf(domain)])
    await operator.commit_epoch(honest.epoch, tree.root, 2, 0, b"\x00" * 32, 0)

    # A validator auditing every receipt, which a payer told of the hidden receipt.
    settings = settings_for(
        tmp_path / "state.sqlite", model_id, tiny_model_dir, docs_index, vllm_server, sample_rate=1.0
    )
    async with ValidatorDaemon.start(settings, chain_settings, account=keys[UNSTAKED], scheduled=False) as auditor:
        async with aiohttp.ClientSession(auditor.url) as session:
            assert (await report(session, hidden))[0] == 202
        await auditor.follow_events()
        first = await auditor.audit()  # receipt 0 is served without a proof; receipt 1 is not served (attempt 1 of 2)
        assert [(a.seq, a.codes) for a in first] == [(0, ("not-included",))]
        (unserved,) = await auditor.audit()
        assert (unserved.seq, unserved.status.value) == (1, "unserved")
        assert unserved.last_error is not None
        assert "HTTP 404" in unserved.last_error
        challenged = {c.seq: c for c in await auditor.state.challenges()}
        assert sorted(challenged) == [0, 1]
        assert challenged[1].kind is DisputeKind.WITHHOLDING
        assert challenged[1].subject == struct_hash(domain, hidden_receipt)
        async with aiohttp.ClientSession(auditor.url) as session, session.get("/metrics") as response:
            assert 'staked_validator_unserved_total{challenged="true"} 1.0' in await response.text()
    dispute = await operator.dispute(challenged[1].dispute_id)
    assert (dispute.kind, dispute.state, dispute.seq) == (DisputeKind.WITHHOLDING, DisputeState.OPEN, 1)
