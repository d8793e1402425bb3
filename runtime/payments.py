"""Checking x402 payments before an agent answers, against the chain and the journal.

:class:`PaymentVerifier` turns a ``PAYMENT-SIGNATURE`` header into an accepted, journaled payment or a typed
:class:`~runtime.errors.PaymentError`. The checks are those of x402's ``exact`` EVM scheme, and their counterpart
for channel vouchers; each is there because the contract would otherwise refuse to pay the agent later:

``exact`` (EIP-3009 ``transferWithAuthorization``, settled on chain by a background job)
    the chain, the token and the payee are the agent's; ``value`` is exactly the price; the signature is the
    payer's, canonical as OpenZeppelin requires; ``validAfter`` has passed and ``validBefore`` leaves the
    settlement job ``settlement_margin`` seconds, both in block time; the nonce is unused on chain and was not
    accepted before; the payer's balance covers it together with its authorizations not settled yet.

``channel`` (cumulative vouchers on PaymentChannels, claimed in batches)
    the chain and the contracts are the agent's; the channel exists, is open and pays the agent; the voucher is
    signed by the channel's payer; its cumulative amount stays within the deposit and exceeds the newest voucher
    accepted on the channel by exactly the price.

Whatever depends on earlier payments is checked by the journal in the transaction that records the payment. The
chain is read through :class:`PaymentChain`, a small interface that :class:`StakingPaymentChain` implements over
:class:`~staking.StakingClient`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable
from typing import Final, Protocol, TypeVar

import aiohttp
from eth_keys.exceptions import BadSignature
from eth_utils.address import to_checksum_address
from web3.exceptions import Web3RPCError

from staking.client import StakingClient
from staking.eip712 import Domain, TransferWithAuthorization, TypedMessage, Voucher, recover
from staking.errors import ChainUnavailableError, ConfigError
from staking.types import Channel, ChannelState

from .errors import (
    ChannelStateError,
    InsufficientFundsError,
    InvalidSignatureError,
    MalformedPaymentError,
    PaymentAmountError,
    PaymentError,
    PaymentMismatchError,
    PaymentWindowError,
    ReplayedPaymentError,
    RequestConflictError,
)
from .journal import AcceptedPayment, AcceptedVoucher, Journal
from .protocol import (
    ChannelExtra,
    ChannelPaymentPayload,
    ChannelRequirements,
    Eip3009Authorization,
    Eip3009Payload,
    ExactExtra,
    ExactPaymentPayload,
    ExactRequirements,
    FailureReason,
    HeaderError,
    PaymentRequired,
    ResourceInfo,
    SettlementExtra,
    SettlementResponse,
    VoucherPayload,
    decode_payment_payload,
)

__all__ = [
    "PaymentChain",
    "PaymentVerifier",
    "StakingPaymentChain",
    "channel_payment_payload",
    "exact_payment_payload",
]

_log = logging.getLogger(__name__)
_T = TypeVar("_T")

#: Seconds an authorization must remain valid once accepted: the settlement job has this long to land it.
DEFAULT_SETTLEMENT_MARGIN: Final = 120
#: ``maxTimeoutSeconds`` advertised: stock x402 clients make authorizations valid this long from their clock.
DEFAULT_MAX_TIMEOUT_SECONDS: Final = 600
#: Seconds an open channel read from chain is reused (see :class:`PaymentVerifier`).
DEFAULT_CHANNEL_TTL: Final = 2.0
# secp256k1's group order halved: OpenZeppelin's ECDSA refuses a larger `s`, the malleable twin of a signature.
_HALF_ORDER: Final = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0


class PaymentChain(Protocol):
    """What payment checks read from the chain."""

    def token_domain(self) -> Domain:
        """The token's EIP-712 domain (EIP-3009 authorizations); its contract is the payment asset."""
        ...

    def channel_domain(self) -> Domain:
        """The channels contract's EIP-712 domain (vouchers)."""
        ...

    async def block_time(self) -> int:
        """The latest block's timestamp."""
        ...

    async def balance_of(self, owner: str) -> int:
        """``owner``'s token balance."""
        ...

    async def authorization_used(self, authorizer: str, nonce: bytes) -> bool:
        """Whether ``authorizer``'s EIP-3009 ``nonce`` was used or cancelled."""
        ...

    async def channel(self, channel_id: bytes) -> Channel:
        """The channel's state (``ChannelState.NONE`` when it does not exist)."""
        ...


class StakingPaymentChain:
    """:class:`PaymentChain` over a :class:`~staking.StakingClient` (reads only: it may be read-only).

    Example:
        >>> chain = StakingPaymentChain(await StakingClient.from_settings(settings))   # doctest: +SKIP

    Raises (from every read):
        ChainUnavailableError: the node does not answer.
    """

    def __init__(self, client: StakingClient) -> None:
        self._client = client
        self._url = str(getattr(client.w3.provider, "endpoint_uri", "the chain node"))

    def __repr__(self) -> str:
        return f"<StakingPaymentChain {self._url}>"

    def token_domain(self) -> Domain:
        return self._client.token_domain()

    def channel_domain(self) -> Domain:
        return self._client.channel_domain()

    async def block_time(self) -> int:
        block = await self._read(self._client.w3.eth.get_block("latest"))
        return int(block["timestamp"])

    async def balance_of(self, owner: str) -> int:
        return await self._read(self._client.balance_of(owner))

    async def authorization_used(self, authorizer: str, nonce: bytes) -> bool:
        used = await self._read(self._client.token.functions.authorizationState(authorizer, nonce).call())
        return bool(used)

    async def channel(self, channel_id: bytes) -> Channel:
        return await self._read(self._client.channel(channel_id))

    async def _read(self, call: Awaitable[_T]) -> _T:
        # web3.py already retried what it could: what reaches here is an outage or a node refusing to answer, which
        # the host answers with a 503, never a 402 that would send the client away to re-sign.
        try:
            return await call
        except (aiohttp.ClientError, OSError, TimeoutError, Web3RPCError) as exc:
            raise ChainUnavailableError(self._url, str(exc) or type(exc).__name__) from exc


class PaymentVerifier:
    """Checks the x402 payments of one agent and journals the ones it accepts.

    Example:
        >>> chain = StakingPaymentChain(client)                                               # doctest: +SKIP
        >>> verifier = PaymentVerifier(chain=chain, journal=journal, payee=client.address)    # doctest: +SKIP
        >>> verifier.payment_required(ResourceInfo(url="/v1/skills/echo"), price)             # doctest: +SKIP
        >>> payment = await verifier.verify(header, price=price, request_id=rid, request_hash=h)  # doctest: +SKIP

    Args:
        chain: the chain the agent is paid on.
        journal: where accepted payments are recorded.
        payee: the account payments must go to: the ``to`` of authorizations and the receiver of channels, which
            settles and claims them.
        settlement_margin: seconds an authorization must stay valid after it is accepted, so the settlement job
            lands it in time; that job must run more often than this.
        max_timeout_seconds: the ``maxTimeoutSeconds`` advertised, how long x402 clients make authorizations valid;
            it must exceed ``settlement_margin``.
        channel_ttl: seconds an open channel read from chain is reused. A stale copy is safe: a channel's payer and
            receiver never change, its deposit only grows (a voucher above the copy's deposit re-reads it), and a
            payer leaving an open channel must wait the contract's withdraw delay (at least an hour) during which
            the agent can still claim.

    Raises:
        ConfigError: ``max_timeout_seconds`` does not exceed ``settlement_margin``.
    """

    def __init__(
        self,
        *,
        chain: PaymentChain,
        journal: Journal,
        payee: str,
        settlement_margin: int = DEFAULT_SETTLEMENT_MARGIN,
        max_timeout_seconds: int = DEFAULT_MAX_TIMEOUT_SECONDS,
        channel_ttl: float = DEFAULT_CHANNEL_TTL,
    ) -> None:
        if max_timeout_seconds <= settlement_margin:
            raise ConfigError(
                f"max_timeout_seconds ({max_timeout_seconds}) must exceed settlement_margin ({settlement_margin}): "
                "authorizations valid that long could never be accepted"
            )
        self.payee = to_checksum_address(payee)
        self.settlement_margin = settlement_margin
        self.max_timeout_seconds = max_timeout_seconds
        self.channel_ttl = channel_ttl
        self._chain = chain
        self._journal = journal
        self._token = _checksummed(chain.token_domain())
        self._channels = _checksummed(chain.channel_domain())
        self.network = f"eip155:{self._token.chain_id}"
        self._open_channels: dict[bytes, tuple[float, Channel]] = {}

    def __repr__(self) -> str:
        return f"<PaymentVerifier payee={self.payee} network={self.network}>"

    # -- what the agent asks for -------------------------------------------------------------------------------

    def requirements(self, price: int) -> tuple[ExactRequirements, ChannelRequirements]:
        """The two ways to pay ``price`` wei, ``exact`` first (the one stock x402 clients take)."""
        exact = ExactRequirements(
            network=self.network,
            amount=price,
            asset=self._token.verifying_contract,
            pay_to=self.payee,
            max_timeout_seconds=self.max_timeout_seconds,
            extra=ExactExtra(name=self._token.name, version=self._token.version),
        )
        channel = ChannelRequirements(
            network=self.network,
            amount=price,
            asset=self._token.verifying_contract,
            pay_to=self.payee,
            max_timeout_seconds=self.max_timeout_seconds,
            extra=ChannelExtra(
                channels=self._channels.verifying_contract, name=self._channels.name, version=self._channels.version
            ),
        )
        return exact, channel

    def payment_required(self, resource: ResourceInfo, price: int, error: str | None = None) -> PaymentRequired:
        """The ``PAYMENT-REQUIRED`` document of a ``402`` for ``resource`` at ``price`` wei."""
        return PaymentRequired(error=error, resource=resource, accepts=self.requirements(price))

    def settlement(self, payment: AcceptedPayment) -> SettlementResponse:
        """The ``PAYMENT-RESPONSE`` document of a paid answer (settlement on chain comes later, in a batch)."""
        extra = None
        if isinstance(payment, AcceptedVoucher):
            extra = SettlementExtra(
                channel_id=payment.voucher.channel_id, cumulative_amount=payment.voucher.cumulative_amount
            )
        return SettlementResponse(
            success=True, payer=payment.payer, network=self.network, amount=payment.amount, extra=extra
        )

    # -- checking a payment ------------------------------------------------------------------------------------

    def payer_of(self, header: str) -> tuple[str, bytes]:
        """Who signed the payment in the ``PAYMENT-SIGNATURE`` value ``header``, and the signature.

        Only the signature is checked here, not the payment: it names who sends the request, so that request ids
        can be scoped to their payer before the journal is consulted.

        Raises:
            MalformedPaymentError: the header is not a payment payload.
            InvalidSignatureError: the signature is malformed, or (``exact``) not the ``from`` account's.
        """
        payload = _decode(header)
        if isinstance(payload, ExactPaymentPayload):
            signed = payload.payload.authorization
            authorization = TransferWithAuthorization(
                signed.from_, signed.to, signed.value, signed.valid_after, signed.valid_before, signed.nonce
            )
            _require_signer(self._token, authorization, payload.payload.signature, signed.from_)
            return signed.from_, payload.payload.signature
        voucher = Voucher(payload.payload.channel_id, payload.payload.cumulative_amount)
        return _signer(self._channels, voucher, payload.payload.signature), payload.payload.signature

    async def verify(self, header: str, *, price: int, request_id: bytes, request_hash: bytes) -> AcceptedPayment:
        """Checks the ``PAYMENT-SIGNATURE`` value ``header`` as payment of ``price`` wei and journals it.

        A request id the journal knows gets its journaled payment back, whatever ``header`` holds: a retried
        request is never charged twice, even when its payment has been settled meanwhile.

        Args:
            header: the header's value.
            price: what the request costs, in wei.
            request_id: the request's id (its idempotency key).
            request_hash: the hash of the request, which a reused request id must match.

        Raises:
            PaymentError: the payment is refused; its ``reason`` and ``details`` tell the client why.
            RequestConflictError: ``request_id`` was used for another request.
            ChainUnavailableError: the chain could not be read; nothing was journaled.
            JournalError: the journal failed; nothing was journaled.
        """
        entry = await self._journal.lookup(request_id)
        if entry is not None:
            if entry.payment.request_hash != request_hash:
                raise RequestConflictError(request_id)
            return entry.payment
        try:
            payment = await self._accept(header, price, request_id, request_hash)
        except PaymentError as exc:
            _log.info("refused a payment for request 0x%s: %s: %s", request_id.hex(), exc.reason, exc)
            raise
        _log.debug(
            "accepted a %s payment of %d wei from %s for request 0x%s",
            payment.scheme,
            payment.amount,
            payment.payer,
            request_id.hex(),
        )
        return payment

    async def _accept(self, header: str, price: int, request_id: bytes, request_hash: bytes) -> AcceptedPayment:
        payload = _decode(header)
        if payload.accepted.network != self.network:
            raise PaymentMismatchError(
                FailureReason.WRONG_CHAIN, "accepted.network", self.network, payload.accepted.network
            )
        if payload.accepted.asset != self._token.verifying_contract:
            raise PaymentMismatchError(
                FailureReason.WRONG_CONTRACT, "accepted.asset", self._token.verifying_contract, payload.accepted.asset
            )
        if payload.accepted.pay_to != self.payee:
            raise PaymentMismatchError(FailureReason.WRONG_PAYEE, "accepted.payTo", self.payee, payload.accepted.pay_to)
        if isinstance(payload, ExactPaymentPayload):
            return await self._accept_exact(payload.payload, price, request_id, request_hash)
        channels = payload.accepted.extra.channels
        if channels != self._channels.verifying_contract:
            raise PaymentMismatchError(
                FailureReason.WRONG_CONTRACT, "accepted.extra.channels", self._channels.verifying_contract, channels
            )
        return await self._accept_voucher(payload.payload, price, request_id, request_hash)

    async def _accept_exact(
        self, payload: Eip3009Payload, price: int, request_id: bytes, request_hash: bytes
    ) -> AcceptedPayment:
        signed = payload.authorization
        if signed.to != self.payee:
            raise PaymentMismatchError(FailureReason.WRONG_PAYEE, "authorization.to", self.payee, signed.to)
        if signed.value != price:
            raise PaymentAmountError(price, signed.value)
        authorization = TransferWithAuthorization(
            signed.from_, signed.to, signed.value, signed.valid_after, signed.valid_before, signed.nonce
        )
        _require_signer(self._token, authorization, payload.signature, signed.from_)
        now, used, balance = await asyncio.gather(
            self._chain.block_time(),
            self._chain.authorization_used(signed.from_, signed.nonce),
            self._chain.balance_of(signed.from_),
        )
        # The contract takes it while validAfter < block time < validBefore, and it lands some time from now.
        if not signed.valid_after < now or signed.valid_before <= now + self.settlement_margin:
            raise PaymentWindowError(signed.valid_after, signed.valid_before, now, self.settlement_margin)
        if used:
            raise ReplayedPaymentError(f"authorization nonce 0x{signed.nonce.hex()} of {signed.from_}")
        return await self._journal.accept_authorization(
            request_id, request_hash, authorization, payload.signature, balance=balance
        )

    async def _accept_voucher(
        self, payload: VoucherPayload, price: int, request_id: bytes, request_hash: bytes
    ) -> AcceptedPayment:
        channel = await self._channel(payload.channel_id, payload.cumulative_amount)
        if channel.state is not ChannelState.OPEN:
            raise ChannelStateError(payload.channel_id, channel.state)
        if channel.receiver != self.payee:
            raise PaymentMismatchError(FailureReason.WRONG_PAYEE, "channel.receiver", self.payee, channel.receiver)
        voucher = Voucher(payload.channel_id, payload.cumulative_amount)
        _require_signer(self._channels, voucher, payload.signature, channel.payer)
        if voucher.cumulative_amount > channel.deposit:
            raise InsufficientFundsError(
                FailureReason.EXCEEDS_DEPOSIT, available=channel.deposit, required=voucher.cumulative_amount
            )
        return await self._journal.accept_voucher(
            request_id,
            request_hash,
            voucher,
            payload.signature,
            payer=channel.payer,
            price=price,
            claimed=channel.claimed,
        )

    async def _channel(self, channel_id: bytes, cumulative_amount: int) -> Channel:
        """The channel, from the copy read within ``channel_ttl`` when it covers ``cumulative_amount``."""
        now = asyncio.get_running_loop().time()
        cached = self._open_channels.get(channel_id)
        if cached is not None and now - cached[0] < self.channel_ttl and cumulative_amount <= cached[1].deposit:
            return cached[1]
        channel = await self._chain.channel(channel_id)
        # Only open channels are kept: every other state is refused, and may change to open (NONE) or never again.
        if channel.state is ChannelState.OPEN:
            self._open_channels[channel_id] = (now, channel)
        else:
            self._open_channels.pop(channel_id, None)
        return channel


def exact_payment_payload(
    requirements: ExactRequirements,
    authorization: TransferWithAuthorization,
    signature: bytes,
    resource: ResourceInfo | None = None,
) -> ExactPaymentPayload:
    """The ``PAYMENT-SIGNATURE`` document paying ``requirements`` with a signed EIP-3009 authorization."""
    signed = Eip3009Authorization(
        from_=authorization.from_,
        to=authorization.to,
        value=authorization.value,
        valid_after=authorization.valid_after,
        valid_before=authorization.valid_before,
        nonce=authorization.nonce,
    )
    return ExactPaymentPayload(
        resource=resource, accepted=requirements, payload=Eip3009Payload(signature=signature, authorization=signed)
    )


def channel_payment_payload(
    requirements: ChannelRequirements, voucher: Voucher, signature: bytes, resource: ResourceInfo | None = None
) -> ChannelPaymentPayload:
    """The ``PAYMENT-SIGNATURE`` document paying ``requirements`` with a signed channel voucher."""
    return ChannelPaymentPayload(
        resource=resource,
        accepted=requirements,
        payload=VoucherPayload(
            channel_id=voucher.channel_id, cumulative_amount=voucher.cumulative_amount, signature=signature
        ),
    )


def _checksummed(domain: Domain) -> Domain:
    """``domain`` with its contract address in EIP-55 form, as the wire models normalise addresses."""
    return dataclasses.replace(domain, verifying_contract=to_checksum_address(domain.verifying_contract))


def _decode(header: str) -> ExactPaymentPayload | ChannelPaymentPayload:
    try:
        return decode_payment_payload(header)
    except HeaderError as exc:
        raise MalformedPaymentError(exc.reason, str(exc)) from exc


def _signer(domain: Domain, message: TypedMessage, signature: bytes, expected: str = "the payer") -> str:
    """The account whose ``signature`` (65 bytes) is over ``message``, in the form the contracts take.

    OpenZeppelin's ECDSA refuses ``v`` other than 27 or 28 and a high ``s``; eth-account recovers from both, so an
    agent checking with it alone would accept payments it can never collect.

    Raises:
        InvalidSignatureError: the signature is not canonical or yields no signer (``expected`` names who should
            have signed, for the message).
    """
    r, s, v = int.from_bytes(signature[:32]), int.from_bytes(signature[32:64]), signature[64]
    if v not in (27, 28) or r == 0 or not 0 < s <= _HALF_ORDER:
        raise InvalidSignatureError(expected, "not a canonical ECDSA signature (v 27 or 28, low s)")
    try:
        return recover(domain, message, signature)
    except (BadSignature, ValueError) as exc:
        raise InvalidSignatureError(expected, "no signer can be recovered from it") from exc


def _require_signer(domain: Domain, message: TypedMessage, signature: bytes, expected: str) -> None:
    """Raises :class:`InvalidSignatureError` unless ``signature`` is ``expected``'s over ``message``."""
    signer = _signer(domain, message, signature, expected)
    if signer != expected:
        raise InvalidSignatureError(expected, f"it was signed by {signer}")
