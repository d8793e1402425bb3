"""The validator's settings (a ``[validator]`` TOML table) and its SQLite state: every write idempotent, everything
kept across a reopen, one decision per dispute ever."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from eth_account import Account
from eth_utils.crypto import keccak

from agents.record import SignedReceiptDocument
from staking import ConfigError, Receipt, sign
from staking.eip712 import Domain
from staking.types import DisputeKind, DisputeState
from validator import (
    AuditOutcome,
    AuditStatus,
    ChallengeRecord,
    DisputeRecord,
    EpochRecord,
    ReportStatus,
    ResolutionRecord,
    Tolerances,
    ValidatorSettings,
    ValidatorState,
    VoteDecision,
    VoteRecord,
)

MODEL_ID = "0x" + "ab" * 32
AGENT = Account.from_key(keccak(b"agent")).address
DOMAIN = Domain("ReceiptRegistry", "1", 31337, "0x" + "52" * 20)


def config(tmp_path: Path, validator: str) -> Path:
    path = tmp_path / "validator.toml"
    path.write_text('[chain]\nrpc_url = "http://127.0.0.1:8545"\n\n' + validator)
    return path


def test_settings_read_the_validator_table_with_models_agents_and_tolerances(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = config(
        tmp_path,
        '[validator]\nstake = "1500"\nsample_rate = 0.5\n\n'
        f'[validator.models."0x{MODEL_ID[2:].upper()}"]\n'
        'name = "tiny-docs"\ntokenizer = "build/model"\nindex = "build/index"\n\n'
        '[validator.agents]\nsummarizer = "examples/summarizer.py:Summarizer"\n\n'
        "[validator.tolerances]\ngreedy = 0.05\n",
    )
    monkeypatch.setenv("STAKED_VALIDATOR_SAMPLE_RATE", "1.0")
    settings = ValidatorSettings.load(path)
    assert settings.sample_rate == 1.0  # the environment wins over the file
    assert settings.stake_wei == 1500 * 10**18
    assert settings.tolerances == Tolerances(greedy=0.05)
    assert settings.agents == {"summarizer": "examples/summarizer.py:Summarizer"}
    (served,) = settings.served_models()
    assert (served.model_id, served.name, served.index) == (bytes.fromhex("ab" * 32), "tiny-docs", Path("build/index"))


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ('[validator.models."0x12"]\nname = "m"\ntokenizer = "t"\n', "a modelId is 0x and 64 hex digits"),
        (f'sample_rate = 2\n[validator.models."{MODEL_ID}"]\nname = "m"\ntokenizer = "t"\n', "sample_rate"),
        (f'[validator.models."{MODEL_ID}"]\nname = "m"\ntokenizer = "t"\n[validator.tolerances]\nfuzz = 1\n', "fuzz"),
        (f'stake = "lots"\n[validator.models."{MODEL_ID}"]\nname = "m"\ntokenizer = "t"\n', "stake"),
        ("port = 1\n", "models"),
    ],
)
def test_settings_name_what_is_wrong(tmp_path: Path, table: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        ValidatorSettings.load(config(tmp_path, "[validator]\n" + table))


def signed_receipt(output: bytes, *, request: bytes = b"request") -> tuple[SignedReceiptDocument, bytes]:
    signer = Account.from_key(keccak(b"signer"))
    receipt = Receipt(
        AGENT, keccak(request), keccak(b"q"), keccak(output), keccak(b"m"), keccak(b"e"), keccak(b"a"), AGENT, 1, 3, 7
    )
    return SignedReceiptDocument.of(receipt, sign(signer, DOMAIN, receipt)), keccak(output + request)


async def test_the_state_keeps_audits_receipts_and_decisions_across_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    epoch = EpochRecord(
        agent=AGENT,
        epoch=3,
        receipts_root=keccak(b"root"),
        receipt_count=10,
        commit_block=40,
        challenge_deadline=10_000,
        seen_at=time.time(),
    )
    dispute = DisputeRecord(
        dispute_id=1,
        kind=DisputeKind.OUTPUT,
        agent=AGENT,
        challenger=AGENT,
        epoch=3,
        receipt_hash=keccak(b"r"),
        evidence_hash=None,
        deadline=5,
        state=DisputeState.OPEN,
    )
    first, first_hash = signed_receipt(b"one answer")
    second, second_hash = signed_receipt(b"another answer")
    async with ValidatorState(path) as state:
        assert await state.add_epoch(epoch)
        assert not await state.add_epoch(epoch)  # an event delivered twice changes nothing
        (unplanned,) = await state.unplanned_epochs()
        assert unplanned == epoch
        await state.plan_epoch(AGENT, 3, 41, (2, 5), not_before=0.0)
        assert await state.unplanned_epochs() == ()
        assert [audit.seq for audit in await state.due_audits(time.time())] == [2, 5]
        assert await state.retry_audit(AGENT, 3, 2, "HTTP 503", next_attempt=time.time() + 3600) == 1
        assert [audit.seq for audit in await state.due_audits(time.time())] == [5]
        done = await state.finish_audit(
            AGENT, 3, 5, AuditStatus.DONE, request_id="0x01", outcome=AuditOutcome.FAILED,
            findings='[{"code": "not-included"}]',
        )  # fmt: skip
        assert (done.status, done.outcome, done.codes) == (AuditStatus.DONE, AuditOutcome.FAILED, ("not-included",))

        assert await state.hold_receipt(first, first_hash, "payer")
        assert not await state.hold_receipt(first, first_hash, "agent")
        assert await state.hold_receipt(second, second_hash, "agent")
        assert [held.source for held in await state.receipts_of_request(AGENT, first.request_id)] == ["payer", "agent"]
        assert [held.document for held in await state.receipts_at(AGENT, 3, 7)] == [first, second]
        assert await state.add_report(first_hash)
        assert not await state.add_report(first_hash)

        await state.upsert_dispute(dispute)
        vote = VoteRecord(dispute_id=1, decision=VoteDecision.REJECT, reason="no fault", tx_hash="0x", decided_at=0.0)
        assert await state.record_vote(vote)
        again = VoteRecord(dispute_id=1, decision=VoteDecision.UPHOLD, reason="changed", tx_hash=None, decided_at=1.0)
        assert not await state.record_vote(again)  # one decision per dispute, ever
        await state.record_challenge(
            ChallengeRecord(
                kind=DisputeKind.EQUIVOCATION,
                subject=keccak(b"request"),
                agent=AGENT,
                dispute_id=2,
                epoch=3,
                seq=7,
                evidence_hash=None,
                reason="two receipts",
                opened_at=0.0,
            )
        )

    async with ValidatorState(path) as state:
        assert [(a.seq, a.status, a.attempts) for a in await state.audits(AGENT, 3)] == [
            (2, AuditStatus.PLANNED, 1),
            (5, AuditStatus.DONE, 0),
        ]
        assert await state.vote(1) == vote
        assert await state.challenge(DisputeKind.EQUIVOCATION, keccak(b"request")) is not None
        (report,) = await state.due_reports(time.time())
        assert (report.receipt, report.status) == (first, ReportStatus.PENDING)
        resolution = ResolutionRecord(
            dispute_id=1, state=DisputeState.REJECTED, slashed=0, resolved_by_us=True, tx_hash=None, resolved_at=0.0
        )
        assert await state.record_resolution(resolution)
        assert not await state.record_resolution(resolution)
        assert await state.disputes(DisputeState.OPEN) == ()
        assert (await state.dispute(1)) == DisputeRecord(**{**dispute.__dict__, "state": DisputeState.REJECTED})
