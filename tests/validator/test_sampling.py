"""The audit sample of an epoch: in range, distinct, reproducible by the validator, keyed to it and to the block,
and of the configured rate in expectation."""

from __future__ import annotations

import math

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from validator import AUDIT_ALL, AuditSampler, ValidatorConfigError, sample_positions, sampling_message, sampling_seed

VALIDATOR: LocalAccount = Account.from_key(keccak(b"validator"))
OTHER: LocalAccount = Account.from_key(keccak(b"another validator"))
AGENT = "0x" + "a1" * 20

seeds = st.binary(min_size=32, max_size=32)
counts = st.integers(min_value=0, max_value=2_000)
rates = st.floats(min_value=0.0, max_value=1.0)
block_hashes = st.binary(min_size=32, max_size=32)


@given(seed=seeds, count=counts, rate=rates)
def test_positions_are_distinct_ascending_and_in_range(seed: bytes, count: int, rate: float) -> None:
    positions = sample_positions(seed, count, rate)
    assert list(positions) == sorted(set(positions))
    assert all(0 <= seq < count for seq in positions)
    assert positions == sample_positions(seed, count, rate)  # deterministic


@given(seed=seeds, count=counts, low=rates, high=rates)
def test_a_higher_rate_audits_a_superset(seed: bytes, count: int, low: float, high: float) -> None:
    low, high = sorted((low, high))
    assert set(sample_positions(seed, count, low)) <= set(sample_positions(seed, count, high))


@given(seed=seeds, count=counts)
def test_rate_zero_audits_nothing_and_audit_all_everything(seed: bytes, count: int) -> None:
    assert sample_positions(seed, count, 0.0) == ()
    assert sample_positions(seed, count, AUDIT_ALL) == tuple(range(count))


@settings(max_examples=50)
@given(seed=seeds, rate=st.floats(min_value=0.01, max_value=0.99))
def test_the_rate_is_respected_in_expectation(seed: bytes, rate: float) -> None:
    # Each of n positions is drawn with probability rate: the count is Binomial(n, rate); 6 standard deviations
    # make a false failure rarer than one in 10^8 runs.
    count = 4_000
    drawn = len(sample_positions(seed, count, rate))
    assert abs(drawn - rate * count) <= 6 * math.sqrt(count * rate * (1 - rate))


@settings(max_examples=20, deadline=None)
@given(epoch=st.integers(min_value=1, max_value=2**64 - 1), block_hash=block_hashes)
def test_the_seed_is_the_validators_own_and_changes_with_the_block(epoch: int, block_hash: bytes) -> None:
    seed = sampling_seed(VALIDATOR, AGENT, epoch, block_hash)
    assert seed == sampling_seed(VALIDATOR, AGENT.upper().replace("0X", "0x"), epoch, block_hash)  # reproducible
    assert seed != sampling_seed(OTHER, AGENT, epoch, block_hash)  # nobody else can compute it
    assert seed != sampling_seed(VALIDATOR, AGENT, epoch, keccak(block_hash))  # unknown before the block
    assert seed != sampling_seed(VALIDATOR, AGENT, epoch + 1 if epoch < 2**64 - 1 else 1, block_hash)


def test_the_seed_hashes_a_signature_anyone_can_check_later() -> None:
    block_hash = keccak(b"block after the commit")
    message = encode_defunct(text=sampling_message(AGENT, 3, block_hash))
    signature = VALIDATOR.sign_message(message).signature
    assert Account.recover_message(message, signature=signature) == VALIDATOR.address
    assert sampling_seed(VALIDATOR, AGENT, 3, block_hash) == keccak(bytes(signature))
    assert sampling_message(AGENT, 3, block_hash) == (
        f"staked: audit sample of agent {to_checksum_address(AGENT)} epoch 3 at block 0x{block_hash.hex()}"
    )


def test_the_sampler_picks_what_the_functions_pick() -> None:
    sampler = AuditSampler(VALIDATOR, rate=0.25)
    block_hash = keccak(b"block")
    expected = sample_positions(sampling_seed(VALIDATOR, AGENT, 2, block_hash), 100, 0.25)
    assert sampler.positions(AGENT, 2, block_hash, 100) == expected
    assert repr(sampler) == f"<AuditSampler {VALIDATOR.address} rate=0.25>"


@pytest.mark.parametrize("rate", [-0.1, 1.5, math.nan])
def test_a_rate_outside_zero_to_one_is_refused(rate: float) -> None:
    with pytest.raises(ValidatorConfigError):
        AuditSampler(VALIDATOR, rate=rate)
    with pytest.raises(ValueError, match="rate"):
        sample_positions(b"\x00" * 32, 10, rate)
    with pytest.raises(ValueError, match="count"):
        sample_positions(b"\x00" * 32, -1, 0.5)
