"""An epoch's contributor rewards: who gets how much, and the Merkle tree ReceiptRegistry.claimReward checks.

The agent funds ``rewardsTotal = feeTotal * attributionBps // 10_000`` at commit (the least the registry accepts,
floor division as on chain). That total is split among contributors in proportion to
``sum(fee * bps)`` over the epoch's receipts: each paid answer passes on its fee's share to the contributors it drew
on, by their basis points. An answer that drew on no data passes its share to ``unattributed``: the owner of the
first datanet registered with the model (its curator), which the agent and every validator read from
DatanetRegistry alike. Without one, such answers credit nobody and the total goes to the contributors of the other
receipts, so every funded wei can be claimed. The split is exact (integers and fractions)
and rounded once, by the largest remainder method with ties to the lower address, so the amounts add up to exactly
``rewardsTotal`` and every validator computes the same tree.

Leaves are ``staking.merkle.reward_leaf(contributor, amount)`` in address order, one per contributor with a
positive amount.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from staking.merkle import MerkleTree, reward_leaf

from ._apportion import apportion
from .errors import RewardsError
from .protocol import BPS, Attribution, ContributorWeight

__all__ = ["EpochRewards", "epoch_rewards"]

_ZERO_ROOT = b"\x00" * 32


@dataclass(frozen=True)
class EpochRewards:
    """The rewards of one epoch of one agent.

    Example:
        >>> rewards = epoch_rewards([(fee, attribution) for fee, attribution in paid], attribution_bps=2_000)
        ...                                                                               # doctest: +SKIP
        >>> await agent.commit_epoch(epoch, receipts_root, count, rewards.fee_total, rewards.root,
        ...                          rewards.rewards_total)                               # doctest: +SKIP
        >>> await anyone.claim_rewards(alice, [rewards.claim(agent.address, epoch, alice)])  # doctest: +SKIP

    Attributes:
        fee_total: the fees of the epoch's receipts (wei).
        rewards_total: what the agent funds: ``fee_total * attribution_bps // 10_000``.
        amounts: each rewarded contributor's amount (wei), by address; they add up to ``rewards_total``.
        tree: the Merkle tree of the reward leaves, ``None`` when nothing is owed.
    """

    fee_total: int
    rewards_total: int
    amounts: tuple[tuple[str, int], ...]
    tree: MerkleTree | None = field(compare=False)

    @property
    def root(self) -> bytes:
        """The rewards root to commit; zero when nothing is owed (the registry accepts that only then)."""
        return self.tree.root if self.tree else _ZERO_ROOT

    def amount_of(self, contributor: str) -> int:
        """The reward of ``contributor`` (any case), 0 when it has none."""
        wanted = int(contributor, 16)
        return next((amount for address, amount in self.amounts if int(address, 16) == wanted), 0)

    def proof(self, contributor: str) -> list[bytes]:
        """The Merkle proof of ``contributor``'s reward leaf.

        Raises:
            KeyError: ``contributor`` has no reward this epoch.
        """
        wanted = int(contributor, 16)
        for position, (address, _) in enumerate(self.amounts):
            if int(address, 16) == wanted and self.tree is not None:
                return self.tree.proof(position)
        raise KeyError(f"{contributor} has no reward this epoch")

    def claim(self, agent: str, epoch: int, contributor: str) -> tuple[str, int, int, list[bytes]]:
        """``(agent, epoch, amount, proof)``: one claim for ``StakingClient.claim_rewards``.

        Raises:
            KeyError: ``contributor`` has no reward this epoch.
        """
        proof = self.proof(contributor)
        return agent, epoch, self.amount_of(contributor), proof


def epoch_rewards(
    receipts: Iterable[tuple[int, Attribution]], *, attribution_bps: int, unattributed: str | None = None
) -> EpochRewards:
    """The rewards of an epoch from its receipts' ``(fee, attribution)`` pairs.

    Args:
        receipts: every receipt of the epoch: its fee (wei) and its attribution.
        attribution_bps: the registry's ``attributionBps`` (the share of fees owed to contributors).
        unattributed: who is credited with the share of answers that drew on no data (checksummed address).

    Raises:
        RewardsError: a negative fee, ``attribution_bps`` outside 0..10,000, or rewards are owed but no receipt
            drew on any contribution (nobody could claim them).
    """
    if not 0 <= attribution_bps <= BPS:
        raise RewardsError(f"attribution_bps must be within 0..{BPS}, got {attribution_bps}")
    fee_total = 0
    weights: dict[str, int] = {}
    for fee, attribution in receipts:
        if fee < 0:
            raise RewardsError(f"a receipt has a negative fee ({fee})")
        fee_total += fee
        credited = attribution.weights
        if not credited and unattributed is not None:
            credited = (ContributorWeight(contributor=unattributed, bps=BPS),)
        for weight in credited:
            weights[weight.contributor] = weights.get(weight.contributor, 0) + fee * weight.bps
    rewards_total = fee_total * attribution_bps // BPS
    if rewards_total == 0:
        return EpochRewards(fee_total, 0, (), None)
    if not any(weights.values()):
        raise RewardsError(
            f"{rewards_total} wei of rewards are owed but no paid answer of the epoch drew on any contribution"
        )
    split = apportion(rewards_total, weights)
    amounts = tuple(
        (address, split[address]) for address in sorted(split, key=lambda address: int(address, 16)) if split[address]
    )
    tree = MerkleTree([reward_leaf(address, amount) for address, amount in amounts])
    return EpochRewards(fee_total, rewards_total, amounts, tree)
