// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IAgentStaking} from "./IAgentStaking.sol";

/// @title Epoch commitments of agents' receipts, and the data contributors' rewards they fund
/// @notice Every paid answer comes with an EIP-712 {Receipt} signed by a signer key bound to the agent's operator
/// (see {IAgentStaking-operatorOfSigner}). At the end of each of its epochs an agent commits the Merkle root of the
/// epoch's receipts and the Merkle root of the rewards it owes data contributors (Proof of Attribution), and funds
/// those rewards in OPEN. Contributors claim their reward with a Merkle proof once the epoch's challenge window has
/// passed and while no dispute on the epoch is open in the dispute manager.
///
/// Epochs are numbered by each agent, and the numbers must strictly increase from one commit to the next (the first
/// committed epoch is at least 1). An epoch number below the agent's latest committed epoch that was never committed
/// is *skipped*: a receipt signed for it can never be proven included, so the dispute manager treats it as withheld.
///
/// Merkle trees follow OpenZeppelin's StandardMerkleTree: leaves are hashed twice (so no inner node can pass for a
/// leaf) and pairs are hashed sorted, as {MerkleProof} verifies them.
/// - Receipt leaf: `keccak256(bytes.concat(keccak256(abi.encode(receiptStructHash))))`; the leaves of an epoch are
///   its receipts in `seq` order, `seq` running from 0 to `receiptCount - 1`.
/// - Reward leaf: `keccak256(bytes.concat(keccak256(abi.encode(contributor, amount))))` with types
///   `(address, uint256)`; one leaf per contributor and epoch, carrying the contributor's whole reward.
interface IReceiptRegistry {
    /// @notice What an agent signs for every paid answer (EIP-712 type `Receipt`, domain "ReceiptRegistry", "1").
    /// @param agent the operator address of the agent (not its signer key).
    /// @param requestId unique id of the request; one request has exactly one receipt.
    /// @param requestHash keccak256 of the RFC 8785 canonical JSON of the request.
    /// @param outputHash keccak256 of the canonical JSON of the output.
    /// @param modelId keccak256 over the served model's weight files, as registered in the DatanetRegistry.
    /// @param engineHash keccak256 over engine name and version, dtype, sampling parameters and seed.
    /// @param attributionHash keccak256 of the canonical JSON of the attribution (contributors and weights).
    /// @param payer who paid for the request; refunded out of the slash when a challenge of the answer is upheld.
    /// @param price what the payer paid, in OPEN wei.
    /// @param epoch the agent's epoch the receipt belongs to.
    /// @param seq position of the receipt among the epoch's receipts, from 0.
    struct Receipt {
        address agent;
        bytes32 requestId;
        bytes32 requestHash;
        bytes32 outputHash;
        bytes32 modelId;
        bytes32 engineHash;
        bytes32 attributionHash;
        address payer;
        uint256 price;
        uint64 epoch;
        uint64 seq;
    }

    /// @notice Where an agent's epoch stands. `Pending`: not committed and not below the latest committed epoch (it
    /// may still come). `Committed`: committed. `Skipped`: below the latest committed epoch and never committed.
    enum EpochStatus {
        Pending,
        Committed,
        Skipped
    }

    /// @notice A committed epoch. Amounts are OPEN wei; OPEN's fixed supply (1e27 wei) fits every field.
    /// @param receiptsRoot Merkle root of the epoch's receipts.
    /// @param rewardsRoot Merkle root of the contributors' rewards.
    /// @param receiptCount number of receipts (leaves) in the epoch.
    /// @param committedAt block time of the commit.
    /// @param challengeDeadline last block time at which a dispute on the epoch may be opened; contributors claim
    /// after it. Fixed at commit time with the dispute manager's challenge window of that moment.
    /// @param feeTotal sum of the prices of the epoch's receipts, as reported by the agent.
    /// @param rewardsTotal OPEN funded for the rewards at commit.
    /// @param rewardsClaimed OPEN claimed so far; never exceeds `rewardsTotal`.
    struct EpochCommitment {
        bytes32 receiptsRoot;
        bytes32 rewardsRoot;
        uint64 receiptCount;
        uint48 committedAt;
        uint48 challengeDeadline;
        uint96 feeTotal;
        uint128 rewardsTotal;
        uint128 rewardsClaimed;
    }

    /// @notice One claim of a batch: `amount` to the contributor out of `agent`'s `epoch`.
    struct RewardClaim {
        address agent;
        uint64 epoch;
        uint256 amount;
        bytes32[] proof;
    }

    /// @notice `agent` committed `epoch` and funded `rewardsTotal`; disputes may be opened on the epoch until
    /// `challengeDeadline`.
    event EpochCommitted(
        address indexed agent,
        uint64 indexed epoch,
        bytes32 receiptsRoot,
        uint256 receiptCount,
        uint256 feeTotal,
        bytes32 rewardsRoot,
        uint256 rewardsTotal,
        uint256 challengeDeadline
    );

    /// @notice `contributor` was paid its reward `amount` out of `agent`'s `epoch`.
    event RewardClaimed(address indexed agent, uint64 indexed epoch, address indexed contributor, uint256 amount);

    /// @notice Agents must now fund at least `attributionBps` basis points of an epoch's fees as rewards.
    event AttributionBpsSet(uint256 attributionBps);

    /// @notice `disputeManager` became the dispute manager. It is set once.
    event DisputeManagerSet(address indexed disputeManager);

    /// @notice The zero address was given where an account is needed.
    error ReceiptRegistryZeroAddress();

    /// @notice The dispute manager is already set to `disputeManager`.
    error ReceiptRegistryDisputeManagerAlreadySet(address disputeManager);

    /// @notice `disputeManager` serves the receipt registry `registry`, not this one.
    error ReceiptRegistryDisputeManagerMismatch(address disputeManager, address registry);

    /// @notice Epochs cannot be committed before the dispute manager is set.
    error ReceiptRegistryDisputeManagerNotSet();

    /// @notice `attributionBps` exceeds `max`.
    error ReceiptRegistryInvalidAttributionBps(uint256 attributionBps, uint256 max);

    /// @notice `agent` is not an active agent (registered, with at least the minimum Agent stake).
    error ReceiptRegistryNotActiveAgent(address agent);

    /// @notice `epoch` does not exceed `agent`'s latest committed epoch `latestEpoch`.
    error ReceiptRegistryEpochNotIncreasing(address agent, uint64 epoch, uint64 latestEpoch);

    /// @notice `agent`'s commit of `epoch` has no receipts: a zero receipts root or a zero count.
    error ReceiptRegistryEmptyEpoch(address agent, uint64 epoch);

    /// @notice `agent`'s commit of `epoch` funds `rewardsTotal` but has a zero rewards root, so nobody could claim.
    error ReceiptRegistryMissingRewardsRoot(address agent, uint64 epoch, uint256 rewardsTotal);

    /// @notice The commit funds `rewardsTotal`, less than the `required` share of its fees.
    error ReceiptRegistryInsufficientRewards(uint256 rewardsTotal, uint256 required);

    /// @notice `agent` never committed `epoch`.
    error ReceiptRegistryEpochNotCommitted(address agent, uint64 epoch);

    /// @notice Rewards of `agent`'s `epoch` are claimable only after `challengeDeadline`.
    error ReceiptRegistryChallengeWindowOpen(address agent, uint64 epoch, uint256 challengeDeadline);

    /// @notice `openDisputes` disputes on `agent`'s `epoch` are open; rewards are claimable once they are resolved.
    error ReceiptRegistryEpochDisputed(address agent, uint64 epoch, uint256 openDisputes);

    /// @notice `contributor` was already paid out of `agent`'s `epoch`.
    error ReceiptRegistryAlreadyClaimed(address agent, uint64 epoch, address contributor);

    /// @notice The proof does not show that `contributor` is owed `amount` out of `agent`'s `epoch`.
    error ReceiptRegistryInvalidProof(address agent, uint64 epoch, address contributor, uint256 amount);

    /// @notice Paying `amount` out of `agent`'s `epoch` would exceed what the agent funded: only `remaining` is left.
    /// Only a rewards tree whose leaves add up to more than its funding gets here.
    error ReceiptRegistryRewardsExhausted(address agent, uint64 epoch, uint256 amount, uint256 remaining);

    /// @notice Commits the caller's `epoch` and pulls `rewardsTotal` OPEN from it (needs an allowance).
    /// @dev The caller must be an active agent; `epoch` must exceed its latest committed epoch; `rewardsTotal` must be
    /// at least `feeTotal * attributionBps / 10_000`.
    /// @param receiptsRoot Merkle root of the epoch's receipts (see the leaf format above).
    /// @param receiptCount number of receipts in the epoch.
    /// @param feeTotal sum of the receipts' prices.
    /// @param rewardsRoot Merkle root of the contributors' rewards; may be zero only when `rewardsTotal` is zero.
    /// @param rewardsTotal OPEN funded for the rewards; the rewards tree should add up to exactly this.
    function commitEpoch(
        uint64 epoch,
        bytes32 receiptsRoot,
        uint64 receiptCount,
        uint256 feeTotal,
        bytes32 rewardsRoot,
        uint256 rewardsTotal
    ) external;

    /// @notice Pays `contributor` its `amount` out of `agent`'s `epoch`. Anyone may call it; the reward always goes
    /// to `contributor`.
    /// @dev Reverts unless the epoch was committed, its challenge window has passed, no dispute on it is open, the
    /// contributor was not paid out of it before and `proof` shows the reward leaf in the rewards root.
    function claimReward(address agent, uint64 epoch, address contributor, uint256 amount, bytes32[] calldata proof)
        external;

    /// @notice Pays `contributor` the rewards of several epochs (of one or several agents) in one transfer. Any bad
    /// claim reverts the whole batch.
    /// @return total what was paid.
    function claimRewards(address contributor, RewardClaim[] calldata claims) external returns (uint256 total);

    /// @notice Sets the share of fees, in basis points, that an epoch must fund as rewards. Owner only; at most
    /// 10_000. Applies to later commits.
    function setAttributionBps(uint256 attributionBps) external;

    /// @notice Sets the dispute manager, once; it must serve this registry. Owner only.
    function setDisputeManager(address disputeManager) external;

    /// @notice The reward token (OPEN).
    function token() external view returns (IERC20);

    /// @notice The staking contract that says who is an active agent.
    function staking() external view returns (IAgentStaking);

    /// @notice The dispute manager, or zero before it is set.
    function disputeManager() external view returns (address);

    /// @notice The share of fees, in basis points, that an epoch must fund as rewards.
    function attributionBps() external view returns (uint256);

    /// @notice `agent`'s latest committed epoch, or zero if it committed none.
    function latestEpoch(address agent) external view returns (uint64);

    /// @notice `agent`'s commitment of `epoch` (all zero when not committed).
    function epochCommitment(address agent, uint64 epoch) external view returns (EpochCommitment memory);

    /// @notice Where `agent`'s `epoch` stands, and the last block time at which a dispute on it may be opened: the
    /// epoch's own deadline when committed, the deadline of the agent's latest commit when skipped (so a receipt of
    /// a skipped epoch can be challenged as long as the agent keeps committing, and for one window after), zero when
    /// pending.
    function epochStatus(address agent, uint64 epoch)
        external
        view
        returns (EpochStatus status, uint256 challengeDeadline);

    /// @notice Whether `contributor` was paid out of `agent`'s `epoch`.
    function isClaimed(address agent, uint64 epoch, address contributor) external view returns (bool);

    /// @notice Whether the receipt with struct hash `receiptStructHash`, signed for `agent`'s `epoch` at position
    /// `seq`, is in that epoch's committed receipts: the epoch is committed, `seq < receiptCount` and `proof` shows
    /// the receipt's leaf in the receipts root.
    /// @dev The caller vouches that `agent`, `epoch` and `seq` are the fields of the hashed receipt.
    function verifyInclusion(
        address agent,
        uint64 epoch,
        uint64 seq,
        bytes32 receiptStructHash,
        bytes32[] calldata proof
    ) external view returns (bool);

    /// @notice The EIP-712 struct hash of `receipt`.
    function receiptStructHash(Receipt calldata receipt) external pure returns (bytes32);

    /// @notice The EIP-712 digest the agent's signer signs for `receipt`, under this contract's domain.
    function receiptDigest(Receipt calldata receipt) external view returns (bytes32);

    /// @notice The Merkle leaf of `receipt` in its epoch's receipts tree.
    function receiptLeaf(Receipt calldata receipt) external pure returns (bytes32);

    /// @notice The Merkle leaf of `contributor`'s reward `amount` in a rewards tree.
    function rewardLeaf(address contributor, uint256 amount) external pure returns (bytes32);
}
