"""Field types shared by the attribution records: checksummed addresses and 32-byte hashes as hex."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated

from eth_utils.address import is_address, to_checksum_address
from pydantic import AfterValidator, Field

__all__ = ["ZERO_ADDRESS", "Address", "Hash32", "hex32"]

ZERO_ADDRESS = "0x" + "00" * 20


@lru_cache(maxsize=2**16)  # records repeat the same few addresses, and checksumming costs a keccak each time
def _checksummed(value: str) -> str:
    if not is_address(value):
        raise ValueError(f"{value!r} is not an address")
    if int(value, 16) == 0:
        raise ValueError("the zero address cannot be paid")
    return str(to_checksum_address(value))


#: An account that can be paid, EIP-55 checksummed whatever case it was given in.
Address = Annotated[str, AfterValidator(_checksummed)]
#: A keccak256 or SHA-256 digest: ``0x`` and 64 lowercase hex digits.
Hash32 = Annotated[str, Field(pattern=r"^0x[0-9a-f]{64}$")]


def hex32(digest: bytes) -> str:
    """A 32-byte digest as :data:`Hash32` text."""
    return "0x" + digest.hex()
