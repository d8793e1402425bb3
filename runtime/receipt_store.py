"""The paying client's local store: channel state, the payment sent for each logical call, and every receipt.

One SQLite file per payer (:class:`staking.sqlite.SqliteFile`: one thread, WAL, ``synchronous=FULL``, explicit
``BEGIN IMMEDIATE`` writes), so that:

* a payment is written before it is sent, and a crash between the two resends that same payment, never a second one;
* two processes sharing the file cannot sign the same cumulative amount of a channel twice unknowingly;
* every receipt received is kept with the request and response bodies, also one that failed verification and a
  second signed receipt of one request: they are the payer's evidence in a dispute.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TypeVar

from agents.record import SignedReceiptDocument
from staking.eip712 import Voucher
from staking.sqlite import Schema, SqliteFile
from staking.types import Channel

from .errors import ReceiptStoreError
from .protocol import ChannelPaymentPayload, Scheme, decode_payment_payload

__all__ = ["ChannelAccount", "ReceiptStore", "SentPayment", "StoredReceipt"]

_T = TypeVar("_T")


@dataclass(frozen=True)
class StoredReceipt:
    """A receipt in the store, with what a dispute needs beside it.

    Attributes:
        request_id: the receipt's ``requestId``.
        agent: the agent's operator.
        payer: the wallet that paid.
        skill: the skill called (``chat`` for plain chat).
        scheme: how it was paid.
        receipt: the receipt as received.
        request: the request body as sent.
        response: the response body as received.
        problems: the failed checks; empty when the receipt was verified.
        record: the answer record, once read with :meth:`AgentClient.fetch_record` (JSON).
        stored_at: unix time.
    """

    request_id: str
    agent: str
    payer: str
    skill: str
    scheme: Scheme
    receipt: SignedReceiptDocument
    request: bytes
    response: bytes
    problems: tuple[str, ...]
    record: bytes | None
    stored_at: float

    @property
    def verified(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class ChannelAccount:
    """The payer's view of its channel to the agent (wei).

    Attributes:
        channel_id: the channel.
        deposit: what the channel holds on chain.
        paid: the cumulative amount the agent accepted last.
        signed: the largest cumulative amount the payer ever signed: what the agent can claim at most.
    """

    channel_id: bytes
    deposit: int
    paid: int
    signed: int

    @property
    def remaining(self) -> int:
        """What further vouchers can still pay before a top-up."""
        return self.deposit - self.paid


@dataclass(frozen=True)
class SentPayment:
    """A payment as sent for one logical call (and resent on every retry of it)."""

    header: str
    amount: int
    voucher: Voucher | None


_SCHEMA_VERSION: Final = 1
_SCHEMA: Final = (
    """CREATE TABLE channel (
        channel_id BLOB PRIMARY KEY,
        chain_id INTEGER NOT NULL,
        contract TEXT NOT NULL,     -- the PaymentChannels contract
        payer TEXT NOT NULL,
        receiver TEXT NOT NULL,     -- the agent's operator
        deposit TEXT NOT NULL,      -- wei, as last read from chain (decimal: uint256 overflows INTEGER)
        paid TEXT NOT NULL,         -- the cumulative amount the agent accepted last
        signed TEXT NOT NULL,       -- the largest cumulative amount ever signed
        open INTEGER NOT NULL,
        opened_at REAL NOT NULL
    )""",
    "CREATE INDEX channel_route ON channel (chain_id, contract, payer, receiver, open)",
    """CREATE TABLE payment (       -- the payment sent for each logical call, written before it is sent
        payer TEXT NOT NULL,
        agent TEXT NOT NULL,
        idempotency_key TEXT NOT NULL,
        fingerprint BLOB NOT NULL,  -- keccak of the request body: a key names one request
        header TEXT NOT NULL,       -- the PAYMENT-SIGNATURE value
        amount TEXT NOT NULL,
        sent_at REAL NOT NULL,
        PRIMARY KEY (payer, agent, idempotency_key)
    )""",
    """CREATE TABLE receipt (       -- two receipts of one request are both kept: they prove equivocation
        agent TEXT NOT NULL,
        request_id TEXT NOT NULL,
        signature TEXT NOT NULL,
        payer TEXT NOT NULL,
        skill TEXT NOT NULL,
        scheme TEXT NOT NULL,
        receipt TEXT NOT NULL,      -- SignedReceiptDocument JSON
        request BLOB NOT NULL,
        response BLOB NOT NULL,
        problems TEXT NOT NULL,     -- JSON list; empty when verified
        record BLOB,                -- the answer record, once read
        stored_at REAL NOT NULL,
        PRIMARY KEY (agent, request_id, signature)
    )""",
    "CREATE INDEX receipt_payer ON receipt (agent, payer, stored_at)",
)
_ChannelKey = tuple[int, str, str, str]  # chain id, channels contract, payer, receiver


class ReceiptStore:
    """A payer's SQLite file: channel state, payments sent, receipts (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = SqliteFile(path, Schema(_SCHEMA_VERSION, _SCHEMA), name="receipt-store", error=ReceiptStoreError)

    async def open(self) -> None:
        await self._file.open()

    async def close(self) -> None:
        await self._file.close()

    # channels

    async def find_channel(self, key: _ChannelKey) -> ChannelAccount | None:
        def find(connection: sqlite3.Connection) -> ChannelAccount | None:
            row = connection.execute(
                "SELECT channel_id, deposit, paid, signed FROM channel WHERE chain_id = ? AND contract = ? "
                "AND payer = ? AND receiver = ? AND open = 1 ORDER BY opened_at DESC LIMIT 1",
                key,
            ).fetchone()
            return None if row is None else _account(row)

        return await self._run(find)

    async def channel(self, channel_id: bytes) -> ChannelAccount:
        def read(connection: sqlite3.Connection) -> ChannelAccount:
            return _account(
                connection.execute(
                    "SELECT channel_id, deposit, paid, signed FROM channel WHERE channel_id = ?", (channel_id,)
                ).fetchone()
            )

        return await self._run(read)

    async def add_channel(self, key: _ChannelKey, channel_id: bytes, deposit: int) -> None:
        await self._write(
            lambda connection: connection.execute(
                "INSERT INTO channel VALUES (?, ?, ?, ?, ?, ?, '0', '0', 1, ?)",
                (channel_id, *key, str(deposit), time.time()),
            )
        )

    async def close_channel(self, channel_id: bytes) -> None:
        await self._write(
            lambda connection: connection.execute("UPDATE channel SET open = 0 WHERE channel_id = ?", (channel_id,))
        )

    async def sync(self, channel_id: bytes, on_chain: Channel) -> None:
        """Takes the deposit and the claimed amount read from chain (a claim was accepted, so it was signed)."""
        deposit, claimed = on_chain.deposit, on_chain.claimed

        def sync(connection: sqlite3.Connection) -> None:
            account = _account(
                connection.execute(
                    "SELECT channel_id, deposit, paid, signed FROM channel WHERE channel_id = ?", (channel_id,)
                ).fetchone()
            )
            connection.execute(
                "UPDATE channel SET deposit = ?, paid = ?, signed = ? WHERE channel_id = ?",
                (str(deposit), str(max(account.paid, claimed)), str(max(account.signed, claimed)), channel_id),
            )

        await self._write(sync)

    async def reserve(self, channel_id: bytes, price: int) -> int | None:
        """The next voucher's cumulative amount, recorded as signed; ``None`` when it would exceed the deposit."""

        def reserve(connection: sqlite3.Connection) -> int | None:
            account = _account(
                connection.execute(
                    "SELECT channel_id, deposit, paid, signed FROM channel WHERE channel_id = ?", (channel_id,)
                ).fetchone()
            )
            cumulative = account.paid + price
            if cumulative > account.deposit:
                return None
            connection.execute(
                "UPDATE channel SET signed = ? WHERE channel_id = ?", (str(max(account.signed, cumulative)), channel_id)
            )
            return cumulative

        return await self._write(reserve)

    async def accepted(self, channel_id: bytes, cumulative: int) -> None:
        """The agent accepted a voucher for ``cumulative`` (an older one, when it answered a call again)."""

        def accept(connection: sqlite3.Connection) -> None:
            row = connection.execute("SELECT paid, signed FROM channel WHERE channel_id = ?", (channel_id,)).fetchone()
            if row is not None:
                paid = max(int(row[0]), min(cumulative, int(row[1])))
                connection.execute("UPDATE channel SET paid = ? WHERE channel_id = ?", (str(paid), channel_id))

        await self._write(accept)

    async def resync(self, channel_id: bytes, paid: int) -> bool:
        """Takes the agent's word that the channel paid ``paid``, unless that is more than was ever signed."""

        def resync(connection: sqlite3.Connection) -> bool:
            (signed,) = connection.execute("SELECT signed FROM channel WHERE channel_id = ?", (channel_id,)).fetchone()
            if not 0 <= paid <= int(signed):
                return False
            connection.execute("UPDATE channel SET paid = ? WHERE channel_id = ?", (str(paid), channel_id))
            return True

        return await self._write(resync)

    # payments sent

    async def sent_payment(
        self, payer: str, agent: str, key: str, fingerprint: bytes, scheme: Scheme
    ) -> SentPayment | None:
        """The payment sent for ``key`` before, when it was for the same request in the same scheme."""

        def find(connection: sqlite3.Connection) -> tuple[bytes, str, str] | None:
            row = connection.execute(
                "SELECT fingerprint, header, amount FROM payment WHERE payer = ? AND agent = ? AND idempotency_key = ?",
                (payer, agent, key),
            ).fetchone()
            return None if row is None else (bytes(row[0]), str(row[1]), str(row[2]))

        row = await self._run(find)
        if row is None or row[0] != fingerprint:
            return None  # a key reused for another request: the agent answers 409 whatever is paid
        header, amount = row[1], int(row[2])
        payload = decode_payment_payload(header)
        if payload.accepted.scheme != scheme.value:
            return None
        voucher = None
        if isinstance(payload, ChannelPaymentPayload):
            voucher = Voucher(payload.payload.channel_id, payload.payload.cumulative_amount)
        return SentPayment(header, amount, voucher)

    async def remember_payment(self, payer: str, agent: str, key: str, fingerprint: bytes, sent: SentPayment) -> None:
        await self._write(
            lambda connection: connection.execute(
                "INSERT INTO payment VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (payer, agent, idempotency_key) "
                "DO UPDATE SET fingerprint = excluded.fingerprint, header = excluded.header, amount = excluded.amount, "
                "sent_at = excluded.sent_at",
                (payer, agent, key, fingerprint, sent.header, str(sent.amount), time.time()),
            )
        )

    # receipts

    async def add_receipt(self, stored: StoredReceipt) -> None:
        """Stores a receipt; the same receipt again (an idempotent retry) keeps the first copy."""
        await self._write(
            lambda connection: connection.execute(
                "INSERT INTO receipt VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?) "
                "ON CONFLICT (agent, request_id, signature) DO NOTHING",
                (
                    stored.agent,
                    stored.request_id,
                    stored.receipt.signature,
                    stored.payer,
                    stored.skill,
                    stored.scheme.value,
                    stored.receipt.model_dump_json(by_alias=True),
                    stored.request,
                    stored.response,
                    json.dumps(stored.problems),
                    stored.stored_at,
                ),
            )
        )

    async def keep_record(self, agent: str, request_id: str, record: bytes) -> None:
        await self._write(
            lambda connection: connection.execute(
                "UPDATE receipt SET record = ? WHERE agent = ? AND request_id = ?", (record, agent, request_id)
            )
        )

    async def receipts(self, agent: str, payer: str) -> list[StoredReceipt]:
        """``payer``'s receipts from ``agent``, oldest first."""
        return await self._select("agent = ? AND payer = ?", (agent, payer))

    async def receipts_of(self, agent: str, request_id: str) -> list[SignedReceiptDocument]:
        """Every receipt held for one request (more than one: the agent equivocated)."""
        return [stored.receipt for stored in await self._select("agent = ? AND request_id = ?", (agent, request_id))]

    async def _select(self, where: str, parameters: tuple[str, ...]) -> list[StoredReceipt]:
        def read(connection: sqlite3.Connection) -> list[StoredReceipt]:
            rows = connection.execute(
                "SELECT request_id, agent, payer, skill, scheme, receipt, request, response, problems, record, "
                f"stored_at FROM receipt WHERE {where} ORDER BY stored_at, rowid",
                parameters,
            ).fetchall()
            return [
                StoredReceipt(
                    request_id=row[0],
                    agent=row[1],
                    payer=row[2],
                    skill=row[3],
                    scheme=Scheme(row[4]),
                    receipt=SignedReceiptDocument.model_validate_json(row[5]),
                    request=bytes(row[6]),
                    response=bytes(row[7]),
                    problems=tuple(json.loads(row[8])),
                    record=None if row[9] is None else bytes(row[9]),
                    stored_at=float(row[10]),
                )
                for row in rows
            ]

        return await self._run(read)

    # the connection

    async def _run(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        return await self._file.run(work)

    async def _write(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        return await self._file.write(work)


def _account(row: tuple[bytes, str, str, str]) -> ChannelAccount:
    return ChannelAccount(bytes(row[0]), int(row[1]), int(row[2]), int(row[3]))
