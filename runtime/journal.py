"""The receipts journal of an agent host: every accepted payment and every signed answer, in one SQLite file.

What the journal guarantees, and how:

* **Nothing accepted is lost.** A payment is written, in its own transaction, when it is accepted and before any
  work for it starts; the database runs in WAL mode with ``synchronous=FULL``, so a committed payment survives a
  crash or a power cut. Pending EIP-3009 authorizations stay listed until settled on chain, and every channel's
  newest voucher stays claimable until claimed.
* **Never charged twice.** A request id is bound to one payment. A request id seen before gets its stored payment
  back (and, once answered, its stored answer and receipt), whatever payment it carries this time; an
  authorization nonce or a channel voucher is accepted for one request only.
* **Checks and writes are one step.** Whatever depends on what was accepted before (the voucher's cumulative
  amount, the nonce's first use, the payer's balance net of its unsettled authorizations) is checked inside the
  transaction that records the payment, so concurrent requests cannot both spend the same money.
* **Receipts are gapless and unique.** A receipt is given the next ``seq`` of the current epoch and signed inside
  the transaction that stores it: a crash before the commit leaves neither a gap in the epoch (whose Merkle tree
  runs over ``seq`` 0 to ``count - 1``) nor a signed receipt outside the journal, and a request answered twice
  concurrently gets one receipt (two would be equivocation, which is slashed).
* **Commitments are remembered.** Once an epoch is committed on chain, its commitment and the leaves of its receipts
  and rewards trees are journaled in one transaction, so inclusion proofs (for payers, and for withholding
  challenges) and contributors' reward claims are served after any restart without rebuilding from records.

One journal belongs to one agent; opening it for another is refused. Every call runs on one dedicated thread that
owns the connection, so the event loop never waits on SQLite or on a disk sync. A call whose caller is cancelled
still completes, which is what a client retrying with the same request id relies on.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Final, TypeVar

from eth_utils.address import to_checksum_address

from agents.record import InclusionProof
from staking.eip712 import Receipt, TransferWithAuthorization, Voucher
from staking.merkle import MerkleTree, reward_leaf
from staking.sqlite import Schema, SqliteFile

from .errors import (
    InsufficientFundsError,
    JournalError,
    PaymentAmountError,
    ReplayedPaymentError,
    RequestConflictError,
    StaleVoucherError,
    UnknownRequestError,
)
from .protocol import FailureReason, Scheme

__all__ = [
    "AcceptedAuthorization",
    "AcceptedPayment",
    "AcceptedVoucher",
    "Answer",
    "EpochCommit",
    "Journal",
    "JournalEntry",
    "ReceiptInclusion",
    "SignedAnswer",
    "SignedReceipt",
]

_log = logging.getLogger(__name__)
_T = TypeVar("_T")

#: ``PRAGMA user_version`` of the schema below; a journal written by a newer runtime is refused, not guessed at.
_SCHEMA_VERSION: Final = 1
#: Epochs count from 1: ReceiptRegistry refuses epoch 0.
_FIRST_EPOCH: Final = 1
#: Receipts trees of committed epochs kept in memory for inclusion proofs: a receipt read or a challenge is nearly
#: always about one of the last few epochs, and rebuilding a tree costs a hash per receipt.
_CACHED_TREES: Final = 4

# Amounts are uint256 and overflow SQLite's 64-bit INTEGER: they are stored as decimal TEXT and compared in Python.
_SCHEMA: Final = (
    """CREATE TABLE journal_meta (
        key TEXT PRIMARY KEY,  -- 'agent': the agent this journal belongs to; 'epoch': the current epoch
        value TEXT NOT NULL
    )""",
    """CREATE TABLE payment (
        request_id BLOB PRIMARY KEY,
        request_hash BLOB NOT NULL,
        scheme TEXT NOT NULL CHECK (scheme IN ('exact', 'channel')),
        payer TEXT NOT NULL,
        amount TEXT NOT NULL,
        accepted_at REAL NOT NULL
    )""",
    """CREATE TABLE exact_authorization (
        request_id BLOB PRIMARY KEY REFERENCES payment (request_id) ON DELETE CASCADE,
        payer TEXT NOT NULL,
        payee TEXT NOT NULL,
        value TEXT NOT NULL,
        valid_after TEXT NOT NULL,
        valid_before TEXT NOT NULL,
        nonce BLOB NOT NULL,
        signature BLOB NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'settled', 'failed')),
        tx_hash TEXT,
        failure TEXT,
        UNIQUE (payer, nonce)
    )""",
    "CREATE INDEX exact_authorization_status ON exact_authorization (status, payer)",
    """CREATE TABLE channel_voucher (
        id INTEGER PRIMARY KEY AUTOINCREMENT,  -- acceptance order
        request_id BLOB NOT NULL UNIQUE REFERENCES payment (request_id) ON DELETE CASCADE,
        channel_id BLOB NOT NULL,
        cumulative_amount TEXT NOT NULL,
        signature BLOB NOT NULL,
        UNIQUE (channel_id, cumulative_amount)
    )""",
    """CREATE TABLE channel (
        channel_id BLOB PRIMARY KEY,
        latest INTEGER REFERENCES channel_voucher (id),  -- the newest accepted voucher; NULL when all released
        claimed TEXT NOT NULL  -- cumulative amount claimed on chain
    )""",
    """CREATE TABLE receipt (
        request_id BLOB PRIMARY KEY REFERENCES payment (request_id),
        epoch INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        agent TEXT NOT NULL,
        request_hash BLOB NOT NULL,
        output_hash BLOB NOT NULL,
        model_id BLOB NOT NULL,
        engine_hash BLOB NOT NULL,
        attribution_hash BLOB NOT NULL,
        payer TEXT NOT NULL,
        price TEXT NOT NULL,
        signature BLOB NOT NULL,
        body BLOB NOT NULL,
        record BLOB NOT NULL,
        signed_at REAL NOT NULL,
        UNIQUE (epoch, seq)
    )""",
    """CREATE TABLE voucher_failure (
        channel_id BLOB PRIMARY KEY REFERENCES channel (channel_id),  -- no voucher of it is claimed any more
        cumulative_amount TEXT NOT NULL,  -- the newest voucher, which can no longer be claimed
        failure TEXT NOT NULL,
        failed_at REAL NOT NULL
    )""",
    """CREATE TABLE epoch_commitment (
        epoch INTEGER PRIMARY KEY,
        status TEXT NOT NULL CHECK (status IN ('committed', 'skipped')),
        receipts_root BLOB,  -- the rest NULL when skipped
        receipt_count INTEGER,
        fee_total TEXT,
        rewards_root BLOB,
        rewards_total TEXT,
        tx_hash TEXT,  -- NULL when the commitment was found on chain, sent by a run that did not journal it
        recorded_at REAL NOT NULL
    )""",
    """CREATE TABLE receipt_leaf (  -- the receipts tree of a committed epoch, as its leaves in seq order
        epoch INTEGER NOT NULL REFERENCES epoch_commitment (epoch),
        seq INTEGER NOT NULL,
        leaf BLOB NOT NULL,
        PRIMARY KEY (epoch, seq)
    ) WITHOUT ROWID""",
    """CREATE TABLE epoch_reward (  -- the rewards tree of a committed epoch, as its leaves' amounts in leaf order
        epoch INTEGER NOT NULL REFERENCES epoch_commitment (epoch),
        position INTEGER NOT NULL,
        contributor TEXT NOT NULL,
        amount TEXT NOT NULL,
        PRIMARY KEY (epoch, position)
    ) WITHOUT ROWID""",
    "CREATE INDEX epoch_reward_contributor ON epoch_reward (contributor)",
)

_PENDING, _SETTLED, _FAILED = "pending", "settled", "failed"
_COMMITTED, _SKIPPED = "committed", "skipped"


@dataclass(frozen=True)
class AcceptedAuthorization:
    """An ``exact`` payment: an EIP-3009 authorization the agent will settle on chain."""

    scheme: ClassVar[Scheme] = Scheme.EXACT

    request_id: bytes
    request_hash: bytes
    authorization: TransferWithAuthorization
    signature: bytes = field(repr=False)

    @property
    def payer(self) -> str:
        return self.authorization.from_

    @property
    def amount(self) -> int:
        """What the request was charged (wei)."""
        return self.authorization.value


@dataclass(frozen=True)
class AcceptedVoucher:
    """A ``channel`` payment: the voucher that raised the channel's cumulative amount by ``amount``."""

    scheme: ClassVar[Scheme] = Scheme.CHANNEL

    request_id: bytes
    request_hash: bytes
    payer: str
    amount: int
    voucher: Voucher
    signature: bytes = field(repr=False)


AcceptedPayment = AcceptedAuthorization | AcceptedVoucher


@dataclass(frozen=True)
class Answer:
    """What the host produced for a paid request: the receipt fields only it knows, and the bytes it serves.

    Attributes:
        output_hash, model_id, engine_hash, attribution_hash: the receipt fields of the same names.
        body: the response body as served; a retry of the request gets these bytes again.
        record: the off-chain record beside the receipt (canonical JSON), served to auditors.
    """

    output_hash: bytes
    model_id: bytes
    engine_hash: bytes
    attribution_hash: bytes
    body: bytes = field(repr=False)
    record: bytes = field(repr=False)


@dataclass(frozen=True)
class SignedReceipt:
    """A receipt and the agent signer's EIP-712 signature of it, as a payer or a dispute presents them."""

    receipt: Receipt
    signature: bytes = field(repr=False)


@dataclass(frozen=True)
class SignedAnswer:
    """An answer as journaled: its signed receipt and the stored bytes."""

    receipt: SignedReceipt
    body: bytes = field(repr=False)
    record: bytes = field(repr=False)


@dataclass(frozen=True)
class JournalEntry:
    """What the journal holds for a request id: its payment, and its answer once one was signed."""

    payment: AcceptedPayment
    answer: SignedAnswer | None = None


@dataclass(frozen=True)
class EpochCommit:
    """An epoch as committed on chain: the arguments of ``ReceiptRegistry.commitEpoch``.

    Attributes:
        epoch, receipts_root, receipt_count, fee_total, rewards_root, rewards_total: what was committed.
        tx_hash: the commit's transaction; ``None`` when the commitment was found on chain, sent by a run that
            stopped before journaling it.
    """

    epoch: int
    receipts_root: bytes
    receipt_count: int
    fee_total: int
    rewards_root: bytes
    rewards_total: int
    tx_hash: str | None = None


@dataclass(frozen=True)
class ReceiptInclusion:
    """Where a receipt sits in its committed epoch: what ``DisputeManager.proveInclusion`` and a payer need.

    Attributes:
        epoch, seq: the receipt's place.
        leaf: its leaf, ``Receipt.leaf(receipt_domain)``.
        receipts_root, receipt_count: the epoch's commitment.
        proof: the Merkle proof from ``leaf`` to ``receipts_root``.
    """

    epoch: int
    seq: int
    leaf: bytes
    receipts_root: bytes
    receipt_count: int
    proof: tuple[bytes, ...]

    def document(self) -> InclusionProof:
        """The ``inclusion`` of a receipt read (``GET /v1/receipts/{requestId}``)."""
        return InclusionProof(
            receipts_root="0x" + self.receipts_root.hex(),
            receipt_count=self.receipt_count,
            proof=tuple("0x" + node.hex() for node in self.proof),
        )


class Journal:
    """The journal of one agent in a SQLite file.

    Example:
        >>> async with Journal(tmp_path / "journal.sqlite", agent=operator) as journal:     # doctest: +SKIP
        ...     entry = await journal.lookup(request_id)
        ...     if entry is None or entry.answer is None:
        ...         ...  # verify the payment (it is journaled), run the skill, then record_answer

    Args:
        path: the SQLite file, created when missing.
        agent: the agent's operator address, the ``agent`` of its receipts. A file written for another agent is
            refused, so two agents can never interleave their receipts' ``seq``.
    """

    def __init__(self, path: str | Path, *, agent: str) -> None:
        self.path = str(path)
        self.agent = to_checksum_address(agent)
        schema = Schema(
            _SCHEMA_VERSION,
            _SCHEMA,
            initialize=self._initialize,
            check=self._check_owner,
        )
        self._file = SqliteFile(self.path, schema, name="journal", error=JournalError, foreign_keys=True)
        self._trees: OrderedDict[int, MerkleTree] = OrderedDict()  # committed epochs never change: safe to keep

    def __repr__(self) -> str:
        return f"<Journal {self.path} agent={self.agent}>"

    async def __aenter__(self) -> Journal:
        await self._file.open()  # now: a bad file fails at start-up, not at the first request
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Closes the connection and its thread; the journal cannot be used afterwards."""
        await self._file.close()

    # -- requests ----------------------------------------------------------------------------------------------

    async def lookup(self, request_id: bytes) -> JournalEntry | None:
        """The payment and answer journaled for ``request_id``, ``None`` for a request id never seen.

        Raises:
            JournalError: SQLite failed.
        """
        return await self._run(lambda connection: _entry(connection, request_id))

    async def accept_authorization(
        self,
        request_id: bytes,
        request_hash: bytes,
        authorization: TransferWithAuthorization,
        signature: bytes,
        *,
        balance: int,
    ) -> AcceptedPayment:
        """Records a verified ``exact`` payment for ``request_id``, or returns the payment already recorded for it.

        Args:
            request_id: the request being paid for.
            request_hash: the hash of the request; a request id comes back only with the same request.
            authorization: checked by the caller against chain, price and time, and signed by its ``from_``.
            signature: the payer's signature of ``authorization``.
            balance: the payer's token balance on chain; it must cover this payment and every one of the payer's
                authorizations not settled yet.

        Raises:
            RequestConflictError: the request id was used for another request.
            ReplayedPaymentError: the nonce was accepted for another request.
            InsufficientFundsError: ``balance`` cannot cover it (``insufficient_funds``).
            JournalError: SQLite failed; nothing was recorded.
        """
        return await self._write(
            lambda connection: self._accept_authorization(
                connection, request_id, request_hash, authorization, signature, balance
            )
        )

    async def accept_voucher(
        self,
        request_id: bytes,
        request_hash: bytes,
        voucher: Voucher,
        signature: bytes,
        *,
        payer: str,
        price: int,
        claimed: int,
    ) -> AcceptedPayment:
        """Records a verified ``channel`` payment for ``request_id``, or returns the payment already recorded for it.

        The voucher must raise the channel's cumulative amount by exactly ``price`` over the newest voucher
        accepted on it (or over ``claimed``, should the chain have paid out more than the journal knows).

        Args:
            request_id: the request being paid for.
            request_hash: the hash of the request; a request id comes back only with the same request.
            voucher: checked by the caller against the channel (open, this agent's, within the deposit).
            signature: the channel payer's signature of ``voucher``.
            payer: the channel's payer.
            price: what the request costs.
            claimed: the channel's cumulative amount already claimed on chain.

        Raises:
            RequestConflictError: the request id was used for another request.
            ReplayedPaymentError: this voucher was accepted for another request.
            StaleVoucherError: the channel has already been paid this much.
            PaymentAmountError: the voucher raises the cumulative amount by more or less than ``price``.
            JournalError: SQLite failed; nothing was recorded.
        """
        return await self._write(
            lambda connection: self._accept_voucher(
                connection, request_id, request_hash, voucher, signature, payer, price, claimed
            )
        )

    async def release(self, request_id: bytes) -> bool:
        """Gives back the payment of a request that was not answered (the skill failed), if nothing depends on it.

        An authorization not settled yet is dropped; a voucher is dropped when it is still its channel's newest
        and not claimed, and the channel's next voucher is then the same amount again. Otherwise the payment stays
        bound to the request id, and a retry with that id is served without a new charge.

        Returns:
            Whether the payment was released.

        Raises:
            UnknownRequestError: no payment was accepted for ``request_id``.
            JournalError: SQLite failed.
        """
        return await self._write(lambda connection: self._release(connection, request_id))

    async def record_answer(self, request_id: bytes, answer: Answer, sign: Callable[[Receipt], bytes]) -> JournalEntry:
        """Signs and journals the receipt of a paid request's answer, or returns the answer journaled before.

        The receipt takes its payer, price and request hash from the request's payment and the next ``seq`` of the
        current epoch; ``sign`` is called on the journal's thread inside the transaction (it must not touch the
        event loop), so the receipt exists signed only if it is journaled.

        Args:
            request_id: a request whose payment was accepted.
            answer: what the host produced.
            sign: the agent signer's EIP-712 signature of a receipt, e.g.
                ``functools.partial(staking.sign, signer, receipt_domain)``.

        Raises:
            UnknownRequestError: no payment was accepted for ``request_id``.
            JournalError: SQLite failed; nothing was recorded.
            Exception: whatever ``sign`` raised; nothing was recorded.
        """
        return await self._write(lambda connection: self._record_answer(connection, request_id, answer, sign))

    # -- epochs ------------------------------------------------------------------------------------------------

    async def current_epoch(self) -> int:
        """The epoch new receipts go to."""
        return await self._run(_epoch)

    async def close_epoch(self) -> int:
        """Ends the current epoch and returns it; no receipt is added to it afterwards."""
        return await self._write(self._close_epoch)

    async def receipts(self, epoch: int) -> tuple[SignedReceipt, ...]:
        """The receipts of ``epoch`` in ``seq`` order, as its Merkle tree takes them."""
        return await self._run(lambda connection: _receipts(connection, epoch))

    async def close_due_epoch(self, min_age: float) -> int | None:
        """Ends the current epoch if its first receipt was signed at least ``min_age`` seconds ago; returns it.

        An epoch without receipts stays open, however old: ReceiptRegistry refuses to commit an empty epoch, and the
        age of the first receipt bounds how long a receipt waits for its commitment, across restarts.

        Returns:
            The epoch closed, ``None`` when it is not due.
        """
        return await self._write(lambda connection: self._close_due_epoch(connection, min_age))

    async def advance_epoch(self, at_least: int) -> int:
        """Moves the current epoch up to ``at_least`` when it is below that; returns the current epoch.

        A receipt must never be signed for an epoch the agent can no longer commit (one at or below its latest
        committed epoch on chain, as after a journal was lost and started afresh): such a receipt could be proven
        withheld. Receipts already in the epochs passed over stay, for :meth:`uncommitted_epochs` to report.
        """
        return await self._write(lambda connection: _advance_epoch(connection, at_least))

    async def uncommitted_epochs(self) -> tuple[int, ...]:
        """The closed epochs with receipts that were neither committed nor found skipped, oldest first.

        Epochs are committed in order, so only the epochs after the last one journaled are looked at.
        """
        return await self._run(_uncommitted_epochs)

    async def epoch_records(self, epoch: int) -> tuple[tuple[SignedReceipt, bytes], ...]:
        """The receipts of ``epoch`` in ``seq`` order, each with its record (``AnswerRecord.to_json()``)."""
        return await self._run(lambda connection: _epoch_records(connection, epoch))

    async def record_commitment(
        self, commit: EpochCommit, leaves: Sequence[bytes], rewards: Sequence[tuple[str, int]]
    ) -> None:
        """Journals that ``commit`` is on chain, with its trees' leaves, so proofs can be served after a restart.

        Recording the same commitment again changes nothing.

        Args:
            commit: what the epoch's commitment holds on chain.
            leaves: the receipts tree's leaves in ``seq`` order.
            rewards: ``(contributor, amount)`` of each rewards tree leaf, in leaf order.

        Raises:
            JournalError: the leaves do not match the count, or another commitment of the epoch is journaled.
        """
        await self._write(lambda connection: self._record_commitment(connection, commit, leaves, rewards))

    async def record_skipped_epoch(self, epoch: int) -> None:
        """Journals that ``epoch`` can never be committed (the chain holds a later epoch), so it is not tried again.

        Raises:
            JournalError: the epoch is journaled as committed.
        """
        await self._write(lambda connection: self._record_skipped_epoch(connection, epoch))

    async def commitment(self, epoch: int) -> EpochCommit | None:
        """The journaled commitment of ``epoch``, ``None`` when it was not committed."""
        return await self._run(lambda connection: _commitment(connection, epoch))

    async def inclusion(self, request_id: bytes) -> InclusionProof | None:
        """The inclusion proof of ``request_id``'s receipt, ``None`` until its epoch is committed (or unknown)."""
        row = await self._run(
            lambda connection: connection.execute(
                "SELECT epoch, seq FROM receipt WHERE request_id = ?", (request_id,)
            ).fetchone()
        )
        if row is None:
            return None
        inclusion = await self.inclusion_at(*row)
        return None if inclusion is None else inclusion.document()

    async def inclusion_at(self, epoch: int, seq: int) -> ReceiptInclusion | None:
        """The place of receipt ``seq`` of ``epoch`` in its committed receipts tree, ``None`` when there is none."""
        tree = self._trees.get(epoch)
        if tree is None:
            leaves = await self._run(lambda connection: _leaves(connection, epoch))
            if not leaves:
                return None
            # A hash per receipt: off the event loop, and off the journal's thread that requests wait on.
            tree = await asyncio.to_thread(MerkleTree, leaves)
            self._trees[epoch] = tree
            if len(self._trees) > _CACHED_TREES:
                self._trees.popitem(last=False)
        else:
            self._trees.move_to_end(epoch)
        if not 0 <= seq < len(tree):
            return None
        return ReceiptInclusion(epoch, seq, tree.leaves[seq], tree.root, len(tree), tuple(tree.proof(seq)))

    async def reward_claims(self, contributor: str) -> list[tuple[str, int, int, list[bytes]]]:
        """``(agent, epoch, amount, proof)`` of ``contributor``'s reward in every committed epoch that has one.

        Each fits ``StakingClient.claim_rewards(contributor, claims)``; whether it was claimed already, or its epoch's
        challenge window is still open, is the chain's to say.
        """
        address = to_checksum_address(contributor)
        return await self._run(lambda connection: _reward_claims(connection, self.agent, address))

    # -- settlement --------------------------------------------------------------------------------------------

    async def pending_authorizations(self) -> tuple[AcceptedAuthorization, ...]:
        """The ``exact`` payments not settled yet, the ones expiring first first."""
        return await self._run(_pending_authorizations)

    async def mark_settled(self, payment: AcceptedAuthorization, tx_hash: str) -> None:
        """Records that ``payment`` was settled on chain by ``tx_hash`` (again: no change).

        Raises:
            UnknownRequestError: the journal holds no such payment.
        """
        await self._write(lambda connection: self._settle(connection, payment, _SETTLED, tx_hash, None))

    async def mark_settlement_failed(self, payment: AcceptedAuthorization, failure: str) -> None:
        """Records that ``payment`` can never be settled (cancelled, expired, payer drained) and why.

        Raises:
            UnknownRequestError: the journal holds no such payment.
        """
        await self._write(lambda connection: self._settle(connection, payment, _FAILED, None, failure))

    async def claimable_vouchers(self) -> tuple[AcceptedVoucher, ...]:
        """The newest voucher of every channel that pays more than was claimed on chain."""
        return await self._run(_claimable_vouchers)

    async def mark_claimed(self, voucher: AcceptedVoucher) -> None:
        """Records that ``voucher`` was claimed on chain (a lower claim than one recorded before changes nothing).

        Raises:
            UnknownRequestError: the journal holds no such voucher.
        """
        await self._write(lambda connection: self._mark_claimed(connection, voucher))

    async def mark_voucher_unclaimable(self, voucher: AcceptedVoucher, failure: str) -> None:
        """Records that ``voucher``'s channel can no longer be claimed (the payer withdrew it) and why; its vouchers
        leave :meth:`claimable_vouchers`.

        Raises:
            UnknownRequestError: the journal holds no such voucher.
        """
        await self._write(lambda connection: self._mark_voucher_unclaimable(connection, voucher, failure))

    # -- the connection ----------------------------------------------------------------------------------------

    async def _run(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        return await self._file.run(work)

    async def _write(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        return await self._file.write(work)

    def _initialize(self, connection: sqlite3.Connection) -> None:
        connection.executemany(
            "INSERT INTO journal_meta VALUES (?, ?)", [("agent", self.agent), ("epoch", str(_FIRST_EPOCH))]
        )

    def _check_owner(self, connection: sqlite3.Connection) -> None:
        """Refuses the journal of another agent: two agents must never interleave their receipts' ``seq``."""
        (owner,) = connection.execute("SELECT value FROM journal_meta WHERE key = 'agent'").fetchone()
        if owner != self.agent:
            raise JournalError(self.path, f"it is the journal of agent {owner}, not of {self.agent}")

    # -- the work, on the journal's thread ---------------------------------------------------------------------

    def _accept_authorization(
        self,
        connection: sqlite3.Connection,
        request_id: bytes,
        request_hash: bytes,
        authorization: TransferWithAuthorization,
        signature: bytes,
        balance: int,
    ) -> AcceptedPayment:
        bound = _bound_payment(connection, request_id, request_hash)
        if bound is not None:
            return bound
        payer, nonce = authorization.from_, authorization.nonce
        if connection.execute(
            "SELECT 1 FROM exact_authorization WHERE payer = ? AND nonce = ?", (payer, nonce)
        ).fetchone():
            raise ReplayedPaymentError(f"authorization nonce 0x{nonce.hex()} of {payer}")
        pending = sum(
            int(value)
            for (value,) in connection.execute(
                "SELECT value FROM exact_authorization WHERE payer = ? AND status = ?", (payer, _PENDING)
            )
        )
        if pending + authorization.value > balance:
            raise InsufficientFundsError(
                FailureReason.INSUFFICIENT_FUNDS, available=max(balance - pending, 0), required=authorization.value
            )
        _insert_payment(connection, request_id, request_hash, Scheme.EXACT, payer, authorization.value)
        connection.execute(
            "INSERT INTO exact_authorization (request_id, payer, payee, value, valid_after, valid_before, nonce, "
            "signature) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                request_id,
                payer,
                authorization.to,
                str(authorization.value),
                str(authorization.valid_after),
                str(authorization.valid_before),
                nonce,
                signature,
            ),
        )
        return AcceptedAuthorization(request_id, request_hash, authorization, signature)

    def _accept_voucher(
        self,
        connection: sqlite3.Connection,
        request_id: bytes,
        request_hash: bytes,
        voucher: Voucher,
        signature: bytes,
        payer: str,
        price: int,
        claimed: int,
    ) -> AcceptedPayment:
        bound = _bound_payment(connection, request_id, request_hash)
        if bound is not None:
            return bound
        channel_id, amount = voucher.channel_id, voucher.cumulative_amount
        row = connection.execute(
            "SELECT c.claimed, v.cumulative_amount FROM channel c LEFT JOIN channel_voucher v ON v.id = c.latest "
            "WHERE c.channel_id = ?",
            (channel_id,),
        ).fetchone()
        journaled_claim, latest = (int(row[0]), int(row[1] or 0)) if row else (0, 0)
        claimed = max(claimed, journaled_claim)
        paid = max(latest, claimed)
        expected = paid + price
        if amount != expected:
            if connection.execute(
                "SELECT 1 FROM channel_voucher WHERE channel_id = ? AND cumulative_amount = ?",
                (channel_id, str(amount)),
            ).fetchone():
                raise ReplayedPaymentError(f"voucher of channel 0x{channel_id.hex()} for {amount} wei", expected)
            if amount <= paid:
                raise StaleVoucherError(channel_id, amount, expected)
            raise PaymentAmountError(expected, amount)
        _insert_payment(connection, request_id, request_hash, Scheme.CHANNEL, payer, price)
        voucher_id = connection.execute(
            "INSERT INTO channel_voucher (request_id, channel_id, cumulative_amount, signature) VALUES (?, ?, ?, ?)",
            (request_id, channel_id, str(amount), signature),
        ).lastrowid
        connection.execute(
            "INSERT INTO channel (channel_id, latest, claimed) VALUES (?, ?, ?) "
            "ON CONFLICT (channel_id) DO UPDATE SET latest = excluded.latest, claimed = excluded.claimed",
            (channel_id, voucher_id, str(claimed)),
        )
        return AcceptedVoucher(request_id, request_hash, payer, price, voucher, signature)

    def _release(self, connection: sqlite3.Connection, request_id: bytes) -> bool:
        payment = _payment(connection, request_id)
        if payment is None:
            raise UnknownRequestError(self.path, request_id)
        if connection.execute("SELECT 1 FROM receipt WHERE request_id = ?", (request_id,)).fetchone():
            return False
        if isinstance(payment, AcceptedAuthorization):
            (status,) = connection.execute(
                "SELECT status FROM exact_authorization WHERE request_id = ?", (request_id,)
            ).fetchone()
            if status != _PENDING:
                return False
        else:
            voucher_id, latest, claimed = connection.execute(
                "SELECT v.id, c.latest, c.claimed FROM channel_voucher v JOIN channel c USING (channel_id) "
                "WHERE v.request_id = ?",
                (request_id,),
            ).fetchone()
            if voucher_id != latest or payment.voucher.cumulative_amount <= int(claimed):
                return False
            # The channel falls back to its previous voucher, so its next one is this amount again.
            connection.execute(
                "UPDATE channel SET latest = (SELECT MAX(id) FROM channel_voucher WHERE channel_id = ? AND id != ?) "
                "WHERE channel_id = ?",
                (payment.voucher.channel_id, voucher_id, payment.voucher.channel_id),
            )
        connection.execute("DELETE FROM payment WHERE request_id = ?", (request_id,))  # cascades to its scheme row
        _log.info("released the %s payment of request 0x%s", payment.scheme, request_id.hex())
        return True

    def _record_answer(
        self, connection: sqlite3.Connection, request_id: bytes, answer: Answer, sign: Callable[[Receipt], bytes]
    ) -> JournalEntry:
        entry = _entry(connection, request_id)
        if entry is None:
            raise UnknownRequestError(self.path, request_id)
        if entry.answer is not None:
            return entry
        epoch = _epoch(connection)
        (seq,) = connection.execute(
            "SELECT COALESCE(MAX(seq) + 1, 0) FROM receipt WHERE epoch = ?", (epoch,)
        ).fetchone()
        payment = entry.payment
        receipt = Receipt(
            agent=self.agent,
            request_id=request_id,
            request_hash=payment.request_hash,
            output_hash=answer.output_hash,
            model_id=answer.model_id,
            engine_hash=answer.engine_hash,
            attribution_hash=answer.attribution_hash,
            payer=payment.payer,
            price=payment.amount,
            epoch=epoch,
            seq=seq,
        )
        signature = sign(receipt)
        connection.execute(
            "INSERT INTO receipt VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                request_id,
                epoch,
                seq,
                receipt.agent,
                receipt.request_hash,
                receipt.output_hash,
                receipt.model_id,
                receipt.engine_hash,
                receipt.attribution_hash,
                receipt.payer,
                str(receipt.price),
                signature,
                answer.body,
                answer.record,
                time.time(),
            ),
        )
        return JournalEntry(payment, SignedAnswer(SignedReceipt(receipt, signature), answer.body, answer.record))

    def _close_epoch(self, connection: sqlite3.Connection) -> int:
        epoch = _epoch(connection)
        connection.execute("UPDATE journal_meta SET value = ? WHERE key = 'epoch'", (str(epoch + 1),))
        _log.info("closed epoch %d", epoch)
        return epoch

    def _close_due_epoch(self, connection: sqlite3.Connection, min_age: float) -> int | None:
        (first,) = connection.execute(
            "SELECT MIN(signed_at) FROM receipt WHERE epoch = ?", (_epoch(connection),)
        ).fetchone()
        if first is None or time.time() - first < min_age:
            return None
        return self._close_epoch(connection)

    def _record_commitment(
        self,
        connection: sqlite3.Connection,
        commit: EpochCommit,
        leaves: Sequence[bytes],
        rewards: Sequence[tuple[str, int]],
    ) -> None:
        if len(leaves) != commit.receipt_count:
            raise JournalError(
                self.path, f"epoch {commit.epoch} commits {commit.receipt_count} receipts but has {len(leaves)} leaves"
            )
        journaled = _commitment(connection, commit.epoch)
        if journaled is not None:
            if _same_commitment(journaled, commit):
                return
            raise JournalError(self.path, f"epoch {commit.epoch} is journaled as {journaled}, not {commit}")
        self._check_not_skipped(connection, commit.epoch)
        connection.execute(
            "INSERT INTO epoch_commitment VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                commit.epoch,
                _COMMITTED,
                commit.receipts_root,
                commit.receipt_count,
                str(commit.fee_total),
                commit.rewards_root,
                str(commit.rewards_total),
                commit.tx_hash,
                time.time(),
            ),
        )
        connection.executemany(
            "INSERT INTO receipt_leaf VALUES (?, ?, ?)", [(commit.epoch, seq, leaf) for seq, leaf in enumerate(leaves)]
        )
        connection.executemany(
            "INSERT INTO epoch_reward VALUES (?, ?, ?, ?)",
            [
                (commit.epoch, position, to_checksum_address(contributor), str(amount))
                for position, (contributor, amount) in enumerate(rewards)
            ],
        )

    def _record_skipped_epoch(self, connection: sqlite3.Connection, epoch: int) -> None:
        if _commitment(connection, epoch) is not None:
            raise JournalError(self.path, f"epoch {epoch} is journaled as committed")
        connection.execute(
            "INSERT OR IGNORE INTO epoch_commitment (epoch, status, recorded_at) VALUES (?, ?, ?)",
            (epoch, _SKIPPED, time.time()),
        )

    def _check_not_skipped(self, connection: sqlite3.Connection, epoch: int) -> None:
        if connection.execute(
            "SELECT 1 FROM epoch_commitment WHERE epoch = ? AND status = ?", (epoch, _SKIPPED)
        ).fetchone():
            raise JournalError(self.path, f"epoch {epoch} is journaled as skipped")

    def _mark_voucher_unclaimable(
        self, connection: sqlite3.Connection, accepted: AcceptedVoucher, failure: str
    ) -> None:
        voucher = accepted.voucher
        if not connection.execute(
            "SELECT 1 FROM channel_voucher WHERE request_id = ? AND channel_id = ?",
            (accepted.request_id, voucher.channel_id),
        ).fetchone():
            raise UnknownRequestError(self.path, accepted.request_id)
        connection.execute(
            "INSERT OR REPLACE INTO voucher_failure VALUES (?, ?, ?, ?)",
            (voucher.channel_id, str(voucher.cumulative_amount), failure, time.time()),
        )

    def _mark_claimed(self, connection: sqlite3.Connection, accepted: AcceptedVoucher) -> None:
        voucher = accepted.voucher
        row = connection.execute(
            "SELECT c.claimed FROM channel_voucher v JOIN channel c USING (channel_id) "
            "WHERE v.request_id = ? AND v.channel_id = ?",
            (accepted.request_id, voucher.channel_id),
        ).fetchone()
        if row is None:
            raise UnknownRequestError(self.path, accepted.request_id)
        if voucher.cumulative_amount > int(row[0]):
            connection.execute(
                "UPDATE channel SET claimed = ? WHERE channel_id = ?",
                (str(voucher.cumulative_amount), voucher.channel_id),
            )

    def _settle(
        self,
        connection: sqlite3.Connection,
        payment: AcceptedAuthorization,
        status: str,
        tx_hash: str | None,
        failure: str | None,
    ) -> None:
        updated = connection.execute(
            "UPDATE exact_authorization SET status = ?, tx_hash = ?, failure = ? WHERE request_id = ? AND status = ?",
            (status, tx_hash, failure, payment.request_id, _PENDING),
        ).rowcount
        if not updated and _payment(connection, payment.request_id) is None:
            raise UnknownRequestError(self.path, payment.request_id)


# -- SQL helpers: plain functions of a connection, run on the journal's thread ---------------------------------


def _epoch(connection: sqlite3.Connection) -> int:
    (value,) = connection.execute("SELECT value FROM journal_meta WHERE key = 'epoch'").fetchone()
    return int(value)


def _insert_payment(
    connection: sqlite3.Connection, request_id: bytes, request_hash: bytes, scheme: Scheme, payer: str, amount: int
) -> None:
    connection.execute(
        "INSERT INTO payment VALUES (?, ?, ?, ?, ?, ?)",
        (request_id, request_hash, scheme.value, payer, str(amount), time.time()),
    )


def _bound_payment(connection: sqlite3.Connection, request_id: bytes, request_hash: bytes) -> AcceptedPayment | None:
    """The payment ``request_id`` already has, if any (the request must be the same one)."""
    payment = _payment(connection, request_id)
    if payment is not None and payment.request_hash != request_hash:
        raise RequestConflictError(request_id)
    return payment


_AUTHORIZATION_SELECT = (
    "SELECT p.request_id, p.request_hash, e.payer, e.payee, e.value, e.valid_after, e.valid_before, e.nonce, "
    "e.signature FROM payment p JOIN exact_authorization e USING (request_id)"
)
_VOUCHER_SELECT = (
    "SELECT p.request_id, p.request_hash, p.payer, p.amount, v.channel_id, v.cumulative_amount, v.signature "
    "FROM payment p JOIN channel_voucher v USING (request_id)"
)
_RECEIPT_SELECT = (
    "SELECT agent, request_id, request_hash, output_hash, model_id, engine_hash, attribution_hash, payer, price, "
    "epoch, seq, signature, body, record FROM receipt"
)


def _authorization(row: tuple[Any, ...]) -> AcceptedAuthorization:
    request_id, request_hash, payer, payee, value, valid_after, valid_before, nonce, signature = row
    authorization = TransferWithAuthorization(payer, payee, int(value), int(valid_after), int(valid_before), nonce)
    return AcceptedAuthorization(request_id, request_hash, authorization, signature)


def _voucher(row: tuple[Any, ...]) -> AcceptedVoucher:
    request_id, request_hash, payer, amount, channel_id, cumulative_amount, signature = row
    voucher = Voucher(channel_id, int(cumulative_amount))
    return AcceptedVoucher(request_id, request_hash, payer, int(amount), voucher, signature)


def _signed_receipt(row: tuple[Any, ...]) -> SignedReceipt:
    agent, request_id, request_hash, output_hash, model_id, engine_hash, attribution_hash, payer, price = row[:9]
    epoch, seq, signature = row[9:12]
    receipt = Receipt(
        agent, request_id, request_hash, output_hash, model_id, engine_hash, attribution_hash, payer, int(price),
        epoch, seq,
    )  # fmt: skip
    return SignedReceipt(receipt, signature)


def _payment(connection: sqlite3.Connection, request_id: bytes) -> AcceptedPayment | None:
    row = connection.execute("SELECT scheme FROM payment WHERE request_id = ?", (request_id,)).fetchone()
    if row is None:
        return None
    if row[0] == Scheme.EXACT:
        return _authorization(
            connection.execute(f"{_AUTHORIZATION_SELECT} WHERE request_id = ?", (request_id,)).fetchone()
        )
    return _voucher(connection.execute(f"{_VOUCHER_SELECT} WHERE request_id = ?", (request_id,)).fetchone())


def _entry(connection: sqlite3.Connection, request_id: bytes) -> JournalEntry | None:
    payment = _payment(connection, request_id)
    if payment is None:
        return None
    row = connection.execute(f"{_RECEIPT_SELECT} WHERE request_id = ?", (request_id,)).fetchone()
    if row is None:
        return JournalEntry(payment)
    return JournalEntry(payment, SignedAnswer(_signed_receipt(row), row[12], row[13]))


def _receipts(connection: sqlite3.Connection, epoch: int) -> tuple[SignedReceipt, ...]:
    rows = connection.execute(f"{_RECEIPT_SELECT} WHERE epoch = ? ORDER BY seq", (epoch,))
    return tuple(_signed_receipt(row) for row in rows)


def _pending_authorizations(connection: sqlite3.Connection) -> tuple[AcceptedAuthorization, ...]:
    rows = connection.execute(f"{_AUTHORIZATION_SELECT} WHERE e.status = ?", (_PENDING,))
    return tuple(sorted((_authorization(row) for row in rows), key=lambda p: p.authorization.valid_before))


def _claimable_vouchers(connection: sqlite3.Connection) -> tuple[AcceptedVoucher, ...]:
    rows = connection.execute(
        "SELECT p.request_id, p.request_hash, p.payer, p.amount, v.channel_id, v.cumulative_amount, v.signature, "
        "c.claimed FROM channel c JOIN channel_voucher v ON v.id = c.latest "
        "JOIN payment p ON p.request_id = v.request_id "
        "WHERE c.channel_id NOT IN (SELECT channel_id FROM voucher_failure) ORDER BY c.channel_id"
    )
    return tuple(_voucher(row[:7]) for row in rows if int(row[5]) > int(row[7]))


def _advance_epoch(connection: sqlite3.Connection, at_least: int) -> int:
    epoch = _epoch(connection)
    if epoch >= at_least:
        return epoch
    connection.execute("UPDATE journal_meta SET value = ? WHERE key = 'epoch'", (str(at_least),))
    _log.warning("moved the current epoch from %d to %d: the chain has committed epochs up to it", epoch, at_least)
    return at_least


def _uncommitted_epochs(connection: sqlite3.Connection) -> tuple[int, ...]:
    rows = connection.execute(
        "SELECT DISTINCT epoch FROM receipt WHERE epoch < ? "
        "AND epoch > (SELECT COALESCE(MAX(epoch), 0) FROM epoch_commitment) ORDER BY epoch",
        (_epoch(connection),),
    )
    return tuple(epoch for (epoch,) in rows)


def _epoch_records(connection: sqlite3.Connection, epoch: int) -> tuple[tuple[SignedReceipt, bytes], ...]:
    rows = connection.execute(f"{_RECEIPT_SELECT} WHERE epoch = ? ORDER BY seq", (epoch,))
    return tuple((_signed_receipt(row), row[13]) for row in rows)


def _commitment(connection: sqlite3.Connection, epoch: int) -> EpochCommit | None:
    row = connection.execute(
        "SELECT receipts_root, receipt_count, fee_total, rewards_root, rewards_total, tx_hash FROM epoch_commitment "
        "WHERE epoch = ? AND status = ?",
        (epoch, _COMMITTED),
    ).fetchone()
    if row is None:
        return None
    receipts_root, count, fee_total, rewards_root, rewards_total, tx_hash = row
    return EpochCommit(epoch, receipts_root, count, int(fee_total), rewards_root, int(rewards_total), tx_hash)


def _same_commitment(a: EpochCommit, b: EpochCommit) -> bool:
    """Whether two commitments put the same thing on chain, whichever transaction (if known) did it."""
    return (a.receipts_root, a.receipt_count, a.fee_total, a.rewards_root, a.rewards_total) == (
        b.receipts_root, b.receipt_count, b.fee_total, b.rewards_root, b.rewards_total,
    )  # fmt: skip


def _leaves(connection: sqlite3.Connection, epoch: int) -> list[bytes]:
    rows = connection.execute("SELECT leaf FROM receipt_leaf WHERE epoch = ? ORDER BY seq", (epoch,))
    return [leaf for (leaf,) in rows]


def _reward_claims(
    connection: sqlite3.Connection, agent: str, contributor: str
) -> list[tuple[str, int, int, list[bytes]]]:
    claims: list[tuple[str, int, int, list[bytes]]] = []
    rewarded = connection.execute(
        "SELECT epoch, position FROM epoch_reward WHERE contributor = ? ORDER BY epoch", (contributor,)
    ).fetchall()
    for epoch, position in rewarded:
        leaves = connection.execute(
            "SELECT contributor, amount FROM epoch_reward WHERE epoch = ? ORDER BY position", (epoch,)
        ).fetchall()
        tree = MerkleTree([reward_leaf(address, int(amount)) for address, amount in leaves])
        claims.append((agent, epoch, int(leaves[position][1]), tree.proof(position)))
    return claims
