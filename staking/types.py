"""Python mirrors of the contracts' enums and structs, as the client returns them. Amounts are wei (int)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

__all__ = [
    "AgentInfo",
    "Channel",
    "ChannelState",
    "Contribution",
    "Datanet",
    "Dispute",
    "DisputeKind",
    "DisputeState",
    "EpochCommitment",
    "EpochStatus",
    "Model",
    "Role",
    "StakeInfo",
    "Unbonding",
]


class Role(IntEnum):
    """IAgentStaking.Role."""

    AGENT = 0
    VALIDATOR = 1


class ChannelState(IntEnum):
    """IPaymentChannels.ChannelState."""

    NONE = 0
    OPEN = 1
    CLOSING = 2
    CLOSED = 3


class EpochStatus(IntEnum):
    """IReceiptRegistry.EpochStatus."""

    PENDING = 0
    COMMITTED = 1
    SKIPPED = 2


class DisputeKind(IntEnum):
    """IDisputeManager.DisputeKind."""

    EQUIVOCATION = 0
    WITHHOLDING = 1
    OUTPUT = 2
    ATTRIBUTION = 3
    TOTALS = 4


class DisputeState(IntEnum):
    """IDisputeManager.DisputeState."""

    NONE = 0
    OPEN = 1
    UPHELD = 2
    REJECTED = 3


@dataclass(frozen=True)
class Unbonding:
    amount: int
    unlock_time: int


@dataclass(frozen=True)
class StakeInfo:
    """An operator's stake in one role."""

    operator: str
    role: Role
    active: int
    unbonding: int
    slashable: int
    entries: tuple[Unbonding, ...]


@dataclass(frozen=True)
class AgentInfo:
    """An agent's registration; ``signer`` is the zero address when not registered."""

    operator: str
    signer: str
    model_id: bytes
    price: int
    endpoint: str
    active: bool


@dataclass(frozen=True)
class Channel:
    channel_id: bytes
    payer: str
    receiver: str
    state: ChannelState
    deposit: int
    claimed: int
    withdrawable_at: int

    @property
    def remaining(self) -> int:
        """What the receiver can still be paid."""
        return self.deposit - self.claimed


@dataclass(frozen=True)
class EpochCommitment:
    agent: str
    epoch: int
    status: EpochStatus
    receipts_root: bytes
    rewards_root: bytes
    receipt_count: int
    committed_at: int
    challenge_deadline: int
    fee_total: int
    rewards_total: int
    rewards_claimed: int


@dataclass(frozen=True)
class Dispute:
    dispute_id: int
    agent: str
    kind: DisputeKind
    state: DisputeState
    epoch: int
    challenger: str
    deadline: int
    snapshot_block: int
    receipt_hash: bytes
    payer: str
    refund: int
    bond: int
    seq: int
    uphold_weight: int
    reject_weight: int


@dataclass(frozen=True)
class Datanet:
    datanet_id: int
    owner: str
    created_at: int
    contribution_count: int
    metadata_uri: str


@dataclass(frozen=True)
class Contribution:
    content_hash: bytes
    contributor: str
    added_at: int


@dataclass(frozen=True)
class Model:
    model_id: bytes
    owner: str
    registered_at: int
    index_root: bytes
    datanet_ids: tuple[int, ...]
    metadata_uri: str
