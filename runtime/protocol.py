"""The payment wire format of an agent's HTTP API: x402 version 2, schemes ``exact`` and ``channel``.

This module is what a paying client needs to speak to an agent, and nothing more: it imports pydantic and a
keccak implementation (for EIP-55 addresses), never web3, aiohttp or the staking client, so a third-party client
or a documentation generator can use it with a small install.

The flow (x402 v2 HTTP transport):

1. An unpaid call is answered ``402`` with a ``PAYMENT-REQUIRED`` header: a base64 :class:`PaymentRequired` whose
   ``accepts`` lists one :class:`ExactRequirements` and one :class:`ChannelRequirements`.
2. The client retries with a ``PAYMENT-SIGNATURE`` header: a base64 :data:`PaymentPayload` echoing the requirements
   it chose in ``accepted`` and carrying the scheme's signed ``payload``.
3. A paid answer carries a ``PAYMENT-RESPONSE`` header: a base64 :class:`SettlementResponse`. A refused payment is
   answered ``402`` again, and :class:`FailureReason` names what the client must change.

``exact`` is x402's EVM scheme as a stock x402 client sends it: an EIP-3009 ``transferWithAuthorization`` signed
under the token's EIP-712 domain (``extra.name`` / ``extra.version``), which the agent settles on chain later.
``channel`` pays from a PaymentChannels deposit: ``payload`` is the payer's EIP-712 ``Voucher(channelId,
cumulativeAmount)`` under the channels contract's domain (``extra.channels``, ``extra.name``, ``extra.version``),
and each request raises the cumulative amount by exactly the price.

Amounts are token base units (wei) and travel as decimal strings, byte strings as ``0x`` hex, as in x402.

Example:
    >>> required = decode_payment_required(header_value)                            # doctest: +SKIP
    >>> [requirements.scheme for requirements in required.accepts]                   # doctest: +SKIP
    ['exact', 'channel']
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any, Final, Literal, TypeVar

from eth_hash.auto import keccak
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PlainSerializer,
    Tag,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
)
from pydantic.alias_generators import to_camel

__all__ = [
    "MAX_HEADER_BYTES",
    "PAYMENT_REQUIRED_HEADER",
    "PAYMENT_RESPONSE_HEADER",
    "PAYMENT_SIGNATURE_HEADER",
    "X402_VERSION",
    "ChannelExtra",
    "ChannelPaymentPayload",
    "ChannelRequirements",
    "Eip3009Authorization",
    "Eip3009Payload",
    "ExactExtra",
    "ExactPaymentPayload",
    "ExactRequirements",
    "FailureReason",
    "HeaderError",
    "PaymentPayload",
    "PaymentRequired",
    "PaymentRequirements",
    "ResourceInfo",
    "Scheme",
    "SettlementExtra",
    "SettlementResponse",
    "VoucherPayload",
    "decode_payment_payload",
    "decode_payment_required",
    "decode_settlement_response",
    "encode_header",
]

X402_VERSION: Final = 2
PAYMENT_REQUIRED_HEADER: Final = "PAYMENT-REQUIRED"
PAYMENT_SIGNATURE_HEADER: Final = "PAYMENT-SIGNATURE"
PAYMENT_RESPONSE_HEADER: Final = "PAYMENT-RESPONSE"
#: The longest header value accepted or produced. Servers commonly cap a header line near 8 KiB (aiohttp at 8190
#: bytes); a payment payload is about 1 KiB, so anything near the cap is not a payment.
MAX_HEADER_BYTES: Final = 8192

_UINT256_MAX = 2**256 - 1
_HEX = re.compile(r"0x([0-9a-fA-F]*)")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


class Scheme(StrEnum):
    """The payment schemes an agent accepts."""

    EXACT = "exact"
    CHANNEL = "channel"


class FailureReason(StrEnum):
    """Why a payment was refused: the machine-readable code a client acts on.

    x402 leaves codes to schemes; these are ours, each naming one thing the client can fix.
    """

    #: the header is not base64 JSON of a payment payload: fix the client
    MALFORMED = "malformed"
    #: not x402 version 2: speak version 2
    UNSUPPORTED_VERSION = "unsupported_version"
    #: a scheme this agent does not accept: choose one of ``accepts``
    UNSUPPORTED_SCHEME = "unsupported_scheme"
    #: signed for another network (CAIP-2 ``eip155:<chain id>``): pay on the agent's chain
    WRONG_CHAIN = "wrong_chain"
    #: another token or channels contract than the requirements name: use theirs
    WRONG_CONTRACT = "wrong_contract"
    #: pays someone other than the agent (authorization ``to``, or a channel's receiver)
    WRONG_PAYEE = "wrong_payee"
    #: pays less than the price (for a voucher: raises the cumulative amount by less than the price)
    INSUFFICIENT_AMOUNT = "insufficient_amount"
    #: pays more than the price, or a voucher skips ahead: pay exactly the price
    AMOUNT_MISMATCH = "amount_mismatch"
    #: the authorization's ``validAfter`` has not passed yet on chain
    NOT_YET_VALID = "not_yet_valid"
    #: the authorization's ``validBefore`` is past, or too near to settle it in time
    EXPIRED = "expired"
    #: the signature is malformed or not the payer's
    INVALID_SIGNATURE = "invalid_signature"
    #: this authorization nonce or voucher was already used: sign a new one
    REPLAYED = "replayed"
    #: the voucher's cumulative amount is below what the channel has already paid: resynchronise
    STALE_VOUCHER = "stale_voucher"
    #: the payer's token balance cannot cover this payment besides its payments not settled yet
    INSUFFICIENT_FUNDS = "insufficient_funds"
    #: the voucher's cumulative amount exceeds the channel's deposit: top the channel up
    EXCEEDS_DEPOSIT = "exceeds_deposit"
    #: no such channel on the agent's channels contract: open one
    UNKNOWN_CHANNEL = "unknown_channel"
    #: the channel is closing or closed: open a new one
    CHANNEL_CLOSED = "channel_closed"


class HeaderError(ValueError):
    """A payment header could not be encoded or decoded.

    The one exception of this light module (it is a :class:`ValueError`, not rooted in ``StakedError``, because
    that root lives in the heavy staking package); the server translates it into a payment error.

    Attributes:
        header: the header's name.
        reason: ``malformed``, ``unsupported_version`` or ``unsupported_scheme``.
    """

    def __init__(self, header: str, reason: FailureReason, message: str) -> None:
        super().__init__(f"{header}: {message}")
        self.header = header
        self.reason = reason


# -- field types ------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)  # a payment names the same few addresses over and over; each costs a keccak
def _checksum(address: str) -> str:
    """EIP-55 mixed-case form of a 20-byte hex address (``0x`` + 40 hex digits)."""
    lower = address[2:].lower()
    nibbles = keccak(lower.encode("ascii")).hex()
    return "0x" + "".join(c.upper() if int(n, 16) >= 8 else c for c, n in zip(lower, nibbles, strict=False))


def _address(value: object) -> str:
    # Any case is accepted (EIP-712 encodes the 20 bytes), and normalised so that comparisons are plain equality.
    if isinstance(value, str) and _ADDRESS.fullmatch(value):
        return _checksum(value)
    raise ValueError("expected an address: 0x and 40 hex digits")


def _uint256(value: object) -> int:
    if isinstance(value, str) and value.isascii() and value.isdigit():
        number = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        raise ValueError("expected an unsigned integer as a decimal string")
    if not 0 <= number <= _UINT256_MAX:
        raise ValueError("out of uint256 range")
    return number


def _hex_bytes(size: int) -> Callable[[object], bytes]:
    def parse(value: object) -> bytes:
        if isinstance(value, bytes) and len(value) == size:
            return value
        match = _HEX.fullmatch(value) if isinstance(value, str) else None
        if match is None or len(match.group(1)) != 2 * size:
            raise ValueError(f"expected 0x and {2 * size} hex digits")
        return bytes.fromhex(match.group(1))

    return parse


def _to_hex(value: bytes) -> str:
    return "0x" + value.hex()


Address = Annotated[
    str,
    BeforeValidator(_address),
    WithJsonSchema({"type": "string", "pattern": "^0x[0-9a-fA-F]{40}$"}),
]
Uint256 = Annotated[
    int,
    BeforeValidator(_uint256),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string", "pattern": "^[0-9]+$", "description": "unsigned integer, base units"}),
]
Bytes32 = Annotated[
    bytes,
    BeforeValidator(_hex_bytes(32)),
    PlainSerializer(_to_hex, return_type=str),
    WithJsonSchema({"type": "string", "pattern": "^0x[0-9a-fA-F]{64}$"}),
]
#: ``r || s || v``, as eth-account and every x402 client produce it.
Signature = Annotated[
    bytes,
    BeforeValidator(_hex_bytes(65)),
    PlainSerializer(_to_hex, return_type=str),
    WithJsonSchema({"type": "string", "pattern": "^0x[0-9a-fA-F]{130}$"}),
]
#: CAIP-2 chain id, e.g. ``eip155:31337``.
Network = Annotated[str, Field(pattern=r"^[-a-z0-9]{3,8}:[-_a-zA-Z0-9]{1,32}$")]


class _Wire(BaseModel):
    # camelCase on the wire, snake_case in Python; unknown fields are ignored, so newer clients and x402
    # extensions do not break older servers.
    model_config = ConfigDict(frozen=True, alias_generator=to_camel, populate_by_name=True, extra="ignore")


# -- PAYMENT-REQUIRED -------------------------------------------------------------------------------------------


class ResourceInfo(_Wire):
    """The resource a payment is for."""

    url: str
    description: str | None = None
    mime_type: str | None = None


class ExactExtra(_Wire):
    """``extra`` of the ``exact`` scheme: the token's EIP-712 domain, which x402 clients sign under."""

    name: str
    version: str
    asset_transfer_method: Literal["eip3009"] = "eip3009"


class ChannelExtra(_Wire):
    """``extra`` of the ``channel`` scheme: where channels live and the EIP-712 domain vouchers are signed under."""

    channels: Address
    name: str
    version: str


class _Requirements(_Wire):
    network: Network
    amount: Uint256
    asset: Address
    pay_to: Address
    max_timeout_seconds: int = Field(gt=0)


class ExactRequirements(_Requirements):
    """Pay ``amount`` of token ``asset`` to ``pay_to`` with one EIP-3009 authorization.

    Example:
        >>> ExactRequirements(
        ...     network="eip155:31337", amount=10**16, asset="0x" + "11" * 20, pay_to="0x" + "22" * 20,
        ...     max_timeout_seconds=600, extra=ExactExtra(name="Open", version="1"),
        ... ).model_dump(by_alias=True)["amount"]
        '10000000000000000'
    """

    scheme: Literal["exact"] = "exact"
    extra: ExactExtra


class ChannelRequirements(_Requirements):
    """Pay ``amount`` per request with vouchers on a channel to ``pay_to`` of the contract ``extra.channels``."""

    scheme: Literal["channel"] = "channel"
    extra: ChannelExtra


PaymentRequirements = Annotated[ExactRequirements | ChannelRequirements, Field(discriminator="scheme")]


class PaymentRequired(_Wire):
    """The ``PAYMENT-REQUIRED`` document: why payment is needed and every way to pay.

    Example:
        >>> PaymentRequired(resource=ResourceInfo(url="/v1/skills/echo"), accepts=(requirements,))  # doctest: +SKIP
    """

    x402_version: Literal[2] = X402_VERSION
    error: str | None = None
    resource: ResourceInfo
    accepts: tuple[PaymentRequirements, ...] = Field(min_length=1)
    extensions: dict[str, Any] | None = None


# -- PAYMENT-SIGNATURE ------------------------------------------------------------------------------------------


class Eip3009Authorization(_Wire):
    """The fields of ``TransferWithAuthorization``; the validity window is in block time and exclusive."""

    from_: Address = Field(alias="from")
    to: Address
    value: Uint256
    valid_after: Uint256
    valid_before: Uint256
    nonce: Bytes32


class Eip3009Payload(_Wire):
    """``payload`` of the ``exact`` scheme."""

    signature: Signature
    authorization: Eip3009Authorization


class VoucherPayload(_Wire):
    """``payload`` of the ``channel`` scheme: the payer owes ``cumulative_amount`` in total on ``channel_id``."""

    channel_id: Bytes32
    cumulative_amount: Uint256
    signature: Signature


class ExactPaymentPayload(_Wire):
    """A ``PAYMENT-SIGNATURE`` paying with an EIP-3009 authorization (what a stock x402 client sends)."""

    x402_version: Literal[2] = X402_VERSION
    resource: ResourceInfo | None = None
    accepted: ExactRequirements
    payload: Eip3009Payload
    extensions: dict[str, Any] | None = None


class ChannelPaymentPayload(_Wire):
    """A ``PAYMENT-SIGNATURE`` paying with a channel voucher."""

    x402_version: Literal[2] = X402_VERSION
    resource: ResourceInfo | None = None
    accepted: ChannelRequirements
    payload: VoucherPayload
    extensions: dict[str, Any] | None = None


def _scheme_of(value: Any) -> str | None:
    """The scheme a payload claims: its ``accepted.scheme``, which decides how ``payload`` is read."""
    accepted = value.get("accepted") if isinstance(value, dict) else getattr(value, "accepted", None)
    scheme = accepted.get("scheme") if isinstance(accepted, dict) else getattr(accepted, "scheme", None)
    return scheme if isinstance(scheme, str) else None


_UNSUPPORTED_SCHEME = "unsupported_scheme"

PaymentPayload = Annotated[
    Annotated[ExactPaymentPayload, Tag(Scheme.EXACT)] | Annotated[ChannelPaymentPayload, Tag(Scheme.CHANNEL)],
    Discriminator(
        _scheme_of,
        custom_error_type=_UNSUPPORTED_SCHEME,
        custom_error_message="accepted.scheme must be 'exact' or 'channel'",
    ),
]


# -- PAYMENT-RESPONSE -------------------------------------------------------------------------------------------


class SettlementExtra(_Wire):
    """What a ``channel`` payment left the channel at, so the client can check its own count."""

    channel_id: Bytes32
    cumulative_amount: Uint256


class SettlementResponse(_Wire):
    """The ``PAYMENT-RESPONSE`` document.

    Agents settle on chain in batches after answering, so a paid answer has ``success`` and an empty
    ``transaction``, as x402 allows for settlement that is not a transaction of this request; ``amount`` is what
    the request was charged.
    """

    success: bool
    error_reason: str | None = None
    payer: Address | None = None
    transaction: str = ""
    network: Network
    amount: Uint256 | None = None
    extensions: dict[str, Any] | None = None
    extra: SettlementExtra | None = None


# -- header encoding --------------------------------------------------------------------------------------------

_M = TypeVar("_M")

_PAYMENT_PAYLOAD: TypeAdapter[ExactPaymentPayload | ChannelPaymentPayload] = TypeAdapter(PaymentPayload)
_PAYMENT_REQUIRED = TypeAdapter(PaymentRequired)
_SETTLEMENT_RESPONSE = TypeAdapter(SettlementResponse)


def encode_header(document: BaseModel) -> str:
    """The header value of ``document``: base64 of its JSON with x402 field names, ``None`` fields left out.

    Raises:
        HeaderError: the value would be longer than :data:`MAX_HEADER_BYTES`.
    """
    value = base64.b64encode(document.model_dump_json(by_alias=True, exclude_none=True).encode()).decode("ascii")
    if len(value) > MAX_HEADER_BYTES:
        name = type(document).__name__
        raise HeaderError(name, FailureReason.MALFORMED, f"{len(value)} bytes exceed {MAX_HEADER_BYTES}")
    return value


def decode_payment_required(value: str) -> PaymentRequired:
    """Reads a ``PAYMENT-REQUIRED`` header.

    Raises:
        HeaderError: the value is too long, not base64 JSON, or not a version 2 document of our schemes.
    """
    return _decode(PAYMENT_REQUIRED_HEADER, value, _PAYMENT_REQUIRED)


def decode_payment_payload(value: str) -> ExactPaymentPayload | ChannelPaymentPayload:
    """Reads a ``PAYMENT-SIGNATURE`` header.

    Raises:
        HeaderError: with reason ``unsupported_version`` for another x402 version, ``unsupported_scheme`` for a
            scheme other than ``exact`` and ``channel``, ``malformed`` for anything else wrong.
    """
    return _decode(PAYMENT_SIGNATURE_HEADER, value, _PAYMENT_PAYLOAD)


def decode_settlement_response(value: str) -> SettlementResponse:
    """Reads a ``PAYMENT-RESPONSE`` header.

    Raises:
        HeaderError: the value is too long or not base64 JSON of a settlement response.
    """
    return _decode(PAYMENT_RESPONSE_HEADER, value, _SETTLEMENT_RESPONSE)


def _decode(header: str, value: str, adapter: TypeAdapter[_M]) -> _M:
    if len(value) > MAX_HEADER_BYTES:
        raise HeaderError(header, FailureReason.MALFORMED, f"longer than {MAX_HEADER_BYTES} bytes")
    try:
        document = json.loads(base64.b64decode(value.strip(), validate=True))
    except (binascii.Error, ValueError) as exc:  # bad base64, bad UTF-8, bad JSON (JSONDecodeError is a ValueError)
        raise HeaderError(header, FailureReason.MALFORMED, "not base64-encoded JSON") from exc
    if not isinstance(document, dict):
        raise HeaderError(header, FailureReason.MALFORMED, "not a JSON object")
    # Checked before the schema so that a version 1 client hears "version", not a list of missing fields.
    if header != PAYMENT_RESPONSE_HEADER and document.get("x402Version") != X402_VERSION:
        raise HeaderError(header, FailureReason.UNSUPPORTED_VERSION, f"x402Version must be {X402_VERSION}")
    try:
        return adapter.validate_python(document)
    except ValidationError as exc:
        scheme = _scheme_of(document)
        if scheme is not None and any(error["type"] == _UNSUPPORTED_SCHEME for error in exc.errors()):
            raise HeaderError(header, FailureReason.UNSUPPORTED_SCHEME, f"scheme {scheme!r}") from exc
        raise HeaderError(header, FailureReason.MALFORMED, _summary(exc)) from exc


def _summary(exc: ValidationError) -> str:
    """pydantic's problems on one line, e.g. ``payload.authorization.nonce: expected 0x and 64 hex digits``."""
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or '<root>'}: {error['msg']}" for error in exc.errors()
    )
