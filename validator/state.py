"""What a validator remembers across restarts, in one SQLite file (WAL, ``synchronous=FULL``).

The daemon's event cursor lives in the same file (tables of :class:`staking.events.SqliteEventCursor`); these
tables hold what the daemon learned and did:

==============  =====================================================================================================
``epoch``       committed epochs seen in ``EpochCommitted`` events, and whether their sample is planned yet
``audit``       one row per sampled position (agent, epoch, seq): planned, then done (with the outcome and the
                findings as JSON), not served, or expired; retries are scheduled in wall-clock time
``receipt``     every signed receipt the validator holds, from payers (``POST /v1/receipts``) and from agents; two of
                one request with different contents are an equivocation
``report``      the follow-up of each receipt a payer reported: compared with the agent's, audited once committed
``evidence``    the evidence documents of the validator's challenges, served at ``GET /v1/evidence/{hash}``
``challenge``   disputes this validator opened (or proved), one per (kind, subject): never opened twice
``dispute``     every dispute seen on chain, with its state and deadline (block time)
``vote``        this validator's decision on each voted dispute: a vote cast, or why none was (never twice)
``resolution``  how each dispute ended
==============  =====================================================================================================

Every write is idempotent (``INSERT OR IGNORE`` or an upsert keyed by what it records), so an event delivered
twice, or a job run again after a crash, changes nothing the first delivery did not. One thread owns the
connection: the event loop never waits on the disk.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from agents.record import SignedReceiptDocument
from staking.sqlite import Schema, SqliteFile
from staking.types import DisputeKind, DisputeState

from .errors import ValidatorError

__all__ = [
    "AuditOutcome",
    "AuditRecord",
    "AuditStatus",
    "ChallengeRecord",
    "DisputeRecord",
    "EpochRecord",
    "HeldReceipt",
    "ReportRecord",
    "ReportStatus",
    "ResolutionRecord",
    "StateError",
    "ValidatorState",
    "VoteDecision",
    "VoteRecord",
]

_T = TypeVar("_T")

#: ``PRAGMA user_version`` of the schema below.
_SCHEMA_VERSION = 1
_SCHEMA = (
    """CREATE TABLE epoch (
    agent TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    receipts_root TEXT NOT NULL,
    receipt_count INTEGER NOT NULL,
    commit_block INTEGER NOT NULL,
    challenge_deadline INTEGER NOT NULL,
    seen_at REAL NOT NULL,           -- wall clock when the commit was first seen
    seed_block INTEGER,              -- NULL until the sample is planned
    planned INTEGER,                 -- positions sampled; NULL until planned
    PRIMARY KEY (agent, epoch)
)""",
    """CREATE TABLE audit (
    agent TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL,
    last_error TEXT,
    request_id TEXT,
    outcome TEXT,
    findings TEXT,                   -- JSON list of findings
    finished_at REAL,
    PRIMARY KEY (agent, epoch, seq)
)""",
    """CREATE INDEX audit_due ON audit (status, next_attempt)""",
    """CREATE TABLE receipt (
    struct_hash TEXT PRIMARY KEY,
    agent TEXT NOT NULL,
    request_id TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    source TEXT NOT NULL,
    document TEXT NOT NULL,          -- SignedReceiptDocument JSON
    received_at REAL NOT NULL
)""",
    """CREATE INDEX receipt_request ON receipt (agent, request_id)""",
    """CREATE INDEX receipt_position ON receipt (agent, epoch, seq)""",
    """CREATE TABLE report (
    struct_hash TEXT PRIMARY KEY REFERENCES receipt (struct_hash),
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL,
    last_error TEXT,
    outcome TEXT,
    findings TEXT,
    updated_at REAL NOT NULL
)""",
    """CREATE TABLE evidence (
    hash TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    document BLOB NOT NULL,          -- the RFC 8785 bytes whose keccak256 is the hash
    created_at REAL NOT NULL
)""",
    """CREATE TABLE challenge (
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,           -- the receipt's struct hash; the request id for equivocation
    agent TEXT NOT NULL,
    dispute_id INTEGER NOT NULL,
    epoch INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    evidence_hash TEXT,
    reason TEXT NOT NULL,
    opened_at REAL NOT NULL,
    PRIMARY KEY (kind, subject)
)""",
    """CREATE TABLE dispute (
    dispute_id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    agent TEXT NOT NULL,
    challenger TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    receipt_hash TEXT NOT NULL,
    evidence_hash TEXT,
    deadline INTEGER NOT NULL,       -- block time; 0 for equivocation
    state TEXT NOT NULL,
    vote_attempts INTEGER NOT NULL DEFAULT 0,
    vote_next REAL NOT NULL DEFAULT 0
)""",
    """CREATE TABLE vote (
    dispute_id INTEGER PRIMARY KEY,
    decision TEXT NOT NULL,
    reason TEXT NOT NULL,
    tx_hash TEXT,
    decided_at REAL NOT NULL
)""",
    """CREATE TABLE resolution (
    dispute_id INTEGER PRIMARY KEY,
    state TEXT NOT NULL,
    slashed TEXT NOT NULL,           -- wei, as text: above SQLite's 64-bit integers
    resolved_by_us INTEGER NOT NULL,
    tx_hash TEXT,
    resolved_at REAL NOT NULL
)""",
)


class StateError(ValidatorError):
    """The validator's state database at ``path`` could not be read or written: ``reason`` is SQLite's message."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"validator state {path}: {reason}")
        self.path = path
        self.reason = reason


class AuditStatus(StrEnum):
    """Where a sampled position stands."""

    PLANNED = "planned"  # to be fetched and audited (again, after a failed read)
    DONE = "done"  # audited: see the outcome
    UNSERVED = "unserved"  # the agent did not serve it after every attempt
    EXPIRED = "expired"  # the epoch's challenge window closed first: nothing could be done about a fault


class AuditOutcome(StrEnum):
    """The verdict of an audit that ran."""

    PASSED = "passed"  # nothing found
    FAILED = "failed"  # findings that support a dispute
    INVALID = "invalid"  # the receipt binds no staked agent (not its signer, nothing at stake): nothing to dispute


class ReportStatus(StrEnum):
    """Where the follow-up of a payer's receipt stands."""

    PENDING = "pending"  # to compare with the agent's, and to audit once its epoch is committed
    DONE = "done"  # followed up: see the outcome
    EXPIRED = "expired"  # the epoch's challenge window closed first


class VoteDecision(StrEnum):
    """What the validator did about a voted dispute."""

    UPHOLD = "uphold"
    REJECT = "reject"
    ABSTAIN = "abstain"  # it could not check the fault (a check of that kind did not run)
    INELIGIBLE = "ineligible"  # no stake at the dispute's snapshot, or a party to it
    MISSED = "missed"  # the voting period ended first

    @property
    def voted(self) -> bool:
        return self in (VoteDecision.UPHOLD, VoteDecision.REJECT)


@dataclass(frozen=True, kw_only=True)
class EpochRecord:
    """A committed epoch (``EpochCommitted``), and its sample once planned."""

    agent: str
    epoch: int
    receipts_root: bytes
    receipt_count: int
    commit_block: int
    challenge_deadline: int
    seen_at: float
    seed_block: int | None = None
    planned: int | None = None


@dataclass(frozen=True, kw_only=True)
class AuditRecord:
    """One sampled position and what became of it (``findings`` is the JSON of the report's findings)."""

    agent: str
    epoch: int
    seq: int
    status: AuditStatus
    attempts: int
    next_attempt: float
    last_error: str | None
    request_id: str | None
    outcome: AuditOutcome | None
    findings: str | None
    finished_at: float | None

    @property
    def codes(self) -> tuple[str, ...]:
        """The findings' codes (``not-included``, ``token-violation``...)."""
        return _codes(self.findings)


@dataclass(frozen=True, kw_only=True)
class HeldReceipt:
    """A signed receipt the validator holds, where it came from (``payer`` or ``agent``) and when."""

    struct_hash: bytes
    source: str
    document: SignedReceiptDocument
    received_at: float


@dataclass(frozen=True, kw_only=True)
class ReportRecord:
    """The follow-up of a receipt a payer reported (``outcome`` says what came of it once done)."""

    struct_hash: bytes
    receipt: SignedReceiptDocument
    status: ReportStatus
    attempts: int
    next_attempt: float
    last_error: str | None
    outcome: str | None
    findings: str | None

    @property
    def codes(self) -> tuple[str, ...]:
        return _codes(self.findings)


@dataclass(frozen=True, kw_only=True)
class ChallengeRecord:
    """A dispute this validator opened: ``subject`` is the receipt's struct hash (the request id for equivocation)."""

    kind: DisputeKind
    subject: bytes
    agent: str
    dispute_id: int
    epoch: int
    seq: int
    evidence_hash: bytes | None
    reason: str
    opened_at: float


@dataclass(frozen=True, kw_only=True)
class DisputeRecord:
    """A dispute as the chain announced it (``deadline`` in block time, zero for equivocation)."""

    dispute_id: int
    kind: DisputeKind
    agent: str
    challenger: str
    epoch: int
    receipt_hash: bytes
    evidence_hash: bytes | None
    deadline: int
    state: DisputeState
    vote_attempts: int = 0
    vote_next: float = 0.0


@dataclass(frozen=True, kw_only=True)
class VoteRecord:
    """This validator's decision on a voted dispute: a vote (``tx_hash``) or why it cast none."""

    dispute_id: int
    decision: VoteDecision
    reason: str
    tx_hash: str | None
    decided_at: float


@dataclass(frozen=True, kw_only=True)
class ResolutionRecord:
    """How a dispute ended, and whether this validator's ``resolve`` ended it."""

    dispute_id: int
    state: DisputeState
    slashed: int
    resolved_by_us: bool
    tx_hash: str | None
    resolved_at: float


def _codes(findings: str | None) -> tuple[str, ...]:
    if not findings:
        return ()
    return tuple(str(finding["code"]) for finding in json.loads(findings))


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


def _unhex(value: str) -> bytes:
    return bytes.fromhex(value[2:])


class ValidatorState:
    """The validator's SQLite state (see the module docstring).

    Example:
        >>> async with ValidatorState(".staked/validator.sqlite") as state:         # doctest: +SKIP
        ...     await state.due_audits(time.time())

    Args:
        path: the SQLite file, created with its tables when missing.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._file = SqliteFile(path, Schema(_SCHEMA_VERSION, _SCHEMA), name="validator-state", error=StateError)

    def __repr__(self) -> str:
        return f"<ValidatorState {self.path}>"

    async def open(self) -> None:
        """Opens the database and creates its tables.

        Raises:
            StateError: SQLite failed.
        """
        await self._file.open()

    async def close(self) -> None:
        await self._file.close()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- epochs and audits -----------------------------------------------------------------------------------------

    async def add_epoch(self, epoch: EpochRecord) -> bool:
        """Records a committed epoch; returns whether it is new (a repeated event changes nothing)."""
        return await self._write(
            lambda db: (
                db.execute(
                    "INSERT OR IGNORE INTO epoch VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL)",
                    (
                        epoch.agent,
                        epoch.epoch,
                        _hex(epoch.receipts_root),
                        epoch.receipt_count,
                        epoch.commit_block,
                        epoch.challenge_deadline,
                        epoch.seen_at,
                    ),
                ).rowcount
                == 1
            )
        )

    async def remove_epoch(self, agent: str, epoch: int) -> None:
        """Forgets a commit a reorg removed, with the audits of it not done yet."""

        def remove(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM epoch WHERE agent = ? AND epoch = ?", (agent, epoch))
            db.execute(
                "DELETE FROM audit WHERE agent = ? AND epoch = ? AND status = ?", (agent, epoch, AuditStatus.PLANNED)
            )

        await self._write(remove)

    async def epoch(self, agent: str, epoch: int) -> EpochRecord | None:
        row = await self._run(
            lambda db: db.execute("SELECT * FROM epoch WHERE agent = ? AND epoch = ?", (agent, epoch)).fetchone()
        )
        return None if row is None else _epoch(row)

    async def unplanned_epochs(self) -> tuple[EpochRecord, ...]:
        rows = await self._run(
            lambda db: db.execute("SELECT * FROM epoch WHERE planned IS NULL ORDER BY commit_block").fetchall()
        )
        return tuple(_epoch(row) for row in rows)

    async def plan_epoch(
        self, agent: str, epoch: int, seed_block: int, positions: Sequence[int], not_before: float
    ) -> None:
        """Records an epoch's sample: one planned audit per position, due from ``not_before`` (wall clock)."""

        def plan(db: sqlite3.Connection) -> None:
            db.executemany(
                "INSERT OR IGNORE INTO audit (agent, epoch, seq, status, next_attempt) VALUES (?, ?, ?, ?, ?)",
                [(agent, epoch, seq, AuditStatus.PLANNED, not_before) for seq in positions],
            )
            db.execute(
                "UPDATE epoch SET seed_block = ?, planned = ? WHERE agent = ? AND epoch = ?",
                (seed_block, len(positions), agent, epoch),
            )

        await self._write(plan)

    async def due_audits(self, now: float) -> tuple[AuditRecord, ...]:
        """Planned audits whose next attempt is due at wall-clock time ``now``, oldest epoch first."""
        rows = await self._run(
            lambda db: db.execute(
                "SELECT * FROM audit WHERE status = ? AND next_attempt <= ? ORDER BY epoch, agent, seq",
                (AuditStatus.PLANNED, now),
            ).fetchall()
        )
        return tuple(_audit(row) for row in rows)

    async def retry_audit(self, agent: str, epoch: int, seq: int, error: str, next_attempt: float) -> int:
        """Counts a failed attempt and schedules the next; returns the attempts so far."""

        def retry(db: sqlite3.Connection) -> int:
            db.execute(
                "UPDATE audit SET attempts = attempts + 1, last_error = ?, next_attempt = ? "
                "WHERE agent = ? AND epoch = ? AND seq = ?",
                (error, next_attempt, agent, epoch, seq),
            )
            row = db.execute(
                "SELECT attempts FROM audit WHERE agent = ? AND epoch = ? AND seq = ?", (agent, epoch, seq)
            ).fetchone()
            return int(row[0]) if row else 0

        return await self._write(retry)

    async def finish_audit(
        self,
        agent: str,
        epoch: int,
        seq: int,
        status: AuditStatus,
        *,
        request_id: str | None = None,
        outcome: AuditOutcome | None = None,
        findings: str | None = None,
        error: str | None = None,
    ) -> AuditRecord:
        """Ends a planned audit; returns its record."""

        def finish(db: sqlite3.Connection) -> Any:
            db.execute(
                "UPDATE audit SET status = ?, request_id = ?, outcome = ?, findings = ?, "
                "last_error = COALESCE(?, last_error), finished_at = ? WHERE agent = ? AND epoch = ? AND seq = ?",
                (status, request_id, outcome, findings, error, time.time(), agent, epoch, seq),
            )
            return db.execute(
                "SELECT * FROM audit WHERE agent = ? AND epoch = ? AND seq = ?", (agent, epoch, seq)
            ).fetchone()

        return _audit(await self._write(finish))

    async def audits(self, agent: str | None = None, epoch: int | None = None) -> tuple[AuditRecord, ...]:
        """Every audit (of ``agent``, of its ``epoch``), in order."""
        query, args = "SELECT * FROM audit", list[object]()
        if agent is not None:
            query, args = query + " WHERE agent = ?", [agent]
            if epoch is not None:
                query, args = query + " AND epoch = ?", [*args, epoch]
        rows = await self._run(lambda db: db.execute(query + " ORDER BY agent, epoch, seq", args).fetchall())
        return tuple(_audit(row) for row in rows)

    # -- receipts and reports --------------------------------------------------------------------------------------

    async def hold_receipt(self, receipt: SignedReceiptDocument, struct_hash: bytes, source: str) -> bool:
        """Keeps a signed receipt; returns whether it is new."""
        return await self._write(
            lambda db: (
                db.execute(
                    "INSERT OR IGNORE INTO receipt VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        _hex(struct_hash),
                        receipt.agent,
                        receipt.request_id,
                        receipt.epoch,
                        receipt.seq,
                        source,
                        receipt.model_dump_json(by_alias=True),
                        time.time(),
                    ),
                ).rowcount
                == 1
            )
        )

    async def receipts_of_request(self, agent: str, request_id: str) -> tuple[HeldReceipt, ...]:
        """The receipts held for ``agent``'s request, first received first."""
        rows = await self._run(
            lambda db: db.execute(
                "SELECT struct_hash, source, document, received_at FROM receipt WHERE agent = ? AND request_id = ? "
                "ORDER BY received_at, struct_hash",
                (agent, request_id),
            ).fetchall()
        )
        return tuple(_held(row) for row in rows)

    async def receipts_at(self, agent: str, epoch: int, seq: int) -> tuple[HeldReceipt, ...]:
        """The receipts held for position ``seq`` of ``agent``'s ``epoch``, payers' first."""
        rows = await self._run(
            lambda db: db.execute(
                "SELECT struct_hash, source, document, received_at FROM receipt WHERE agent = ? AND epoch = ? "
                "AND seq = ? ORDER BY source = 'agent', received_at",
                (agent, epoch, seq),
            ).fetchall()
        )
        return tuple(_held(row) for row in rows)

    async def add_report(self, struct_hash: bytes) -> bool:
        """Schedules the follow-up of a held receipt a payer reported; returns whether it is new."""
        now = time.time()
        return await self._write(
            lambda db: (
                db.execute(
                    "INSERT OR IGNORE INTO report (struct_hash, status, next_attempt, updated_at) VALUES (?, ?, ?, ?)",
                    (_hex(struct_hash), ReportStatus.PENDING, now, now),
                ).rowcount
                == 1
            )
        )

    async def due_reports(self, now: float) -> tuple[ReportRecord, ...]:
        rows = await self._run(
            lambda db: db.execute(
                "SELECT r.*, c.document FROM report r JOIN receipt c USING (struct_hash) "
                "WHERE r.status = ? AND r.next_attempt <= ? ORDER BY r.updated_at",
                (ReportStatus.PENDING, now),
            ).fetchall()
        )
        return tuple(_report(row) for row in rows)

    async def retry_report(self, struct_hash: bytes, error: str, next_attempt: float, *, count: bool = True) -> int:
        """Schedules the next look at a report (``count``: as a failed attempt); returns the attempts so far."""

        def retry(db: sqlite3.Connection) -> int:
            db.execute(
                "UPDATE report SET attempts = attempts + ?, last_error = ?, next_attempt = ?, updated_at = ? "
                "WHERE struct_hash = ?",
                (int(count), error, next_attempt, time.time(), _hex(struct_hash)),
            )
            row = db.execute("SELECT attempts FROM report WHERE struct_hash = ?", (_hex(struct_hash),)).fetchone()
            return int(row[0]) if row else 0

        return await self._write(retry)

    async def finish_report(
        self, struct_hash: bytes, status: ReportStatus, outcome: str, findings: str | None = None
    ) -> None:
        await self._write(
            lambda db: db.execute(
                "UPDATE report SET status = ?, outcome = ?, findings = ?, updated_at = ? WHERE struct_hash = ?",
                (status, outcome, findings, time.time(), _hex(struct_hash)),
            )
        )

    async def reports(self) -> tuple[ReportRecord, ...]:
        rows = await self._run(
            lambda db: db.execute(
                "SELECT r.*, c.document FROM report r JOIN receipt c USING (struct_hash) ORDER BY r.updated_at"
            ).fetchall()
        )
        return tuple(_report(row) for row in rows)

    # -- evidence --------------------------------------------------------------------------------------------------

    async def put_evidence(self, evidence_hash: bytes, kind: str, document: bytes) -> None:
        await self._write(
            lambda db: db.execute(
                "INSERT OR IGNORE INTO evidence VALUES (?, ?, ?, ?)", (_hex(evidence_hash), kind, document, time.time())
            )
        )

    async def evidence(self, evidence_hash: bytes) -> bytes | None:
        row = await self._run(
            lambda db: db.execute("SELECT document FROM evidence WHERE hash = ?", (_hex(evidence_hash),)).fetchone()
        )
        return None if row is None else bytes(row[0])

    # -- challenges, disputes, votes, resolutions ------------------------------------------------------------------

    async def record_challenge(self, challenge: ChallengeRecord) -> None:
        await self._write(
            lambda db: db.execute(
                "INSERT OR IGNORE INTO challenge VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    challenge.kind.name.lower(),
                    _hex(challenge.subject),
                    challenge.agent,
                    challenge.dispute_id,
                    challenge.epoch,
                    challenge.seq,
                    None if challenge.evidence_hash is None else _hex(challenge.evidence_hash),
                    challenge.reason,
                    challenge.opened_at,
                ),
            )
        )

    async def challenge(self, kind: DisputeKind, subject: bytes) -> ChallengeRecord | None:
        row = await self._run(
            lambda db: db.execute(
                "SELECT * FROM challenge WHERE kind = ? AND subject = ?", (kind.name.lower(), _hex(subject))
            ).fetchone()
        )
        return None if row is None else _challenge(row)

    async def challenges(self) -> tuple[ChallengeRecord, ...]:
        rows = await self._run(lambda db: db.execute("SELECT * FROM challenge ORDER BY dispute_id").fetchall())
        return tuple(_challenge(row) for row in rows)

    async def upsert_dispute(self, dispute: DisputeRecord) -> None:
        """Records a dispute announced on chain, or its new state (its vote follow-up is kept)."""
        await self._write(
            lambda db: db.execute(
                "INSERT INTO dispute (dispute_id, kind, agent, challenger, epoch, receipt_hash, evidence_hash, "
                "deadline, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (dispute_id) DO UPDATE SET "
                "state = excluded.state, deadline = excluded.deadline",
                (
                    dispute.dispute_id,
                    dispute.kind.name.lower(),
                    dispute.agent,
                    dispute.challenger,
                    dispute.epoch,
                    _hex(dispute.receipt_hash),
                    None if dispute.evidence_hash is None else _hex(dispute.evidence_hash),
                    dispute.deadline,
                    dispute.state.name.lower(),
                ),
            )
        )

    async def remove_dispute(self, dispute_id: int) -> None:
        """Forgets a dispute a reorg removed, unless this validator already acted on it."""

        def remove(db: sqlite3.Connection) -> None:
            if db.execute("SELECT 1 FROM vote WHERE dispute_id = ?", (dispute_id,)).fetchone() is None:
                db.execute("DELETE FROM dispute WHERE dispute_id = ?", (dispute_id,))

        await self._write(remove)

    async def set_dispute_state(self, dispute_id: int, state: DisputeState) -> None:
        await self._write(
            lambda db: db.execute("UPDATE dispute SET state = ? WHERE dispute_id = ?", (state.name.lower(), dispute_id))
        )

    async def retry_vote(self, dispute_id: int, next_attempt: float) -> int:
        """Counts a failed look at a dispute (its record not served); returns the attempts so far."""

        def retry(db: sqlite3.Connection) -> int:
            db.execute(
                "UPDATE dispute SET vote_attempts = vote_attempts + 1, vote_next = ? WHERE dispute_id = ?",
                (next_attempt, dispute_id),
            )
            row = db.execute("SELECT vote_attempts FROM dispute WHERE dispute_id = ?", (dispute_id,)).fetchone()
            return int(row[0]) if row else 0

        return await self._write(retry)

    async def disputes(self, state: DisputeState | None = None) -> tuple[DisputeRecord, ...]:
        query, args = "SELECT * FROM dispute", list[object]()
        if state is not None:
            query, args = query + " WHERE state = ?", [state.name.lower()]
        rows = await self._run(lambda db: db.execute(query + " ORDER BY dispute_id", args).fetchall())
        return tuple(_dispute(row) for row in rows)

    async def dispute(self, dispute_id: int) -> DisputeRecord | None:
        row = await self._run(
            lambda db: db.execute("SELECT * FROM dispute WHERE dispute_id = ?", (dispute_id,)).fetchone()
        )
        return None if row is None else _dispute(row)

    async def record_vote(self, vote: VoteRecord) -> bool:
        """Records the decision on a dispute; returns whether it is new (one decision per dispute, ever)."""
        return await self._write(
            lambda db: (
                db.execute(
                    "INSERT OR IGNORE INTO vote VALUES (?, ?, ?, ?, ?)",
                    (vote.dispute_id, vote.decision, vote.reason, vote.tx_hash, vote.decided_at),
                ).rowcount
                == 1
            )
        )

    async def forget_vote(self, dispute_id: int) -> None:
        """Forgets a vote a reorg removed from the chain, so that it is cast again."""
        await self._write(lambda db: db.execute("DELETE FROM vote WHERE dispute_id = ?", (dispute_id,)))

    async def vote(self, dispute_id: int) -> VoteRecord | None:
        row = await self._run(
            lambda db: db.execute("SELECT * FROM vote WHERE dispute_id = ?", (dispute_id,)).fetchone()
        )
        return None if row is None else _vote(row)

    async def votes(self) -> tuple[VoteRecord, ...]:
        rows = await self._run(lambda db: db.execute("SELECT * FROM vote ORDER BY dispute_id").fetchall())
        return tuple(_vote(row) for row in rows)

    async def record_resolution(self, resolution: ResolutionRecord) -> bool:
        """Records how a dispute ended (and its state); returns whether it is new."""

        def record(db: sqlite3.Connection) -> bool:
            db.execute(
                "UPDATE dispute SET state = ? WHERE dispute_id = ?",
                (resolution.state.name.lower(), resolution.dispute_id),
            )
            return bool(
                db.execute(
                    "INSERT OR IGNORE INTO resolution VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        resolution.dispute_id,
                        resolution.state.name.lower(),
                        str(resolution.slashed),
                        int(resolution.resolved_by_us),
                        resolution.tx_hash,
                        resolution.resolved_at,
                    ),
                ).rowcount
                == 1
            )

        return await self._write(record)

    async def forget_resolution(self, dispute_id: int) -> None:
        """Reopens a dispute whose resolution a reorg removed."""

        def forget(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM resolution WHERE dispute_id = ?", (dispute_id,))
            db.execute(
                "UPDATE dispute SET state = ? WHERE dispute_id = ?", (DisputeState.OPEN.name.lower(), dispute_id)
            )

        await self._write(forget)

    async def resolutions(self) -> tuple[ResolutionRecord, ...]:
        rows = await self._run(lambda db: db.execute("SELECT * FROM resolution ORDER BY dispute_id").fetchall())
        return tuple(_resolution(row) for row in rows)

    async def pending_audits(self) -> int:
        """How many sampled positions are still to audit."""
        row = await self._run(
            lambda db: db.execute("SELECT COUNT(*) FROM audit WHERE status = ?", (AuditStatus.PLANNED,)).fetchone()
        )
        return int(row[0])

    # -- plumbing --------------------------------------------------------------------------------------------------

    async def _write(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        return await self._file.write(work)

    async def _run(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        return await self._file.run(work)


def _epoch(row: Any) -> EpochRecord:
    agent, epoch, root, count, block, deadline, seen_at, seed_block, planned = row
    return EpochRecord(
        agent=agent,
        epoch=epoch,
        receipts_root=_unhex(root),
        receipt_count=count,
        commit_block=block,
        challenge_deadline=deadline,
        seen_at=seen_at,
        seed_block=seed_block,
        planned=planned,
    )


def _audit(row: Any) -> AuditRecord:
    agent, epoch, seq, status, attempts, next_attempt, last_error, request_id, outcome, findings, finished_at = row
    return AuditRecord(
        agent=agent,
        epoch=epoch,
        seq=seq,
        status=AuditStatus(status),
        attempts=attempts,
        next_attempt=next_attempt,
        last_error=last_error,
        request_id=request_id,
        outcome=None if outcome is None else AuditOutcome(outcome),
        findings=findings,
        finished_at=finished_at,
    )


def _held(row: Any) -> HeldReceipt:
    struct_hash, source, document, received_at = row
    return HeldReceipt(
        struct_hash=_unhex(struct_hash),
        source=source,
        document=SignedReceiptDocument.model_validate_json(document),
        received_at=received_at,
    )


def _report(row: Any) -> ReportRecord:
    struct_hash, status, attempts, next_attempt, last_error, outcome, findings, _updated_at, document = row
    return ReportRecord(
        struct_hash=_unhex(struct_hash),
        receipt=SignedReceiptDocument.model_validate_json(document),
        status=ReportStatus(status),
        attempts=attempts,
        next_attempt=next_attempt,
        last_error=last_error,
        outcome=outcome,
        findings=findings,
    )


def _challenge(row: Any) -> ChallengeRecord:
    kind, subject, agent, dispute_id, epoch, seq, evidence_hash, reason, opened_at = row
    return ChallengeRecord(
        kind=DisputeKind[kind.upper()],
        subject=_unhex(subject),
        agent=agent,
        dispute_id=dispute_id,
        epoch=epoch,
        seq=seq,
        evidence_hash=None if evidence_hash is None else _unhex(evidence_hash),
        reason=reason,
        opened_at=opened_at,
    )


def _dispute(row: Any) -> DisputeRecord:
    dispute_id, kind, agent, challenger, epoch, receipt_hash, evidence_hash, deadline, state, attempts, nxt = row
    return DisputeRecord(
        dispute_id=dispute_id,
        kind=DisputeKind[kind.upper()],
        agent=agent,
        challenger=challenger,
        epoch=epoch,
        receipt_hash=_unhex(receipt_hash),
        evidence_hash=None if evidence_hash is None else _unhex(evidence_hash),
        deadline=deadline,
        state=DisputeState[state.upper()],
        vote_attempts=attempts,
        vote_next=nxt,
    )


def _vote(row: Any) -> VoteRecord:
    dispute_id, decision, reason, tx_hash, decided_at = row
    return VoteRecord(
        dispute_id=dispute_id, decision=VoteDecision(decision), reason=reason, tx_hash=tx_hash, decided_at=decided_at
    )


def _resolution(row: Any) -> ResolutionRecord:
    dispute_id, state, slashed, by_us, tx_hash, resolved_at = row
    return ResolutionRecord(
        dispute_id=dispute_id,
        state=DisputeState[state.upper()],
        slashed=int(slashed),
        resolved_by_us=bool(by_us),
        tx_hash=tx_hash,
        resolved_at=resolved_at,
    )
