"""Which receipts of a committed epoch a validator audits.

Auditing every receipt costs a re-scoring each; auditing a random share ``rate`` of them catches a cheating agent
just as surely over time, provided the agent cannot tell in advance which receipts will be looked at. So the choice
must be unpredictable to the agent when it commits the epoch, yet reproducible by the validator (a restart must
pick the same receipts, and the choice can be shown to others afterwards):

* the **seed** is keccak256 of the validator's signature over the agent, the epoch and the hash of a block mined
  after the commit. ECDSA in eth-account is deterministic (RFC 6979), so the validator gets the same signature
  every time; nobody without its key can compute it, and the block hash did not exist when the agent committed.
  Publishing the signature later lets anyone check the choice against the validator's address.
* position ``seq`` in ``0 .. count - 1`` is audited when the 64-bit big-endian word number ``seq % 4`` of
  ``keccak256(seed || uint64(seq // 4))`` falls below ``rate * 2**64``: independently with probability ``rate``,
  so the expected number is ``rate * count``, and the rule is the same in any language (four positions per hash
  keep an epoch of 100,000 receipts well under a second).

Example:
    >>> seed = sampling_seed(account, agent, epoch=7, block_hash=block.hash)      # doctest: +SKIP
    >>> sample_positions(seed, count=1_000, rate=0.05)                              # doctest: +SKIP
    (12, 57, 103, ...)
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Final

from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from .errors import ValidatorConfigError

__all__ = ["AUDIT_ALL", "AuditSampler", "sample_positions", "sampling_message", "sampling_seed"]

#: The rate that audits every receipt of an epoch (a validator that can afford it, or a suspicious agent).
AUDIT_ALL: Final = 1.0
_WORD_BYTES: Final = 8  # one position's draw: a 64-bit word of a keccak256 digest
_WORDS: Final = 32 // _WORD_BYTES  # positions drawn from one digest


def sampling_message(agent: str, epoch: int, block_hash: bytes) -> str:
    """The text a validator signs (EIP-191) to seed its sample of ``agent``'s ``epoch``.

    It names its purpose, so the signature can be published without being usable as anything else.
    """
    return f"staked: audit sample of agent {to_checksum_address(agent)} epoch {epoch} at block 0x{block_hash.hex()}"


def sampling_seed(account: LocalAccount, agent: str, epoch: int, block_hash: bytes) -> bytes:
    """The 32-byte seed of ``account``'s sample of ``agent``'s ``epoch``: keccak256 of its signature over
    :func:`sampling_message`.

    Args:
        account: the validator's key.
        agent: the agent's operator address.
        epoch: the committed epoch.
        block_hash: the hash of a block mined after the epoch's commit.
    """
    signature = account.sign_message(encode_defunct(text=sampling_message(agent, epoch, block_hash))).signature
    return keccak(bytes(signature))


def sample_positions(seed: bytes, count: int, rate: float) -> tuple[int, ...]:
    """The positions (``seq``) among ``count`` receipts to audit, ascending: each with probability ``rate``.

    Args:
        seed: from :func:`sampling_seed`.
        count: the epoch's committed ``receiptCount``.
        rate: the share to audit, from 0 (none) to :data:`AUDIT_ALL` (every one).

    Raises:
        ValueError: ``count`` is negative or ``rate`` is outside [0, 1].
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    if not 0.0 <= rate <= AUDIT_ALL or math.isnan(rate):
        raise ValueError(f"rate must lie in [0, 1], got {rate}")
    if rate == AUDIT_ALL:
        return tuple(range(count))
    threshold = math.floor(Fraction(rate) * 2 ** (8 * _WORD_BYTES))  # exact: a float is a fraction
    positions = []
    for block in range(-(-count // _WORDS)):
        digest = keccak(seed + block.to_bytes(_WORD_BYTES, "big"))
        for word in range(_WORDS):
            seq = block * _WORDS + word
            draw = int.from_bytes(digest[word * _WORD_BYTES : (word + 1) * _WORD_BYTES], "big")
            if seq < count and draw < threshold:
                positions.append(seq)
    return tuple(positions)


class AuditSampler:
    """A validator's sampling rule: its key and its rate.

    Example:
        >>> sampler = AuditSampler(account, rate=0.1)                                          # doctest: +SKIP
        >>> sampler.positions(agent, epoch=3, block_hash=block.hash, count=commitment.receipt_count)
        ...                                                                                    # doctest: +SKIP

    Args:
        account: the validator's key (its signatures seed the samples).
        rate: the share of each epoch's receipts to audit; :data:`AUDIT_ALL` audits all.

    Raises:
        ValidatorConfigError: ``rate`` is outside [0, 1].
    """

    def __init__(self, account: LocalAccount, *, rate: float) -> None:
        if not 0.0 <= rate <= AUDIT_ALL or math.isnan(rate):
            raise ValidatorConfigError(f"the audit rate must lie in [0, 1], got {rate}")
        self.account = account
        self.rate = rate

    def __repr__(self) -> str:
        return f"<AuditSampler {self.account.address} rate={self.rate:g}>"

    def positions(self, agent: str, epoch: int, block_hash: bytes, count: int) -> tuple[int, ...]:
        """The seqs of ``agent``'s ``epoch`` (of ``count`` receipts) to audit, seeded after ``block_hash``."""
        return sample_positions(sampling_seed(self.account, agent, epoch, block_hash), count, self.rate)
