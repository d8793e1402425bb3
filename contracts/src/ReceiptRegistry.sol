// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IAgentStaking} from "./interfaces/IAgentStaking.sol";
import {IDisputeManager} from "./interfaces/IDisputeManager.sol";
import {IReceiptRegistry} from "./interfaces/IReceiptRegistry.sol";

/// @title Epoch commitments of agents' receipts, and the data contributors' rewards they fund
/// @notice See {IReceiptRegistry}. Owns the EIP-712 domain ("ReceiptRegistry", "1") receipts are signed under.
/// @dev Holds exactly the funded and not yet claimed rewards of all epochs: every epoch's claims are capped by its
/// funding, so a rewards tree whose leaves add up to more than it funded can never reach another epoch's OPEN.
/// Unclaimed rewards stay claimable forever; nothing here can move them elsewhere.
contract ReceiptRegistry is IReceiptRegistry, EIP712, Ownable2Step {
    using SafeERC20 for IERC20;

    /// @notice The EIP-712 type hash of {IReceiptRegistry-Receipt}.
    bytes32 public constant RECEIPT_TYPEHASH = keccak256(
        "Receipt(address agent,bytes32 requestId,bytes32 requestHash,bytes32 outputHash,bytes32 modelId,bytes32 engineHash,bytes32 attributionHash,address payer,uint256 price,uint64 epoch,uint64 seq)"
    );

    /// @notice The largest attribution share: all of the fees.
    uint256 public constant MAX_ATTRIBUTION_BPS = 10_000;

    uint256 private constant _BPS = 10_000;

    IERC20 private immutable _token;
    IAgentStaking private immutable _staking;

    IDisputeManager private _disputeManager;
    uint16 private _attributionBps;

    mapping(address agent => uint64 epoch) private _latestEpoch;
    mapping(address agent => mapping(uint64 epoch => EpochCommitment)) private _epochs;
    mapping(address agent => mapping(uint64 epoch => mapping(address contributor => bool claimed))) private _claimed;

    /// @param staking_ the staking contract; its token is the reward token.
    /// @param initialOwner may set the attribution share and the dispute manager (two-step ownership transfer).
    /// @param attributionBps_ the share of fees an epoch must fund as rewards, at most {MAX_ATTRIBUTION_BPS}.
    constructor(IAgentStaking staking_, address initialOwner, uint256 attributionBps_)
        EIP712("ReceiptRegistry", "1")
        Ownable(initialOwner)
    {
        if (address(staking_) == address(0)) revert ReceiptRegistryZeroAddress();
        _staking = staking_;
        _token = staking_.token();
        _setAttributionBps(attributionBps_);
    }

    // ------------------------------------------------------------------------------------------------------------
    // Commits and claims
    // ------------------------------------------------------------------------------------------------------------

    /// @inheritdoc IReceiptRegistry
    function commitEpoch(
        uint64 epoch,
        bytes32 receiptsRoot,
        uint64 receiptCount,
        uint256 feeTotal,
        bytes32 rewardsRoot,
        uint256 rewardsTotal
    ) external {
        IDisputeManager disputeManager_ = _disputeManager;
        if (address(disputeManager_) == address(0)) revert ReceiptRegistryDisputeManagerNotSet();
        if (!_staking.isActiveAgent(msg.sender)) revert ReceiptRegistryNotActiveAgent(msg.sender);
        uint64 latest = _latestEpoch[msg.sender];
        if (epoch <= latest) revert ReceiptRegistryEpochNotIncreasing(msg.sender, epoch, latest);
        if (receiptsRoot == bytes32(0) || receiptCount == 0) revert ReceiptRegistryEmptyEpoch(msg.sender, epoch);
        if (rewardsTotal != 0 && rewardsRoot == bytes32(0)) {
            revert ReceiptRegistryMissingRewardsRoot(msg.sender, epoch, rewardsTotal);
        }
        uint96 fees = SafeCast.toUint96(feeTotal);
        // `fees` < 2^96 and the share <= 10_000 < 2^14, so the product fits easily in 256 bits.
        uint256 required = uint256(fees) * _attributionBps / _BPS;
        if (rewardsTotal < required) revert ReceiptRegistryInsufficientRewards(rewardsTotal, required);
        uint48 deadline = SafeCast.toUint48(block.timestamp + disputeManager_.challengeWindow());

        _latestEpoch[msg.sender] = epoch;
        _epochs[msg.sender][epoch] = EpochCommitment({
            receiptsRoot: receiptsRoot,
            rewardsRoot: rewardsRoot,
            receiptCount: receiptCount,
            committedAt: SafeCast.toUint48(block.timestamp),
            challengeDeadline: deadline,
            feeTotal: fees,
            rewardsTotal: SafeCast.toUint128(rewardsTotal),
            rewardsClaimed: 0
        });
        emit EpochCommitted(
            msg.sender, epoch, receiptsRoot, receiptCount, feeTotal, rewardsRoot, rewardsTotal, deadline
        );

        if (rewardsTotal != 0) _token.safeTransferFrom(msg.sender, address(this), rewardsTotal);
    }

    /// @inheritdoc IReceiptRegistry
    function claimReward(address agent, uint64 epoch, address contributor, uint256 amount, bytes32[] calldata proof)
        external
    {
        IDisputeManager disputeManager_ = _disputeManager;
        _claim(disputeManager_, agent, epoch, contributor, amount, proof);
        if (amount != 0) _token.safeTransfer(contributor, amount);
    }

    /// @inheritdoc IReceiptRegistry
    function claimRewards(address contributor, RewardClaim[] calldata claims) external returns (uint256 total) {
        IDisputeManager disputeManager_ = _disputeManager;
        for (uint256 i = 0; i < claims.length; ++i) {
            RewardClaim calldata c = claims[i];
            _claim(disputeManager_, c.agent, c.epoch, contributor, c.amount, c.proof);
            total += c.amount;
        }
        if (total != 0) _token.safeTransfer(contributor, total);
    }

    // ------------------------------------------------------------------------------------------------------------
    // Administration
    // ------------------------------------------------------------------------------------------------------------

    /// @inheritdoc IReceiptRegistry
    function setAttributionBps(uint256 attributionBps_) external onlyOwner {
        _setAttributionBps(attributionBps_);
    }

    /// @inheritdoc IReceiptRegistry
    function setDisputeManager(address disputeManager_) external onlyOwner {
        if (address(_disputeManager) != address(0)) {
            revert ReceiptRegistryDisputeManagerAlreadySet(address(_disputeManager));
        }
        if (disputeManager_ == address(0)) revert ReceiptRegistryZeroAddress();
        address registry = address(IDisputeManager(disputeManager_).receiptRegistry());
        if (registry != address(this)) revert ReceiptRegistryDisputeManagerMismatch(disputeManager_, registry);

        _disputeManager = IDisputeManager(disputeManager_);
        emit DisputeManagerSet(disputeManager_);
    }

    // ------------------------------------------------------------------------------------------------------------
    // Views
    // ------------------------------------------------------------------------------------------------------------

    /// @inheritdoc IReceiptRegistry
    function token() external view returns (IERC20) {
        return _token;
    }

    /// @inheritdoc IReceiptRegistry
    function staking() external view returns (IAgentStaking) {
        return _staking;
    }

    /// @inheritdoc IReceiptRegistry
    function disputeManager() external view returns (address) {
        return address(_disputeManager);
    }

    /// @inheritdoc IReceiptRegistry
    function attributionBps() external view returns (uint256) {
        return _attributionBps;
    }

    /// @inheritdoc IReceiptRegistry
    function latestEpoch(address agent) external view returns (uint64) {
        return _latestEpoch[agent];
    }

    /// @inheritdoc IReceiptRegistry
    function epochCommitment(address agent, uint64 epoch) external view returns (EpochCommitment memory) {
        return _epochs[agent][epoch];
    }

    /// @inheritdoc IReceiptRegistry
    function epochStatus(address agent, uint64 epoch)
        external
        view
        returns (EpochStatus status, uint256 challengeDeadline)
    {
        EpochCommitment storage commitment = _epochs[agent][epoch];
        if (commitment.committedAt != 0) return (EpochStatus.Committed, commitment.challengeDeadline);
        uint64 latest = _latestEpoch[agent];
        if (epoch < latest) return (EpochStatus.Skipped, _epochs[agent][latest].challengeDeadline);
        return (EpochStatus.Pending, 0);
    }

    /// @inheritdoc IReceiptRegistry
    function isClaimed(address agent, uint64 epoch, address contributor) external view returns (bool) {
        return _claimed[agent][epoch][contributor];
    }

    /// @inheritdoc IReceiptRegistry
    function verifyInclusion(
        address agent,
        uint64 epoch,
        uint64 seq,
        bytes32 receiptStructHash_,
        bytes32[] calldata proof
    ) external view returns (bool) {
        EpochCommitment storage commitment = _epochs[agent][epoch];
        // An epoch that was never committed has a zero root and count: the `seq` check fails first.
        return seq < commitment.receiptCount
            && MerkleProof.verifyCalldata(proof, commitment.receiptsRoot, _receiptLeaf(receiptStructHash_));
    }

    /// @inheritdoc IReceiptRegistry
    function receiptStructHash(Receipt calldata receipt) external pure returns (bytes32) {
        return _receiptStructHash(receipt);
    }

    /// @inheritdoc IReceiptRegistry
    function receiptDigest(Receipt calldata receipt) external view returns (bytes32) {
        return _hashTypedDataV4(_receiptStructHash(receipt));
    }

    /// @inheritdoc IReceiptRegistry
    function receiptLeaf(Receipt calldata receipt) external pure returns (bytes32) {
        return _receiptLeaf(_receiptStructHash(receipt));
    }

    /// @inheritdoc IReceiptRegistry
    function rewardLeaf(address contributor, uint256 amount) external pure returns (bytes32) {
        return _rewardLeaf(contributor, amount);
    }

    // ------------------------------------------------------------------------------------------------------------
    // Internal
    // ------------------------------------------------------------------------------------------------------------

    /// @dev Checks and records one claim; the caller pays. Checks the cheap conditions before the dispute manager
    /// call and the proof.
    function _claim(
        IDisputeManager disputeManager_,
        address agent,
        uint64 epoch,
        address contributor,
        uint256 amount,
        bytes32[] calldata proof
    ) private {
        EpochCommitment storage commitment = _epochs[agent][epoch];
        if (commitment.committedAt == 0) revert ReceiptRegistryEpochNotCommitted(agent, epoch);
        uint256 deadline = commitment.challengeDeadline;
        if (block.timestamp <= deadline) revert ReceiptRegistryChallengeWindowOpen(agent, epoch, deadline);
        if (_claimed[agent][epoch][contributor]) revert ReceiptRegistryAlreadyClaimed(agent, epoch, contributor);
        // A committed epoch implies a set dispute manager: commits need it.
        uint256 openDisputes = disputeManager_.openDisputeCount(agent, epoch);
        if (openDisputes != 0) revert ReceiptRegistryEpochDisputed(agent, epoch, openDisputes);
        if (!MerkleProof.verifyCalldata(proof, commitment.rewardsRoot, _rewardLeaf(contributor, amount))) {
            revert ReceiptRegistryInvalidProof(agent, epoch, contributor, amount);
        }
        uint256 claimed = commitment.rewardsClaimed;
        uint256 remaining = commitment.rewardsTotal - claimed;
        if (amount > remaining) revert ReceiptRegistryRewardsExhausted(agent, epoch, amount, remaining);

        _claimed[agent][epoch][contributor] = true;
        // casting to 'uint128' is safe because `amount <= remaining`: the sum is at most `rewardsTotal`, a uint128.
        // forge-lint: disable-next-line(unsafe-typecast)
        commitment.rewardsClaimed = uint128(claimed + amount);
        emit RewardClaimed(agent, epoch, contributor, amount);
    }

    function _setAttributionBps(uint256 attributionBps_) private {
        if (attributionBps_ > MAX_ATTRIBUTION_BPS) {
            revert ReceiptRegistryInvalidAttributionBps(attributionBps_, MAX_ATTRIBUTION_BPS);
        }
        // casting to 'uint16' is safe because the value was just bounded by MAX_ATTRIBUTION_BPS = 10_000 < 2^16.
        // forge-lint: disable-next-line(unsafe-typecast)
        _attributionBps = uint16(attributionBps_);
        emit AttributionBpsSet(attributionBps_);
    }

    /// @dev The EIP-712 struct hash. Every field of a receipt is a static type, so `abi.encode` of the struct is
    /// exactly the concatenation of its 32-byte encoded fields that EIP-712 specifies.
    function _receiptStructHash(Receipt calldata receipt) private pure returns (bytes32) {
        return keccak256(abi.encode(RECEIPT_TYPEHASH, receipt));
    }

    /// @dev Double-hashed leaf (OpenZeppelin StandardMerkleTree): 64 bytes of an inner node can never be a leaf.
    function _receiptLeaf(bytes32 structHash) private pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(structHash))));
    }

    /// @dev Double-hashed leaf of a reward, as StandardMerkleTree.of([[contributor, amount]], ["address", "uint256"]).
    function _rewardLeaf(address contributor, uint256 amount) private pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(contributor, amount))));
    }
}
