"""The receipts journal on a real SQLite file: payments bound to request ids, gapless receipts, settlement state."""

from __future__ import annotations

import asyncio
import functools
import secrets
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from runtime.errors import (
    InsufficientFundsError,
    JournalError,
    PaymentAmountError,
    ReplayedPaymentError,
    RequestConflictError,
    StaleVoucherError,
    UnknownRequestError,
)
from runtime.journal import AcceptedAuthorization, AcceptedVoucher, Answer, Journal
from runtime.protocol import FailureReason
from staking import Domain, Receipt, TransferWithAuthorization, Voucher, recover, sign

PRICE = 10**16
AGENT = Account.from_key(b"\x0a" * 32).address
PAYEE = Account.from_key(b"\x01" * 32).address
RECEIPTS = Domain("ReceiptRegistry", "1", 31337, "0x" + "33" * 20)
SIGNATURE = b"\x11" * 64 + b"\x1b"
PROJECT = (
    Path(__file__).resolve().parents[2]
)  # the journal stores payment signatures as they are; the verifier checks them


@pytest.fixture
def signer() -> LocalAccount:
    account: LocalAccount = Account.create()
    return account


@pytest.fixture
async def journal(tmp_path: Path) -> AsyncIterator[Journal]:
    async with Journal(tmp_path / "journal.sqlite", agent=AGENT) as opened:
        yield opened


def rid() -> bytes:
    return secrets.token_bytes(32)


def authorization(payer: str, value: int = PRICE, nonce: bytes | None = None) -> TransferWithAuthorization:
    return TransferWithAuthorization(payer, PAYEE, value, 0, 2**40, nonce or secrets.token_bytes(32))


def answer(text: str = "hello") -> Answer:
    return Answer(
        output_hash=b"\x02" * 32,
        model_id=b"\x03" * 32,
        engine_hash=b"\x04" * 32,
        attribution_hash=b"\x05" * 32,
        body=text.encode(),
        record=b'{"record":true}',
    )


async def pay_exact(journal: Journal, request_id: bytes, payer: str, *, balance: int = 10 * PRICE) -> None:
    await journal.accept_authorization(request_id, b"h" * 32, authorization(payer), SIGNATURE, balance=balance)


async def pay_voucher(
    journal: Journal, request_id: bytes, channel: bytes, amount: int, *, claimed: int = 0
) -> AcceptedVoucher | AcceptedAuthorization:
    return await journal.accept_voucher(
        request_id, b"h" * 32, Voucher(channel, amount), SIGNATURE, payer=PAYEE, price=PRICE, claimed=claimed
    )


async def test_an_accepted_payment_is_there_after_reopening(tmp_path: Path) -> None:
    path, request_id, payer = tmp_path / "journal.sqlite", rid(), Account.create().address
    async with Journal(path, agent=AGENT) as journal:
        accepted = await journal.accept_authorization(
            request_id, b"h" * 32, authorization(payer), SIGNATURE, balance=PRICE
        )
    async with Journal(path, agent=AGENT) as reopened:
        entry = await reopened.lookup(request_id)
        assert entry is not None
        assert (entry.payment, entry.answer) == (accepted, None)
        assert await reopened.pending_authorizations() == (accepted,)
        assert await reopened.lookup(rid()) is None


async def test_a_request_id_keeps_its_first_payment(journal: Journal) -> None:
    request_id, payer = rid(), Account.create().address
    first = await journal.accept_authorization(request_id, b"h" * 32, authorization(payer), SIGNATURE, balance=PRICE)
    again = await journal.accept_authorization(request_id, b"h" * 32, authorization(payer), SIGNATURE, balance=PRICE)
    channel = secrets.token_bytes(32)
    as_voucher = await pay_voucher(journal, request_id, channel, PRICE)
    assert first == again == as_voucher
    assert len(await journal.pending_authorizations()) == 1
    assert await journal.claimable_vouchers() == ()  # the voucher was never charged
    with pytest.raises(RequestConflictError):
        await journal.accept_authorization(request_id, b"x" * 32, authorization(payer), SIGNATURE, balance=PRICE)


async def test_an_authorization_nonce_pays_for_one_request(journal: Journal) -> None:
    signed = authorization(Account.create().address)
    await journal.accept_authorization(rid(), b"h" * 32, signed, SIGNATURE, balance=PRICE)
    with pytest.raises(ReplayedPaymentError) as caught:
        await journal.accept_authorization(rid(), b"h" * 32, signed, SIGNATURE, balance=PRICE)
    assert caught.value.reason is FailureReason.REPLAYED


async def test_unsettled_authorizations_count_against_the_balance(journal: Journal) -> None:
    payer = Account.create().address
    first, second = rid(), rid()
    await pay_exact(journal, first, payer, balance=2 * PRICE)
    await pay_exact(journal, second, payer, balance=2 * PRICE)
    with pytest.raises(InsufficientFundsError) as caught:
        await pay_exact(journal, rid(), payer, balance=2 * PRICE)
    assert (caught.value.reason, caught.value.available, caught.value.required) == (
        FailureReason.INSUFFICIENT_FUNDS,
        0,
        PRICE,
    )
    pending = {payment.request_id: payment for payment in await journal.pending_authorizations()}
    await journal.mark_settlement_failed(pending[first], "ERC3009AuthorizationUsedOrCanceled")
    third = rid()
    await pay_exact(journal, third, payer, balance=2 * PRICE)  # a failed one no longer counts
    await journal.mark_settled(pending[second], "0x" + "ab" * 32)
    await journal.mark_settled(pending[second], "0x" + "ab" * 32)  # again: no change
    assert [payment.request_id for payment in await journal.pending_authorizations()] == [third]


async def test_vouchers_must_raise_the_channel_by_exactly_the_price(journal: Journal) -> None:
    channel = secrets.token_bytes(32)
    await pay_voucher(journal, rid(), channel, PRICE)
    await pay_voucher(journal, rid(), channel, 2 * PRICE)
    with pytest.raises(ReplayedPaymentError) as replayed:
        await pay_voucher(journal, rid(), channel, 2 * PRICE)
    assert replayed.value.details == {"expected": str(3 * PRICE)}
    with pytest.raises(StaleVoucherError) as stale:
        await pay_voucher(journal, rid(), channel, PRICE + 1)
    assert (stale.value.reason, stale.value.expected) == (FailureReason.STALE_VOUCHER, 3 * PRICE)
    with pytest.raises(PaymentAmountError) as short:
        await pay_voucher(journal, rid(), channel, 3 * PRICE - 1)
    assert short.value.reason is FailureReason.INSUFFICIENT_AMOUNT
    with pytest.raises(PaymentAmountError) as ahead:
        await pay_voucher(journal, rid(), channel, 4 * PRICE)
    assert ahead.value.reason is FailureReason.AMOUNT_MISMATCH
    assert ahead.value.details == {"expected": str(3 * PRICE), "actual": str(4 * PRICE)}
    (claimable,) = await journal.claimable_vouchers()
    assert claimable.voucher == Voucher(channel, 2 * PRICE)


async def test_a_channel_claimed_beyond_the_journal_starts_from_its_claim(journal: Journal) -> None:
    channel = secrets.token_bytes(32)
    with pytest.raises(StaleVoucherError):
        await pay_voucher(journal, rid(), channel, PRICE, claimed=5 * PRICE)
    request_id = rid()
    accepted = await pay_voucher(journal, request_id, channel, 6 * PRICE, claimed=5 * PRICE)
    assert accepted.amount == PRICE
    assert await journal.release(request_id) is True
    with pytest.raises(StaleVoucherError) as stale:  # the journal remembers the claim from now on
        await pay_voucher(journal, rid(), channel, PRICE, claimed=0)
    assert stale.value.expected == 6 * PRICE


async def test_claimed_vouchers_are_no_longer_claimable(journal: Journal) -> None:
    first, second = secrets.token_bytes(32), secrets.token_bytes(32)
    for amount in (PRICE, 2 * PRICE):
        await pay_voucher(journal, rid(), first, amount)
    await pay_voucher(journal, rid(), second, PRICE)
    claimable = await journal.claimable_vouchers()
    assert sorted(v.voucher.cumulative_amount for v in claimable) == [PRICE, 2 * PRICE]
    for voucher in claimable:
        await journal.mark_claimed(voucher)
    assert await journal.claimable_vouchers() == ()
    await pay_voucher(journal, rid(), first, 3 * PRICE)
    (newest,) = await journal.claimable_vouchers()
    await journal.mark_claimed(claimable[0] if claimable[0].voucher.channel_id == first else claimable[1])
    assert await journal.claimable_vouchers() == (newest,)  # an older claim does not lower the record


async def test_receipts_are_signed_once_in_a_gapless_sequence(journal: Journal, signer: LocalAccount) -> None:
    calls: list[Receipt] = []

    def signing(receipt: Receipt) -> bytes:
        calls.append(receipt)
        return sign(signer, RECEIPTS, receipt)

    payer = Account.create().address
    requests = [rid() for _ in range(3)]
    for request_id in requests:
        await pay_exact(journal, request_id, payer)
    entries = [await journal.record_answer(request_id, answer(), signing) for request_id in requests]
    again = await journal.record_answer(requests[1], answer("a different output"), signing)
    assert again == entries[1]
    assert len(calls) == 3  # never a second signature for one request: that would be equivocation
    receipts = await journal.receipts(1)
    assert [r.receipt.seq for r in receipts] == [0, 1, 2]
    assert [r.receipt.request_id for r in receipts] == requests
    first = receipts[0]
    assert (first.receipt.agent, first.receipt.payer, first.receipt.price, first.receipt.epoch) == (
        AGENT,
        payer,
        PRICE,
        1,
    )
    assert first.receipt.request_hash == b"h" * 32
    assert recover(RECEIPTS, first.receipt, first.signature) == signer.address
    entry = await journal.lookup(requests[2])
    assert entry is not None
    assert entry.answer is not None
    assert (entry.answer.body, entry.answer.record) == (b"hello", b'{"record":true}')


async def test_a_failed_signature_records_nothing_and_leaves_no_gap(journal: Journal, signer: LocalAccount) -> None:
    def broken(receipt: Receipt) -> bytes:
        raise RuntimeError("signer unavailable")

    payer = Account.create().address
    first, second = rid(), rid()
    await pay_exact(journal, first, payer)
    await pay_exact(journal, second, payer)
    with pytest.raises(RuntimeError, match="signer unavailable"):
        await journal.record_answer(first, answer(), broken)
    entry = await journal.lookup(first)
    assert entry is not None
    assert entry.answer is None
    signing = functools.partial(sign, signer, RECEIPTS)
    await journal.record_answer(second, answer(), signing)
    await journal.record_answer(first, answer(), signing)
    assert [r.receipt.seq for r in await journal.receipts(1)] == [0, 1]
    with pytest.raises(UnknownRequestError):
        await journal.record_answer(rid(), answer(), signing)


async def test_closing_an_epoch_starts_the_next_at_seq_zero(journal: Journal, signer: LocalAccount) -> None:
    signing = functools.partial(sign, signer, RECEIPTS)
    payer = Account.create().address
    assert await journal.current_epoch() == 1
    for _ in range(2):
        request_id = rid()
        await pay_exact(journal, request_id, payer)
        await journal.record_answer(request_id, answer(), signing)
    assert await journal.close_epoch() == 1
    assert await journal.current_epoch() == 2
    request_id = rid()
    await pay_exact(journal, request_id, payer)
    entry = await journal.record_answer(request_id, answer(), signing)
    assert entry.answer is not None
    assert (entry.answer.receipt.receipt.epoch, entry.answer.receipt.receipt.seq) == (2, 0)
    assert len(await journal.receipts(1)) == 2
    assert await journal.receipts(3) == ()


async def test_release_gives_back_only_what_nothing_depends_on(journal: Journal, signer: LocalAccount) -> None:
    payer = Account.create().address
    exact = rid()
    signed = authorization(payer)
    await journal.accept_authorization(exact, b"h" * 32, signed, SIGNATURE, balance=PRICE)
    assert await journal.release(exact) is True
    assert await journal.lookup(exact) is None
    await journal.accept_authorization(rid(), b"h" * 32, signed, SIGNATURE, balance=PRICE)  # usable again

    channel = secrets.token_bytes(32)
    older, newer = rid(), rid()
    await pay_voucher(journal, older, channel, PRICE)
    await pay_voucher(journal, newer, channel, 2 * PRICE)
    assert await journal.release(older) is False  # a newer voucher includes it
    assert await journal.release(newer) is True
    (claimable,) = await journal.claimable_vouchers()
    assert claimable.voucher.cumulative_amount == PRICE
    again = rid()
    await pay_voucher(journal, again, channel, 2 * PRICE)  # the same amount pays the next request
    (claimable,) = await journal.claimable_vouchers()
    await journal.mark_claimed(claimable)
    assert await journal.release(again) is False  # claimed on chain: the money has moved

    answered = rid()
    await pay_exact(journal, answered, payer, balance=10 * PRICE)
    await journal.record_answer(answered, answer(), functools.partial(sign, signer, RECEIPTS))
    assert await journal.release(answered) is False
    settled = rid()
    await pay_exact(journal, settled, payer, balance=10 * PRICE)
    (pending,) = [p for p in await journal.pending_authorizations() if p.request_id == settled]
    await journal.mark_settled(pending, "0x" + "cd" * 32)
    assert await journal.release(settled) is False
    with pytest.raises(UnknownRequestError):
        await journal.release(rid())


async def test_settlement_of_an_unknown_payment_is_refused(journal: Journal) -> None:
    ghost = AcceptedAuthorization(rid(), b"h" * 32, authorization(PAYEE), SIGNATURE)
    with pytest.raises(UnknownRequestError):
        await journal.mark_settled(ghost, "0x" + "00" * 32)


async def test_concurrent_vouchers_on_one_channel_charge_once_each(journal: Journal) -> None:
    channel = secrets.token_bytes(32)
    outcomes = await asyncio.gather(
        *(pay_voucher(journal, rid(), channel, PRICE) for _ in range(10)), return_exceptions=True
    )
    accepted = [outcome for outcome in outcomes if isinstance(outcome, AcceptedVoucher)]
    assert len(accepted) == 1
    assert all(isinstance(outcome, ReplayedPaymentError) for outcome in outcomes if outcome not in accepted)


async def test_a_journal_of_another_agent_or_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    async with Journal(path, agent=AGENT):
        pass
    with pytest.raises(JournalError, match="not of"):
        async with Journal(path, agent="0x" + "b2" * 20):
            pass
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA user_version = 99")
    with pytest.raises(JournalError, match="schema version 99"):
        async with Journal(path, agent=AGENT):
            pass
    with sqlite3.connect(path) as connection:
        (mode,) = connection.execute("PRAGMA journal_mode").fetchone()
    assert mode == "wal"


async def test_sqlite_failures_become_journal_errors(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    with pytest.raises(JournalError, match="File exists"):
        async with Journal(tmp_path / "a-file" / "journal.sqlite", agent=AGENT):
            pass
    (tmp_path / "garbage.sqlite").write_bytes(b"this is not a database" * 100)
    with pytest.raises(JournalError, match="not a database"):
        async with Journal(tmp_path / "garbage.sqlite", agent=AGENT):
            pass


async def test_a_journal_creates_its_directory(tmp_path: Path) -> None:
    async with Journal(tmp_path / ".staked" / "journal.sqlite", agent=AGENT) as journal:
        assert await journal.current_epoch() == 1


def test_a_payment_survives_kill_9_right_after_it_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    request_id = rid()
    payer = Account.create().address
    child = textwrap.dedent(
        f"""
        import asyncio, sys, time
        from runtime.journal import Journal
        from staking import TransferWithAuthorization

        async def main():
            journal = Journal({str(path)!r}, agent={AGENT!r})
            authorization = TransferWithAuthorization(
                {payer!r}, {PAYEE!r}, {PRICE}, 0, 2**40, bytes.fromhex({"5e" * 32!r})
            )
            await journal.accept_authorization(
                bytes.fromhex({request_id.hex()!r}), b"h" * 32, authorization, b"s" * 65, balance={PRICE}
            )
            print("accepted", flush=True)
            time.sleep(60)  # killed here, with the journal open

        asyncio.run(main())
        """
    )
    process = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True, cwd=PROJECT)
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "accepted"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)

    async def reopen() -> None:
        async with Journal(path, agent=AGENT) as journal:
            entry = await journal.lookup(request_id)
            assert entry is not None
            assert entry.payment.payer == payer
            assert len(await journal.pending_authorizations()) == 1

    asyncio.run(reopen())
