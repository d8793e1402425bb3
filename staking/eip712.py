"""EIP-712 messages of the protocol, signed and recovered with eth-account.

Each message is a frozen dataclass whose fields mirror the Solidity struct (snake_case here, camelCase on chain);
``typed_data(domain)`` gives the full EIP-712 document and :func:`digest` the 32 bytes a contract's
``_hashTypedDataV4`` computes for it. Tests check both against the contracts.

Example:
    >>> domain = Domain(name="PaymentChannels", version="1", chain_id=31337, verifying_contract="0x" + "11" * 20)
    >>> voucher = Voucher(channel_id=b"\\x01" * 32, cumulative_amount=10**16)
    >>> len(digest(domain, voucher))
    32
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any, ClassVar

from eth_account import Account
from eth_account.messages import SignableMessage, encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

__all__ = [
    "CancelAuthorization",
    "Domain",
    "Permit",
    "Receipt",
    "ReceiveWithAuthorization",
    "TransferWithAuthorization",
    "TypedMessage",
    "Voucher",
    "digest",
    "recover",
    "sign",
    "struct_hash",
]

_DOMAIN_FIELDS = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]


@dataclass(frozen=True)
class Domain:
    """An EIP-712 domain: the contract (and chain) a signature is good for."""

    name: str
    version: str
    chain_id: int
    verifying_contract: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "chainId": self.chain_id,
            "verifyingContract": to_checksum_address(self.verifying_contract),
        }


@dataclass(frozen=True)
class TypedMessage:
    """Base of the protocol's EIP-712 structs; subclasses set ``PRIMARY_TYPE`` and ``SOLIDITY_TYPES``."""

    PRIMARY_TYPE: ClassVar[str]
    #: Solidity type of each dataclass field, in struct order.
    SOLIDITY_TYPES: ClassVar[tuple[str, ...]]

    def as_tuple(self) -> tuple[Any, ...]:
        """The fields in struct order: a struct argument, or a function's leading arguments, in contract calls."""
        return tuple(getattr(self, f.name) for f in dataclasses.fields(self))

    def typed_data(self, domain: Domain) -> dict[str, Any]:
        """The full EIP-712 document of this message under ``domain``."""
        fields = dataclasses.fields(self)
        members = [
            {"name": _camel(f.name), "type": solidity_type}
            for f, solidity_type in zip(fields, self.SOLIDITY_TYPES, strict=True)
        ]
        return {
            "types": {"EIP712Domain": _DOMAIN_FIELDS, self.PRIMARY_TYPE: members},
            "primaryType": self.PRIMARY_TYPE,
            "domain": domain.as_dict(),
            "message": {_camel(f.name): getattr(self, f.name) for f in fields},
        }


@dataclass(frozen=True)
class Voucher(TypedMessage):
    """PaymentChannels: the payer owes ``cumulative_amount`` wei in total on ``channel_id``."""

    PRIMARY_TYPE: ClassVar[str] = "Voucher"
    SOLIDITY_TYPES: ClassVar[tuple[str, ...]] = ("bytes32", "uint256")

    channel_id: bytes
    cumulative_amount: int


@dataclass(frozen=True)
class Receipt(TypedMessage):
    """ReceiptRegistry: an agent's signed account of one paid answer (see DESIGN.md, Receipt).

    ``agent`` is the operator address; the signature is by a hot signer bound to it in AgentStaking. The hashes
    are keccak256 of RFC 8785 canonical JSON of the request, output, engine and attribution records.
    """

    PRIMARY_TYPE: ClassVar[str] = "Receipt"
    SOLIDITY_TYPES: ClassVar[tuple[str, ...]] = (
        "address", "bytes32", "bytes32", "bytes32", "bytes32", "bytes32", "bytes32", "address", "uint256", "uint64",
        "uint64",
    )  # fmt: skip

    agent: str
    request_id: bytes
    request_hash: bytes
    output_hash: bytes
    model_id: bytes
    engine_hash: bytes
    attribution_hash: bytes
    payer: str
    price: int
    epoch: int
    seq: int

    def leaf(self, domain: Domain) -> bytes:
        """The receipt's leaf in its epoch's Merkle tree: the struct hash, hashed twice (second-preimage safe)."""
        return keccak(keccak(struct_hash(domain, self)))


@dataclass(frozen=True)
class _Authorization(TypedMessage):
    SOLIDITY_TYPES: ClassVar[tuple[str, ...]] = (
        "address",
        "address",
        "uint256",
        "uint256",
        "uint256",
        "bytes32",
    )

    from_: str
    to: str
    value: int
    valid_after: int
    valid_before: int
    nonce: bytes


@dataclass(frozen=True)
class TransferWithAuthorization(_Authorization):
    """EIP-3009: ``from_`` lets anyone move ``value`` to ``to`` inside the validity window, once per nonce."""

    PRIMARY_TYPE: ClassVar[str] = "TransferWithAuthorization"


@dataclass(frozen=True)
class ReceiveWithAuthorization(_Authorization):
    """EIP-3009: as :class:`TransferWithAuthorization`, but only ``to`` may submit it."""

    PRIMARY_TYPE: ClassVar[str] = "ReceiveWithAuthorization"


@dataclass(frozen=True)
class CancelAuthorization(TypedMessage):
    """EIP-3009: ``authorizer`` cancels its unused authorization ``nonce``."""

    PRIMARY_TYPE: ClassVar[str] = "CancelAuthorization"
    SOLIDITY_TYPES: ClassVar[tuple[str, ...]] = ("address", "bytes32")

    authorizer: str
    nonce: bytes


@dataclass(frozen=True)
class Permit(TypedMessage):
    """EIP-2612: ``owner`` approves ``spender`` for ``value`` until ``deadline``."""

    PRIMARY_TYPE: ClassVar[str] = "Permit"
    SOLIDITY_TYPES: ClassVar[tuple[str, ...]] = ("address", "address", "uint256", "uint256", "uint256")

    owner: str
    spender: str
    value: int
    nonce: int
    deadline: int


def _signable(domain: Domain, message: TypedMessage) -> SignableMessage:
    return encode_typed_data(full_message=message.typed_data(domain))


def struct_hash(domain: Domain, message: TypedMessage) -> bytes:
    """EIP-712 ``hashStruct(message)``, what a contract computes as ``keccak256(abi.encode(TYPEHASH, ...))``."""
    return bytes(_signable(domain, message).body)


def digest(domain: Domain, message: TypedMessage) -> bytes:
    """The EIP-712 digest, ``keccak256("\\x19\\x01" || domainSeparator || structHash)``."""
    signable = _signable(domain, message)
    return keccak(b"\x19" + signable.version + signable.header + signable.body)


def sign(account: LocalAccount, domain: Domain, message: TypedMessage) -> bytes:
    """Signs ``message`` under ``domain``; returns the 65-byte ``r || s || v`` signature (low ``s``)."""
    return bytes(account.sign_message(_signable(domain, message)).signature)


def recover(domain: Domain, message: TypedMessage, signature: bytes) -> str:
    """The checksummed address that signed ``message`` under ``domain``."""
    return str(Account.recover_message(_signable(domain, message), signature=signature))


def _camel(name: str) -> str:
    """``cumulative_amount`` -> ``cumulativeAmount``; ``from_`` -> ``from`` (a Python keyword on chain)."""
    return re.sub(r"_([a-z])", lambda m: m.group(1).upper(), name.rstrip("_"))
