from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from staking.merkle import MerkleTree, hash_pair, verify

leaves = st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=64)


@given(leaves)
def test_every_leaf_proves_into_the_root(values: list[bytes]) -> None:
    tree = MerkleTree(values)
    for index, leaf in enumerate(values):
        assert verify(tree.root, leaf, tree.proof(index))


@given(leaves, st.binary(min_size=32, max_size=32))
def test_a_leaf_not_in_the_tree_does_not_prove(values: list[bytes], stranger: bytes) -> None:
    tree = MerkleTree(values)
    if stranger not in values:
        assert not any(verify(tree.root, stranger, tree.proof(i)) for i in range(len(values)))


def test_small_trees_by_hand() -> None:
    a, b, c = (bytes([n]) * 32 for n in (1, 2, 3))
    assert MerkleTree([a]).root == a
    assert MerkleTree([a, b]).root == hash_pair(a, b) == hash_pair(b, a)
    assert MerkleTree([a, b, c]).root == hash_pair(hash_pair(a, b), c)
    assert MerkleTree([a, b, c]).proof(2) == [hash_pair(a, b)]


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="at least one"):
        MerkleTree([])
    with pytest.raises(ValueError, match="32-byte"):
        MerkleTree([b"short"])
    with pytest.raises(IndexError):
        MerkleTree([b"\x00" * 32]).proof(1)
