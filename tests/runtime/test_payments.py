"""PaymentVerifier's logic around the chain, against a fake chain: time windows to the second, the channel copy,
an unreachable node, canonical signatures. The same checks run against anvil in test_payments_chain.py."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address

from runtime.errors import (
    InvalidSignatureError,
    MalformedPaymentError,
    PaymentError,
    PaymentMismatchError,
    PaymentWindowError,
    RequestConflictError,
)
from runtime.journal import AcceptedAuthorization, AcceptedVoucher, Journal
from runtime.payments import PaymentVerifier, channel_payment_payload, exact_payment_payload
from runtime.protocol import (
    ChannelRequirements,
    ExactRequirements,
    FailureReason,
    ResourceInfo,
    encode_header,
)
from staking import (
    ChainUnavailableError,
    Channel,
    ChannelState,
    ConfigError,
    Domain,
    TransferWithAuthorization,
    Voucher,
    recover,
    sign,
)

PRICE = 10**16
NOW = 1_700_000_000
MARGIN = 120
TOKEN = Domain("Open", "1", 31337, "0x" + "1a" * 20)
CHANNELS = Domain("PaymentChannels", "1", 31337, "0x" + "2b" * 20)
SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


@dataclass
class FakeChain:
    """A chain frozen at ``now``, holding what the tests put in it."""

    now: int = NOW
    balances: dict[str, int] = field(default_factory=dict)
    used: set[tuple[str, bytes]] = field(default_factory=set)
    channels: dict[bytes, Channel] = field(default_factory=dict)
    down: bool = False
    channel_reads: int = 0

    def token_domain(self) -> Domain:
        return TOKEN

    def channel_domain(self) -> Domain:
        return CHANNELS

    async def block_time(self) -> int:
        self._answer()
        return self.now

    async def balance_of(self, owner: str) -> int:
        self._answer()
        return self.balances.get(owner, 0)

    async def authorization_used(self, authorizer: str, nonce: bytes) -> bool:
        self._answer()
        return (authorizer, nonce) in self.used

    async def channel(self, channel_id: bytes) -> Channel:
        self._answer()
        self.channel_reads += 1
        return self.channels.get(
            channel_id, Channel(channel_id, "0x" + "00" * 20, "0x" + "00" * 20, ChannelState.NONE, 0, 0, 0)
        )

    def _answer(self) -> None:
        if self.down:
            raise ChainUnavailableError("http://fake", "connection refused")


@pytest.fixture
def chain() -> FakeChain:
    return FakeChain()


@pytest.fixture
def payer(chain: FakeChain) -> LocalAccount:
    account: LocalAccount = Account.create()
    chain.balances[account.address] = 100 * PRICE
    return account


@pytest.fixture
async def journal(tmp_path: Path) -> AsyncIterator[Journal]:
    async with Journal(tmp_path / "journal.sqlite", agent="0x" + "a1" * 20) as opened:
        yield opened


@pytest.fixture
def verifier(chain: FakeChain, journal: Journal) -> PaymentVerifier:
    return PaymentVerifier(
        chain=chain, journal=journal, payee="0x" + "3c" * 20, settlement_margin=MARGIN, channel_ttl=60.0
    )


def exact_header(
    verifier: PaymentVerifier,
    payer: LocalAccount,
    *,
    valid_after: int = NOW - 600,
    valid_before: int = NOW + 600,
) -> str:
    requirements, _ = verifier.requirements(PRICE)
    authorization = TransferWithAuthorization(
        payer.address, verifier.payee, PRICE, valid_after, valid_before, secrets.token_bytes(32)
    )
    return encode_header(exact_payment_payload(requirements, authorization, sign(payer, TOKEN, authorization)))


def open_channel(chain: FakeChain, payer: LocalAccount, payee: str, deposit: int = 10 * PRICE) -> bytes:
    channel_id = secrets.token_bytes(32)
    chain.channels[channel_id] = Channel(channel_id, payer.address, payee, ChannelState.OPEN, deposit, 0, 0)
    return channel_id


def voucher_header(verifier: PaymentVerifier, payer: LocalAccount, channel_id: bytes, amount: int) -> str:
    _, requirements = verifier.requirements(PRICE)
    voucher = Voucher(channel_id, amount)
    return encode_header(channel_payment_payload(requirements, voucher, sign(payer, CHANNELS, voucher)))


async def verify(verifier: PaymentVerifier, header: str, request_id: bytes | None = None) -> object:
    return await verifier.verify(
        header, price=PRICE, request_id=request_id or secrets.token_bytes(32), request_hash=b"h" * 32
    )


@pytest.mark.parametrize(
    ("valid_after", "valid_before", "reason"),
    [
        (NOW - 1, NOW + MARGIN + 1, None),
        (NOW, NOW + 600, FailureReason.NOT_YET_VALID),  # the contract needs block time > validAfter
        (NOW + 60, NOW + 600, FailureReason.NOT_YET_VALID),
        (NOW - 600, NOW + MARGIN, FailureReason.EXPIRED),  # no time left to settle it
        (NOW - 600, NOW - 1, FailureReason.EXPIRED),
    ],
)
async def test_the_validity_window_is_checked_in_block_time_with_a_settlement_margin(
    verifier: PaymentVerifier, payer: LocalAccount, valid_after: int, valid_before: int, reason: FailureReason | None
) -> None:
    header = exact_header(verifier, payer, valid_after=valid_after, valid_before=valid_before)
    if reason is None:
        assert isinstance(await verify(verifier, header), AcceptedAuthorization)
        return
    with pytest.raises(PaymentWindowError) as caught:
        await verify(verifier, header)
    assert caught.value.reason is reason
    assert caught.value.details["now"] == str(NOW)


async def test_signatures_must_be_canonical_as_the_contracts_require(
    verifier: PaymentVerifier, payer: LocalAccount
) -> None:
    requirements, _ = verifier.requirements(PRICE)
    authorization = TransferWithAuthorization(payer.address, verifier.payee, PRICE, 0, NOW + 600, b"\x01" * 32)
    signature = sign(payer, TOKEN, authorization)
    r, s, v = signature[:32], int.from_bytes(signature[32:64]), signature[64]
    twin = r + (SECP256K1_ORDER - s).to_bytes(32) + bytes([55 - v])  # the high-s twin of the same signature
    assert recover(TOKEN, authorization, twin) == payer.address  # eth-account takes it; OpenZeppelin would not
    for bad in (twin, signature[:64] + bytes([v - 27]), b"\x00" * 65, b"\x01" * 32 + b"\x01" * 32 + b"\x1b"):
        header = encode_header(exact_payment_payload(requirements, authorization, bad))
        with pytest.raises(InvalidSignatureError) as caught:
            await verify(verifier, header)
        assert caught.value.reason is FailureReason.INVALID_SIGNATURE
    other = Account.create()
    header = encode_header(exact_payment_payload(requirements, authorization, sign(other, TOKEN, authorization)))
    with pytest.raises(InvalidSignatureError, match=other.address):
        await verify(verifier, header)


async def test_an_open_channel_is_read_once_within_its_ttl(
    chain: FakeChain, verifier: PaymentVerifier, payer: LocalAccount
) -> None:
    channel_id = open_channel(chain, payer, verifier.payee, deposit=2 * PRICE)
    for amount in (PRICE, 2 * PRICE):
        assert isinstance(await verify(verifier, voucher_header(verifier, payer, channel_id, amount)), AcceptedVoucher)
    assert chain.channel_reads == 1
    chain.channels[channel_id] = replace(chain.channels[channel_id], deposit=5 * PRICE)  # a top-up
    await verify(verifier, voucher_header(verifier, payer, channel_id, 3 * PRICE))  # above the copy: read again
    assert chain.channel_reads == 2
    verifier.channel_ttl = 0.0
    chain.channels[channel_id] = replace(chain.channels[channel_id], state=ChannelState.CLOSING)
    with pytest.raises(PaymentError) as closed:
        await verify(verifier, voucher_header(verifier, payer, channel_id, 4 * PRICE))
    assert closed.value.reason is FailureReason.CHANNEL_CLOSED


async def test_an_unreachable_chain_journals_nothing(
    chain: FakeChain, verifier: PaymentVerifier, journal: Journal, payer: LocalAccount
) -> None:
    chain.down = True
    request_id = secrets.token_bytes(32)
    with pytest.raises(ChainUnavailableError):
        await verify(verifier, exact_header(verifier, payer), request_id)
    assert await journal.lookup(request_id) is None
    chain.down = False
    assert isinstance(await verify(verifier, exact_header(verifier, payer), request_id), AcceptedAuthorization)


async def test_a_known_request_id_gets_its_payment_back_whatever_it_sends(
    verifier: PaymentVerifier, payer: LocalAccount
) -> None:
    request_id = secrets.token_bytes(32)
    accepted = await verify(verifier, exact_header(verifier, payer), request_id)
    assert await verify(verifier, "not even base64", request_id) == accepted
    with pytest.raises(RequestConflictError):
        await verifier.verify("", price=PRICE, request_id=request_id, request_hash=b"other".ljust(32, b"\x00"))


async def test_malformed_payloads_are_value_errors_with_a_reason(verifier: PaymentVerifier) -> None:
    with pytest.raises(MalformedPaymentError) as caught:
        await verify(verifier, "e30=")  # {}
    assert caught.value.reason is FailureReason.UNSUPPORTED_VERSION
    assert isinstance(caught.value, ValueError)


async def test_requirements_naming_another_chain_contract_or_payee_are_refused(
    chain: FakeChain, verifier: PaymentVerifier, payer: LocalAccount
) -> None:
    exact, channel = verifier.requirements(PRICE)
    authorization = TransferWithAuthorization(payer.address, verifier.payee, PRICE, 0, NOW + 600, b"\x02" * 32)
    signature = sign(payer, TOKEN, authorization)
    voucher = Voucher(open_channel(chain, payer, verifier.payee), PRICE)
    cases: list[tuple[ExactRequirements | ChannelRequirements, FailureReason]] = [
        (exact.model_copy(update={"network": "eip155:1"}), FailureReason.WRONG_CHAIN),
        (exact.model_copy(update={"asset": "0x" + "99" * 20}), FailureReason.WRONG_CONTRACT),
        (exact.model_copy(update={"pay_to": payer.address}), FailureReason.WRONG_PAYEE),
        (
            channel.model_copy(update={"extra": channel.extra.model_copy(update={"channels": "0x" + "98" * 20})}),
            FailureReason.WRONG_CONTRACT,
        ),
    ]
    for requirements, reason in cases:
        if isinstance(requirements, ExactRequirements):
            header = encode_header(exact_payment_payload(requirements, authorization, signature))
        else:
            header = encode_header(channel_payment_payload(requirements, voucher, sign(payer, CHANNELS, voucher)))
        with pytest.raises(PaymentMismatchError) as caught:
            await verify(verifier, header)
        assert caught.value.reason is reason


def test_what_the_agent_asks_for(verifier: PaymentVerifier) -> None:
    required = verifier.payment_required(ResourceInfo(url="/v1/skills/echo"), PRICE, error="payment required")
    exact, channel = required.accepts
    assert (exact.scheme, exact.network, exact.amount, exact.asset, exact.pay_to) == (
        "exact",
        "eip155:31337",
        PRICE,
        to_checksum_address(TOKEN.verifying_contract),
        verifier.payee,
    )
    assert (exact.extra.name, exact.extra.version, exact.max_timeout_seconds) == ("Open", "1", 600)
    assert (channel.scheme, channel.extra.name) == ("channel", "PaymentChannels")


def test_settling_must_fit_in_the_advertised_timeout(chain: FakeChain, journal: Journal) -> None:
    with pytest.raises(ConfigError, match="must exceed"):
        PaymentVerifier(chain=chain, journal=journal, payee="0x" + "3c" * 20, settlement_margin=600)


async def test_the_payment_response_says_what_was_charged(
    chain: FakeChain, verifier: PaymentVerifier, payer: LocalAccount
) -> None:
    exact = await verifier.verify(
        exact_header(verifier, payer), price=PRICE, request_id=b"\x01" * 32, request_hash=b"h" * 32
    )
    channel_id = open_channel(chain, payer, verifier.payee)
    voucher = await verifier.verify(
        voucher_header(verifier, payer, channel_id, PRICE), price=PRICE, request_id=b"\x02" * 32, request_hash=b"h" * 32
    )
    paid = verifier.settlement(exact)
    assert (paid.success, paid.transaction, paid.payer, paid.amount, paid.extra) == (
        True,
        "",
        payer.address,
        PRICE,
        None,
    )
    by_voucher = verifier.settlement(voucher)
    assert by_voucher.extra is not None
    assert (by_voucher.extra.channel_id, by_voucher.extra.cumulative_amount) == (channel_id, PRICE)
