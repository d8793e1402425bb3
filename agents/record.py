"""The answer record an agent keeps beside each receipt, the hashes that bind the two, and access to them.

A receipt commits to an answer through four keccak256 hashes of RFC 8785 canonical JSON; this module is the one
place that says what each hash covers, so the agent host that signs receipts and the validator that audits them
cannot drift apart:

``requestHash``
    ``{"skill": <name>, "input": <the JSON input as the client sent it>}``, so a client can check it without the
    agent's code; the skill validates that input again when a validator replays it.
``outputHash``
    the skill's output model, dumped as JSON.
``engineHash``
    for every model call, in order: the engine's identity (name, version, served model, dtype, context length) and
    the sampling parameters, seed included.
``attributionHash``
    :attr:`Attribution.attribution_hash <agents.attribution.Attribution.attribution_hash>` of the attribution of
    the answer's generated tokens (:func:`attributed_tokens`).

The record (:class:`AnswerRecord`) carries everything an auditor needs to recompute them and to re-score the
output: the input and output, each model call with its exact token ids, the attribution and the payment. It is
served by the agent at ``GET /v1/receipts/{requestId}`` (:class:`ReceiptDocument`) to the request's payer and to
staked validators, and at ``GET /v1/epochs/{epoch}/receipts/{seq}`` to staked validators; readers prove who they
are with :func:`receipt_access_header`.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from typing import Annotated, Any, Final, Literal

import rfc8785
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, JsonValue, PlainSerializer
from pydantic.alias_generators import to_camel

from staking.eip712 import Receipt

from .attribution._types import Address, Hash32, hex32
from .attribution.protocol import Attribution
from .protocol import ModelCall

__all__ = [
    "RECEIPT_ACCESS_MAX_AGE",
    "RECEIPT_ACCESS_SCHEME",
    "RECORD_VERSION",
    "AnswerRecord",
    "InclusionProof",
    "PaymentProof",
    "ReceiptAccessError",
    "ReceiptDocument",
    "SignedReceiptDocument",
    "attributed_tokens",
    "canonical_hash",
    "engine_hash",
    "output_hash",
    "receipt_access_header",
    "receipt_access_signer",
    "request_hash",
]

RECORD_VERSION: Final = 1
#: The ``Authorization`` scheme of receipt reads.
RECEIPT_ACCESS_SCHEME: Final = "Staked-EIP191"
#: Seconds a signed receipt read stays valid (either side of the agent's clock).
RECEIPT_ACCESS_MAX_AGE: Final = 300

_ACCESS_HEADER = re.compile(
    rf"{RECEIPT_ACCESS_SCHEME} address=(0x[0-9a-fA-F]{{40}}),issued-at=([0-9]{{1,12}}),signature=(0x[0-9a-fA-F]{{130}})"
)


def _parse_int(value: Any) -> Any:
    return int(value) if isinstance(value, str) and value.isdigit() else value


#: A token amount in wei, a decimal string on the wire (JSON numbers lose precision above 2**53).
Wei = Annotated[int, BeforeValidator(_parse_int), PlainSerializer(str, return_type=str), Field(ge=0, lt=2**256)]
#: An ECDSA signature ``r || s || v``, as hex.
SignatureHex = Annotated[str, Field(pattern=r"^0x[0-9a-f]{130}$")]


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True)


def canonical_hash(value: JsonValue) -> bytes:
    """keccak256 of the RFC 8785 canonical JSON of ``value``."""
    return keccak(rfc8785.dumps(value))


def request_hash(skill: str, request: JsonValue) -> bytes:
    """The receipt's ``requestHash`` of a call to ``skill`` with the JSON input ``request`` as sent."""
    return canonical_hash({"skill": skill, "input": request})


def output_hash(output: JsonValue) -> bytes:
    """The receipt's ``outputHash`` of the skill's output (JSON form)."""
    return canonical_hash(output)


def engine_hash(calls: Sequence[ModelCall]) -> bytes:
    """The receipt's ``engineHash``: the engine identity and sampling parameters (seed included) of every call."""
    return canonical_hash(
        [
            {"engine": call.engine.model_dump(mode="json"), "sampling": call.sampling.model_dump(mode="json")}
            for call in calls
        ]
    )


def attributed_tokens(calls: Sequence[ModelCall]) -> tuple[int, ...]:
    """The token ids an answer's attribution runs over: the generated tokens of every call, in call order.

    A span may run across the boundary of two calls; both sides compute it the same way, which is what matters.
    """
    return tuple(itertools.chain.from_iterable(call.output_token_ids for call in calls))


class PaymentProof(_Record):
    """How the request was paid: the x402 payment payload the agent accepted (an EIP-3009 authorization or a
    channel voucher, with the payer's signature), as the payer's evidence and the agent's claim."""

    scheme: Literal["exact", "channel"]
    payer: Address
    amount: Wei
    payload: dict[str, JsonValue]


class AnswerRecord(_Record):
    """The off-chain record of one paid answer: what a validator needs to recompute the receipt's hashes and
    re-score its output.

    Attributes:
        version: the record format.
        agent: the agent's operator address.
        agent_name: the agent class's ``name``; with the skill it names the code that produced the output.
        request_id: the receipt's ``requestId``.
        skill: the skill that answered.
        input: the JSON input as the client sent it (the skill's input model validates it).
        output: the skill's output, as its output model dumps it.
        calls: every model call the skill made, in the order they finished.
        attribution: the attribution of :func:`attributed_tokens` of ``calls``.
        payment: the payment the agent accepted.
    """

    version: Literal[1] = RECORD_VERSION
    agent: Address
    agent_name: str
    request_id: Hash32
    skill: str
    input: JsonValue
    output: JsonValue
    calls: tuple[ModelCall, ...]
    attribution: Attribution
    payment: PaymentProof

    def request_hash(self) -> bytes:
        return request_hash(self.skill, self.input)

    def output_hash(self) -> bytes:
        return output_hash(self.output)

    def engine_hash(self) -> bytes:
        return engine_hash(self.calls)

    def attribution_hash(self) -> bytes:
        return self.attribution.attribution_hash

    def to_json(self) -> bytes:
        """The bytes the agent journals and serves. Nothing hashes the record as a whole (its parts are hashed
        canonically), so this is pydantic's fast encoding rather than RFC 8785's."""
        return self.model_dump_json(by_alias=True).encode()


class SignedReceiptDocument(_Record):
    """A receipt and its signature in JSON: the ``receipt`` of a paid answer and of a receipt read."""

    agent: Address
    request_id: Hash32
    request_hash: Hash32
    output_hash: Hash32
    model_id: Hash32
    engine_hash: Hash32
    attribution_hash: Hash32
    payer: Address
    price: Wei
    epoch: int = Field(ge=1, lt=2**64)
    seq: int = Field(ge=0, lt=2**64)
    signature: SignatureHex

    @classmethod
    def of(cls, receipt: Receipt, signature: bytes) -> SignedReceiptDocument:
        return cls(
            agent=receipt.agent,
            request_id=hex32(receipt.request_id),
            request_hash=hex32(receipt.request_hash),
            output_hash=hex32(receipt.output_hash),
            model_id=hex32(receipt.model_id),
            engine_hash=hex32(receipt.engine_hash),
            attribution_hash=hex32(receipt.attribution_hash),
            payer=receipt.payer,
            price=receipt.price,
            epoch=receipt.epoch,
            seq=receipt.seq,
            signature="0x" + signature.hex(),
        )

    @property
    def receipt(self) -> Receipt:
        """The EIP-712 message the signature covers."""
        return Receipt(
            agent=self.agent,
            request_id=bytes.fromhex(self.request_id[2:]),
            request_hash=bytes.fromhex(self.request_hash[2:]),
            output_hash=bytes.fromhex(self.output_hash[2:]),
            model_id=bytes.fromhex(self.model_id[2:]),
            engine_hash=bytes.fromhex(self.engine_hash[2:]),
            attribution_hash=bytes.fromhex(self.attribution_hash[2:]),
            payer=self.payer,
            price=self.price,
            epoch=self.epoch,
            seq=self.seq,
        )

    @property
    def signature_bytes(self) -> bytes:
        return bytes.fromhex(self.signature[2:])


class InclusionProof(_Record):
    """The receipt's place in its committed epoch: the Merkle proof ReceiptRegistry's ``verifyInclusion`` takes."""

    receipts_root: Hash32
    receipt_count: int = Field(ge=1)
    proof: tuple[Hash32, ...]


class ReceiptDocument(_Record):
    """``GET /v1/receipts/{requestId}``: the signed receipt, its record, and its inclusion proof once committed."""

    receipt: SignedReceiptDocument
    record: AnswerRecord
    inclusion: InclusionProof | None = None


class ReceiptAccessError(ValueError):
    """A receipt read's ``Authorization`` header is malformed, stale or signed for something else."""


def _access_message(agent: str, path: str, issued_at: int) -> str:
    return f"staked: GET {path} from agent {agent} at {issued_at}"


def receipt_access_header(account: LocalAccount, agent: str, path: str, issued_at: int) -> str:
    """The ``Authorization`` value with which ``account`` reads ``path`` (``/v1/receipts/0x..``,
    ``/v1/epochs/3/receipts/7``) from ``agent``, signed at ``issued_at`` (unix time).

    The signature (EIP-191) covers the agent, the path and the time, so it opens one receipt at one agent for
    :data:`RECEIPT_ACCESS_MAX_AGE` seconds and nothing else.
    """
    message = encode_defunct(text=_access_message(agent, path, issued_at))
    signature = bytes(account.sign_message(message).signature)
    return f"{RECEIPT_ACCESS_SCHEME} address={account.address},issued-at={issued_at},signature=0x{signature.hex()}"


def receipt_access_signer(header: str, agent: str, path: str, now: int) -> str:
    """The checksummed address that signed ``header`` to read ``path`` from ``agent``, checked at time ``now``.

    Raises:
        ReceiptAccessError: the header is malformed, older or newer than :data:`RECEIPT_ACCESS_MAX_AGE`, or not
            signed by the address it names.
    """
    match = _ACCESS_HEADER.fullmatch(header.strip())
    if match is None:
        raise ReceiptAccessError(
            f"expected 'Authorization: {RECEIPT_ACCESS_SCHEME} address=0x..,issued-at=<unix time>,signature=0x..'"
        )
    claimed, issued_at, signature = match.group(1), int(match.group(2)), bytes.fromhex(match.group(3)[2:])
    if abs(now - issued_at) > RECEIPT_ACCESS_MAX_AGE:
        raise ReceiptAccessError(f"signed at {issued_at}, more than {RECEIPT_ACCESS_MAX_AGE} s from now ({now})")
    message = encode_defunct(text=_access_message(agent, path, issued_at))
    try:
        signer = str(Account.recover_message(message, signature=signature))
    except Exception as exc:  # eth-keys raises several types for a malformed signature
        raise ReceiptAccessError("no signer can be recovered from the signature") from exc
    if int(signer, 16) != int(claimed, 16):
        raise ReceiptAccessError(f"signed by {signer}, not by {claimed}")
    return signer
