"""Merkle trees as OpenZeppelin's ``MerkleProof`` verifies them: keccak256 over sorted pairs.

Leaves are given already hashed (the registry's leaves are double-hashed, which keeps a 64-byte inner node from
passing for a leaf). The tree is built bottom-up in the leaves' order (receipts in ``seq`` order); an odd node is
carried up unchanged, so a proof never contains a duplicated sibling.

Example:
    >>> tree = MerkleTree([b"\\x01" * 32, b"\\x02" * 32, b"\\x03" * 32])
    >>> verify(tree.root, tree.leaves[2], tree.proof(2))
    True
"""

from __future__ import annotations

from collections.abc import Sequence

from eth_abi.abi import encode
from eth_utils.crypto import keccak

__all__ = ["MerkleTree", "hash_pair", "reward_leaf", "verify"]


def reward_leaf(contributor: str, amount: int) -> bytes:
    """ReceiptRegistry's leaf of a contributor's reward: ``keccak256(keccak256(abi.encode(contributor, amount)))``."""
    return keccak(keccak(encode(["address", "uint256"], [contributor, amount])))


def hash_pair(a: bytes, b: bytes) -> bytes:
    """OpenZeppelin's commutative node hash: keccak256 of the two children, smaller first."""
    return keccak(a + b if a < b else b + a)


def verify(root: bytes, leaf: bytes, proof: Sequence[bytes]) -> bool:
    """Whether ``proof`` leads from ``leaf`` to ``root`` (what ``MerkleProof.verify`` computes on chain)."""
    node = leaf
    for sibling in proof:
        node = hash_pair(node, sibling)
    return node == root


class MerkleTree:
    """A tree over 32-byte leaves with their proofs.

    Raises:
        ValueError: no leaves, or a leaf that is not 32 bytes.
    """

    def __init__(self, leaves: Sequence[bytes]) -> None:
        if not leaves:
            raise ValueError("a Merkle tree needs at least one leaf")
        if any(len(leaf) != 32 for leaf in leaves):
            raise ValueError("Merkle leaves must be 32-byte hashes")
        self.leaves: tuple[bytes, ...] = tuple(bytes(leaf) for leaf in leaves)
        self._levels: list[list[bytes]] = [list(self.leaves)]
        while len(self._levels[-1]) > 1:
            level = self._levels[-1]
            parents = [hash_pair(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
            if len(level) % 2:
                parents.append(level[-1])
            self._levels.append(parents)

    def __len__(self) -> int:
        return len(self.leaves)

    def __repr__(self) -> str:
        return f"<MerkleTree leaves={len(self)} root=0x{self.root.hex()}>"

    @property
    def root(self) -> bytes:
        return self._levels[-1][0]

    def proof(self, index: int) -> list[bytes]:
        """The siblings from leaf ``index`` up to the root.

        Raises:
            IndexError: ``index`` is not a leaf's.
        """
        if not 0 <= index < len(self.leaves):
            raise IndexError(f"leaf {index} of {len(self.leaves)}")
        proof: list[bytes] = []
        for level in self._levels[:-1]:
            sibling = index ^ 1
            if sibling < len(level):
                proof.append(level[sibling])
            index //= 2
        return proof
