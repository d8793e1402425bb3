"""A state machine over the journal: random interleavings of paying, replaying, answering, failing to sign,
releasing, settling, claiming, closing epochs and reopening the file, against a model of what was charged.

It keeps two promises whatever the order: never charged twice (a request id, a nonce and a voucher each pay once,
and a channel's vouchers climb by exactly the price) and nothing accepted lost (every payment and every signed
receipt is there after any reopening, the receipts of each epoch numbered 0 to n - 1).
"""

from __future__ import annotations

import asyncio
import itertools
import shutil
import tempfile
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from eth_account import Account
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from runtime.errors import ReplayedPaymentError, UnknownRequestError
from runtime.journal import AcceptedAuthorization, AcceptedVoucher, Answer, Journal
from staking import Domain, Receipt, TransferWithAuthorization, Voucher, sign

_T = TypeVar("_T")

PRICE = 7
AGENT = Account.from_key(b"\x0a" * 32).address
PAYER = Account.from_key(b"\x02" * 32).address
PAYEE = Account.from_key(b"\x03" * 32).address
SIGNER = Account.from_key(b"\x04" * 32)
RECEIPTS = Domain("ReceiptRegistry", "1", 31337, "0x" + "33" * 20)
HASH = b"h" * 32
SIGNATURE = b"\x11" * 64 + b"\x1b"
ANSWER = Answer(b"\x02" * 32, b"\x03" * 32, b"\x04" * 32, b"\x05" * 32, b"body", b"record")

REQUESTS = st.sampled_from([bytes([i]) * 32 for i in range(1, 5)])
CHANNELS = st.sampled_from([b"\xc1" * 32, b"\xc2" * 32])
NONCES = st.sampled_from([bytes([0xE0 + i]) * 32 for i in range(4)])


class SigningFailedError(Exception):
    """The signer died mid-answer, as a crash would interrupt it."""


@dataclass(frozen=True)
class Paid:
    """The model's record of a payment: by voucher (``channel``, ``cumulative``) or by authorization (``nonce``)."""

    channel: bytes | None = None
    cumulative: int = 0
    nonce: bytes | None = None


class JournalMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.directory = Path(tempfile.mkdtemp(prefix="journal-machine-"))  # state machines get no tmp_path
        self.loop = asyncio.new_event_loop()
        self.journal = self.open()
        self.paid: dict[bytes, Paid] = {}
        self.vouchers: dict[bytes, list[bytes]] = {}  # channel -> request ids of its vouchers, oldest first
        self.claimed: dict[bytes, int] = {}
        self.settled: set[bytes] = set()
        self.answered: dict[bytes, tuple[int, int]] = {}  # request id -> (epoch, seq)
        self.epoch = 1

    def open(self) -> Journal:
        journal = Journal(self.directory / "journal.sqlite", agent=AGENT)
        self.run(journal.__aenter__())
        return journal

    def run(self, work: Coroutine[Any, Any, _T]) -> _T:
        return self.loop.run_until_complete(work)

    def teardown(self) -> None:
        self.run(self.journal.close())
        self.loop.close()
        shutil.rmtree(self.directory)

    def latest(self, channel: bytes) -> int:
        requests = self.vouchers.get(channel, [])
        return self.paid[requests[-1]].cumulative if requests else 0

    # -- paying ------------------------------------------------------------------------------------------------

    @rule(request=REQUESTS, channel=CHANNELS)
    def pay_by_voucher(self, request: bytes, channel: bytes) -> None:
        amount = max(self.latest(channel), self.claimed.get(channel, 0)) + PRICE
        accepted = self.run(
            self.journal.accept_voucher(
                request, HASH, Voucher(channel, amount), SIGNATURE, payer=PAYER, price=PRICE, claimed=0
            )
        )
        if request not in self.paid:
            self.paid[request] = Paid(channel=channel, cumulative=amount)
            self.vouchers.setdefault(channel, []).append(request)
        self.assert_is_the_payment_of(request, accepted)

    @rule(request=REQUESTS, channel=CHANNELS)
    def replay_the_newest_voucher(self, request: bytes, channel: bytes) -> None:
        amount = self.latest(channel)
        if amount == 0:
            return
        work = self.journal.accept_voucher(
            request, HASH, Voucher(channel, amount), SIGNATURE, payer=PAYER, price=PRICE, claimed=0
        )
        if request in self.paid:  # a known request id: its own payment back, nothing charged
            self.assert_is_the_payment_of(request, self.run(work))
            return
        with pytest.raises(ReplayedPaymentError):
            self.run(work)

    @rule(request=REQUESTS, nonce=NONCES)
    def pay_by_authorization(self, request: bytes, nonce: bytes) -> None:
        authorization = TransferWithAuthorization(PAYER, PAYEE, PRICE, 0, 2**40, nonce)
        work = self.journal.accept_authorization(request, HASH, authorization, SIGNATURE, balance=10**30)
        nonce_taken = any(paid.nonce == nonce for paid in self.paid.values())
        if request not in self.paid and nonce_taken:
            with pytest.raises(ReplayedPaymentError):
                self.run(work)
            return
        accepted = self.run(work)
        if request not in self.paid:
            self.paid[request] = Paid(nonce=nonce)
        self.assert_is_the_payment_of(request, accepted)

    # -- answering ---------------------------------------------------------------------------------------------

    @rule(request=REQUESTS)
    def answer(self, request: bytes) -> None:
        signatures: list[Receipt] = []

        def signing(receipt: Receipt) -> bytes:
            signatures.append(receipt)
            return sign(SIGNER, RECEIPTS, receipt)

        if request not in self.paid:
            with pytest.raises(UnknownRequestError):
                self.run(self.journal.record_answer(request, ANSWER, signing))
            return
        entry = self.run(self.journal.record_answer(request, ANSWER, signing))
        assert entry.answer is not None
        receipt = entry.answer.receipt.receipt
        if request in self.answered:
            assert signatures == []  # answered before: the stored receipt, never a second signature
        else:
            self.answered[request] = (self.epoch, sum(epoch == self.epoch for epoch, _ in self.answered.values()))
        assert (receipt.epoch, receipt.seq) == self.answered[request]
        assert (receipt.payer, receipt.price) == (PAYER, PRICE)

    @rule(request=REQUESTS)
    def crash_while_signing(self, request: bytes) -> None:
        def dying(receipt: Receipt) -> bytes:
            raise SigningFailedError

        if request not in self.paid or request in self.answered:
            return
        with pytest.raises(SigningFailedError):
            self.run(self.journal.record_answer(request, ANSWER, dying))

    @rule(request=REQUESTS)
    def release(self, request: bytes) -> None:
        if request not in self.paid:
            with pytest.raises(UnknownRequestError):
                self.run(self.journal.release(request))
            return
        paid = self.paid[request]
        if request in self.answered:
            expected = False
        elif paid.nonce is not None:
            expected = request not in self.settled
        else:
            assert paid.channel is not None
            newest = self.vouchers[paid.channel][-1] == request
            expected = newest and paid.cumulative > self.claimed.get(paid.channel, 0)
        assert self.run(self.journal.release(request)) is expected
        if expected:
            del self.paid[request]
            if paid.channel is not None:
                self.vouchers[paid.channel].pop()

    # -- settling, claiming, epochs, restarts ------------------------------------------------------------------

    @rule()
    def settle_the_most_urgent(self) -> None:
        pending = self.run(self.journal.pending_authorizations())
        if pending:
            self.run(self.journal.mark_settled(pending[0], "0x" + "ab" * 32))
            self.settled.add(pending[0].request_id)

    @rule(channel=CHANNELS)
    def claim(self, channel: bytes) -> None:
        claimable = {v.voucher.channel_id: v for v in self.run(self.journal.claimable_vouchers())}
        if channel in claimable:
            self.run(self.journal.mark_claimed(claimable[channel]))
            self.claimed[channel] = claimable[channel].voucher.cumulative_amount

    @rule()
    def close_epoch(self) -> None:
        assert self.run(self.journal.close_epoch()) == self.epoch
        self.epoch += 1

    @rule()
    def reopen(self) -> None:
        self.run(self.journal.close())
        self.journal = self.open()

    # -- what must always hold ---------------------------------------------------------------------------------

    def assert_is_the_payment_of(self, request: bytes, payment: AcceptedAuthorization | AcceptedVoucher) -> None:
        paid = self.paid[request]
        assert payment.request_id == request
        if paid.nonce is not None:
            assert isinstance(payment, AcceptedAuthorization)
            assert payment.authorization.nonce == paid.nonce
        else:
            assert isinstance(payment, AcceptedVoucher)
            assert paid.channel is not None
            assert (payment.voucher, payment.amount) == (Voucher(paid.channel, paid.cumulative), PRICE)

    @invariant()
    def nothing_accepted_is_lost(self) -> None:
        for request in self.paid:
            entry = self.run(self.journal.lookup(request))
            assert entry is not None
            self.assert_is_the_payment_of(request, entry.payment)
            if request in self.answered:
                assert entry.answer is not None
                receipt = entry.answer.receipt.receipt
                assert (receipt.epoch, receipt.seq) == self.answered[request]
            else:
                assert entry.answer is None

    @invariant()
    def receipts_of_each_epoch_are_numbered_without_gaps(self) -> None:
        for epoch in range(1, self.epoch + 1):
            receipts = self.run(self.journal.receipts(epoch))
            assert [signed.receipt.seq for signed in receipts] == list(range(len(receipts)))
            expected = sorted((seq, request) for request, (e, seq) in self.answered.items() if e == epoch)
            assert [(signed.receipt.seq, signed.receipt.request_id) for signed in receipts] == expected

    @invariant()
    def never_charged_twice(self) -> None:
        for requests in self.vouchers.values():
            amounts = [self.paid[request].cumulative for request in requests]
            assert all(later - earlier == PRICE for earlier, later in itertools.pairwise(amounts))
        nonces = [paid.nonce for paid in self.paid.values() if paid.nonce is not None]
        assert len(nonces) == len(set(nonces))
        pending = {p.request_id for p in self.run(self.journal.pending_authorizations())}
        assert pending == {r for r, paid in self.paid.items() if paid.nonce is not None and r not in self.settled}
        claimable = {
            v.voucher.channel_id: v.voucher.cumulative_amount for v in self.run(self.journal.claimable_vouchers())
        }
        expected = {c: self.latest(c) for c in self.vouchers if self.latest(c) > self.claimed.get(c, 0)}
        assert claimable == expected


JournalMachine.TestCase.settings = settings(
    max_examples=40, stateful_step_count=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestJournalMachine = JournalMachine.TestCase
