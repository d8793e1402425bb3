"""Epoch rewards from fees and attributions: exact splits, and the tree ReceiptRegistry verifies on anvil."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from hypothesis import given
from hypothesis import strategies as st
from web3 import AsyncWeb3

from agents.attribution import Attribution, ContributorWeight, EpochRewards, RewardsError, epoch_rewards
from staking import Deployment, EpochStatus, MerkleTree, Role, StakingClient, Transactor, advance_time, to_wei_open
from staking.merkle import reward_leaf, verify

ALICE, BOB, CAROL = ("0x" + digit * 40 for digit in "123")
ROOT = "0x" + "ab" * 32
SPAN = {"start": 0, "end": 8, "occurrences": 1, "contributions": ("0x" + "cd" * 32,)}


def attribution(weights: dict[str, int]) -> Attribution:
    """An attribution giving each contributor its basis points, through one span each."""
    chosen = sorted(weights.items(), key=lambda pair: int(pair[0], 16))
    return Attribution(
        index_root=ROOT,
        output_tokens=8 + len(chosen),
        spans=tuple(
            {**SPAN, "start": n, "end": n + 8, "contributors": (address,)} for n, (address, _) in enumerate(chosen)
        ),
        weights=tuple(ContributorWeight(contributor=address, bps=points) for address, points in chosen),
    )


NOTHING = Attribution(index_root=ROOT, output_tokens=5)


def test_fees_pass_their_share_to_the_contributors_they_drew_on() -> None:
    # 1,000 and 3,000 wei at 20%: 800 wei. Alice: 1,000 * 10,000 + 3,000 * 5,000; Bob: 3,000 * 5,000 -> 25 : 15.
    paid = [(1_000, attribution({ALICE: 10_000})), (3_000, attribution({ALICE: 5_000, BOB: 5_000}))]
    rewards = epoch_rewards(paid, attribution_bps=2_000)
    assert (rewards.fee_total, rewards.rewards_total) == (4_000, 800)
    assert rewards.amounts == ((ALICE, 500), (BOB, 300))


def test_rounding_is_largest_remainder_with_ties_to_the_lower_address() -> None:
    # 10 wei among three equal weights: 3.33 each; the one unit left goes to the lowest address.
    rewards = epoch_rewards([(100, attribution({ALICE: 3_334, BOB: 3_333, CAROL: 3_333}))], attribution_bps=1_000)
    assert rewards.amounts == ((ALICE, 4), (BOB, 3), (CAROL, 3))
    even = epoch_rewards([(30, attribution({CAROL: 5_000, BOB: 5_000}))], attribution_bps=10_000)
    assert even.amounts == ((BOB, 15), (CAROL, 15))
    tie = epoch_rewards([(3, attribution({CAROL: 5_000, BOB: 5_000}))], attribution_bps=10_000)
    assert tie.amounts == ((BOB, 2), (CAROL, 1))


def test_unattributed_answers_leave_their_share_to_the_others() -> None:
    rewards = epoch_rewards([(1_000, NOTHING), (1_000, attribution({BOB: 10_000}))], attribution_bps=5_000)
    assert rewards.amounts == ((BOB, 1_000),)
    with pytest.raises(RewardsError, match="drew on any contribution"):
        epoch_rewards([(1_000, NOTHING)], attribution_bps=5_000)


def test_nothing_owed_means_no_tree_and_a_zero_root() -> None:
    rewards = epoch_rewards([(9, attribution({ALICE: 10_000}))], attribution_bps=1_000)  # 0.9 wei rounds down to 0
    assert (rewards.rewards_total, rewards.amounts, rewards.tree, rewards.root) == (0, (), None, b"\x00" * 32)
    assert epoch_rewards([], attribution_bps=2_000).root == b"\x00" * 32
    with pytest.raises(RewardsError):
        epoch_rewards([(-1, NOTHING)], attribution_bps=2_000)
    with pytest.raises(RewardsError):
        epoch_rewards([], attribution_bps=10_001)


def test_proofs_lead_to_the_root_and_unknown_contributors_have_none() -> None:
    rewards = epoch_rewards([(10**18, attribution({ALICE: 7_000, BOB: 2_000, CAROL: 1_000}))], attribution_bps=2_000)
    for contributor, amount in rewards.amounts:
        assert verify(rewards.root, reward_leaf(contributor, amount), rewards.proof(contributor.lower()))
    with pytest.raises(KeyError):
        rewards.proof("0x" + "44" * 20)


@given(
    receipts=st.lists(
        st.tuples(st.integers(0, 10**24), st.lists(st.integers(1, 100), min_size=1, max_size=3)),
        min_size=1,
        max_size=12,
    ),
    attribution_bps=st.integers(0, 10_000),
)
def test_rewards_add_up_exactly_to_the_funded_total(receipts, attribution_bps) -> None:
    pairs = []
    for fee, parts in receipts:
        points = [part * 10_000 // sum(parts) for part in parts]
        points[0] += 10_000 - sum(points)
        pairs.append((fee, attribution(dict(zip((ALICE, BOB, CAROL), points, strict=False)))))
    rewards = epoch_rewards(pairs, attribution_bps=attribution_bps)
    assert rewards.rewards_total == sum(fee for fee, _ in receipts) * attribution_bps // 10_000
    assert sum(amount for _, amount in rewards.amounts) == rewards.rewards_total
    assert all(amount > 0 for _, amount in rewards.amounts)


@pytest.mark.chain
async def test_contributors_claim_their_rewards_on_anvil_with_these_proofs(
    w3: AsyncWeb3[Any], deployment: Deployment, deployer: Transactor, keys: list[LocalAccount]
) -> None:
    token = deployment.contract(w3, "OpenToken")
    await deployer.send(token.functions.transfer(keys[1].address, to_wei_open(10_000)))
    agent, anyone = StakingClient(w3, deployment, keys[1]), StakingClient(w3, deployment, keys[3])
    contributors = [key.address for key in keys[4:7]]
    params = deployment.parameters
    await agent.stake(Role.AGENT, params.min_agent_stake)
    await agent.register_agent(keys[2].address, b"\x01" * 32, to_wei_open(1), "http://agent")

    paid = [
        (to_wei_open("0.7"), attribution(dict(zip(contributors, (6_000, 4_000), strict=False)))),
        (to_wei_open("1.3"), attribution(dict(zip(contributors, (1, 3_333, 6_666), strict=True)))),
        (to_wei_open("0.01"), NOTHING),
    ]
    rewards: EpochRewards = epoch_rewards(paid, attribution_bps=params.attribution_bps)
    receipts = MerkleTree([secrets.token_bytes(32) for _ in paid])
    await agent.commit_epoch(1, receipts.root, len(paid), rewards.fee_total, rewards.root, rewards.rewards_total)
    assert (await agent.epoch(agent.address, 1)).status is EpochStatus.COMMITTED

    await advance_time(w3, params.disputes.challenge_window + 1)
    first, *others = contributors
    before = {c: await anyone.balance_of(c) for c in contributors}
    assert await anyone.claim_rewards(first, [rewards.claim(agent.address, 1, first)]) == rewards.amount_of(first)
    for contributor in others:
        _, _, amount, proof = rewards.claim(agent.address, 1, contributor)
        await anyone.claim_reward(agent.address, 1, contributor, amount, proof)
    assert {c: await anyone.balance_of(c) - before[c] for c in contributors} == dict(rewards.amounts)
    assert (await agent.epoch(agent.address, 1)).rewards_claimed == rewards.rewards_total
