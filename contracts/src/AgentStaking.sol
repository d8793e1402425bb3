// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {IERC6372} from "@openzeppelin/contracts/interfaces/IERC6372.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {Checkpoints} from "@openzeppelin/contracts/utils/structs/Checkpoints.sol";
import {Time} from "@openzeppelin/contracts/utils/types/Time.sol";
import {IAgentStaking} from "./interfaces/IAgentStaking.sol";
import {ISlashingAuthority} from "./interfaces/ISlashingAuthority.sol";

/// @title Stakes of agents and validators, agent registration, and slashing
/// @notice See {IAgentStaking}. Holds every staked OPEN; the only ways out are {withdraw} of unlocked stake and
/// {slash} by the dispute manager.
/// @dev Accounting: the token balance of this contract always equals the sum over operators and roles of active
/// plus unbonding stake. That needs a plain ERC-20 (no fee on transfer, no rebasing), which OPEN is. Active stake
/// lives only in its checkpoint trace (the latest checkpoint is the current value), so every change of it goes
/// through {_setActiveStake}, which also moves the role's total: the two can never disagree.
///
/// The clock is the block number (ERC-6372), as in OpenZeppelin's {Votes}. On chains whose `block.number` is an L1
/// block number (Arbitrum) several L2 blocks share a timepoint; lookups stay correct, only coarser.
contract AgentStaking is IAgentStaking, IERC6372, Ownable2Step {
    using Checkpoints for Checkpoints.Trace208;
    using SafeERC20 for IERC20;

    /// @notice The shortest unbonding period the owner may set, whatever the dispute manager needs.
    uint256 public constant MIN_UNBONDING_PERIOD = 1 hours;

    /// @notice The longest unbonding period the owner may set, so stake can never be locked indefinitely.
    uint256 public constant MAX_UNBONDING_PERIOD = 365 days;

    /// @notice The most unbonding entries an operator may hold per role; bounds the loops of {withdraw} and {slash}.
    uint256 public constant MAX_UNBONDINGS = 32;

    /// @notice The longest agent endpoint, in bytes.
    uint256 public constant MAX_ENDPOINT_LENGTH = 256;

    IERC20 private immutable _token;

    // `_disputeManager` and `_unbondingPeriod` share a slot: {requestUnstake} and {slash} read one word each.
    address private _disputeManager;
    uint64 private _unbondingPeriod;
    address private _treasury;

    mapping(Role role => uint256) private _minimumStake;
    mapping(address operator => mapping(Role role => Checkpoints.Trace208)) private _activeStake;
    mapping(Role role => Checkpoints.Trace208) private _totalActiveStake;
    mapping(address operator => mapping(Role role => Unbonding[])) private _unbondings;
    mapping(address operator => AgentInfo) private _agents;
    mapping(address signer => address operator) private _operatorOfSigner;

    /// @dev Reverts with {StakingUnauthorizedSlasher} unless called by the dispute manager (never before it is set).
    modifier onlyDisputeManager() {
        if (msg.sender != _disputeManager) revert StakingUnauthorizedSlasher(msg.sender);
        _;
    }

    /// @param token_ the staked token (OPEN).
    /// @param initialOwner may set the parameters and the dispute manager (two-step ownership transfer).
    /// @param treasury_ receives slashed stake that is not paid out.
    /// @param unbondingPeriod_ seconds from an unstake request to its unlock, within
    /// [{MIN_UNBONDING_PERIOD}, {MAX_UNBONDING_PERIOD}].
    /// @param minAgentStake minimum active stake of the Agent role.
    /// @param minValidatorStake minimum active stake of the Validator role.
    constructor(
        IERC20 token_,
        address initialOwner,
        address treasury_,
        uint256 unbondingPeriod_,
        uint256 minAgentStake,
        uint256 minValidatorStake
    ) Ownable(initialOwner) {
        if (address(token_) == address(0)) revert StakingZeroAddress();
        _token = token_;
        _setTreasury(treasury_);
        _setUnbondingPeriod(unbondingPeriod_);
        _setMinimumStake(Role.Agent, minAgentStake);
        _setMinimumStake(Role.Validator, minValidatorStake);
    }

    // ------------------------------------------------------------------------------------------------------------
    // Staking
    // ------------------------------------------------------------------------------------------------------------

    /// @inheritdoc IAgentStaking
    function stake(Role role, uint256 amount) external {
        if (amount == 0) revert StakingZeroAmount();
        uint256 newStake = _activeStake[msg.sender][role].latest() + amount;
        _checkMinimumStake(msg.sender, role, newStake);

        _setActiveStake(msg.sender, role, newStake);
        emit Staked(msg.sender, role, amount, newStake);

        _token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @inheritdoc IAgentStaking
    function requestUnstake(Role role, uint256 amount) external {
        if (amount == 0) revert StakingZeroAmount();
        uint256 currentStake = _activeStake[msg.sender][role].latest();
        if (amount > currentStake) revert StakingUnstakeExceedsStake(msg.sender, amount, currentStake);
        uint256 newStake = currentStake - amount;
        _checkMinimumStake(msg.sender, role, newStake);
        Unbonding[] storage entries = _unbondings[msg.sender][role];
        if (entries.length >= MAX_UNBONDINGS) revert StakingTooManyUnbondings(msg.sender, MAX_UNBONDINGS);

        _setActiveStake(msg.sender, role, newStake);
        uint64 unlockTime = SafeCast.toUint64(block.timestamp + _unbondingPeriod);
        entries.push(Unbonding({amount: SafeCast.toUint128(amount), unlockTime: unlockTime}));
        emit UnstakeRequested(msg.sender, role, amount, unlockTime);
    }

    /// @inheritdoc IAgentStaking
    function withdraw(Role role) external returns (uint256 amount) {
        Unbonding[] storage entries = _unbondings[msg.sender][role];
        // Backwards, so that the entry swapped into a freed index has already been looked at.
        for (uint256 i = entries.length; i > 0; --i) {
            Unbonding storage entry = entries[i - 1];
            if (entry.unlockTime <= block.timestamp) {
                amount += entry.amount;
                _removeUnbonding(entries, i - 1);
            }
        }
        if (amount == 0) revert StakingNothingToWithdraw(msg.sender);
        emit Withdrawn(msg.sender, role, amount);

        _token.safeTransfer(msg.sender, amount);
    }

    // ------------------------------------------------------------------------------------------------------------
    // Agent registration
    // ------------------------------------------------------------------------------------------------------------

    /// @inheritdoc IAgentStaking
    function registerAgent(address signer, bytes32 modelId, uint256 price, string calldata endpoint) external {
        if (_agents[msg.sender].signer != address(0)) revert StakingAgentAlreadyRegistered(msg.sender);
        _setAgent(msg.sender, signer, modelId, price, endpoint);
        emit AgentRegistered(msg.sender, signer, modelId, price, endpoint);
    }

    /// @inheritdoc IAgentStaking
    function updateAgent(address signer, bytes32 modelId, uint256 price, string calldata endpoint) external {
        if (_agents[msg.sender].signer == address(0)) revert StakingAgentNotRegistered(msg.sender);
        _setAgent(msg.sender, signer, modelId, price, endpoint);
        emit AgentUpdated(msg.sender, signer, modelId, price, endpoint);
    }

    // ------------------------------------------------------------------------------------------------------------
    // Slashing
    // ------------------------------------------------------------------------------------------------------------

    /// @inheritdoc IAgentStaking
    /// @dev Effects first (active stake, then entries), then {Slashed}, then the transfers. Paying this contract is
    /// skipped like paying zero: the tokens would stay here outside the stake accounting. Payouts are looked at twice
    /// (once to know the treasury's share for the event, once to pay); the second pass repeats the same arithmetic.
    function slash(address operator, Role role, uint256 amount, SlashPayout[] calldata payouts)
        external
        onlyDisputeManager
        returns (uint256 slashed)
    {
        if (amount == 0) return 0;
        uint256 currentStake = _activeStake[operator][role].latest();
        uint256 fromActive = Math.min(amount, currentStake);
        if (fromActive != 0) _setActiveStake(operator, role, currentStake - fromActive);
        slashed = fromActive;
        if (slashed < amount) slashed += _slashUnbondings(operator, role, amount - slashed);
        if (slashed == 0) return 0;

        uint256 toTreasury = slashed;
        for (uint256 i = 0; i < payouts.length; ++i) {
            toTreasury -= _payoutAmount(payouts[i], toTreasury);
        }
        emit Slashed(operator, role, slashed, fromActive, toTreasury);

        uint256 left = slashed;
        for (uint256 i = 0; i < payouts.length; ++i) {
            uint256 paid = _payoutAmount(payouts[i], left);
            if (paid == 0) continue;
            left -= paid;
            emit SlashPaid(operator, payouts[i].recipient, paid);
            _token.safeTransfer(payouts[i].recipient, paid);
        }
        if (left != 0) _token.safeTransfer(_treasury, left);
    }

    // ------------------------------------------------------------------------------------------------------------
    // Administration
    // ------------------------------------------------------------------------------------------------------------

    /// @inheritdoc IAgentStaking
    /// @dev The dispute manager must keep its {ISlashingAuthority-minUnbondingPeriod} within {unbondingPeriod} when
    /// it changes its own windows later; this contract checks it only here and in {setUnbondingPeriod}.
    function setDisputeManager(address disputeManager_) external onlyOwner {
        if (_disputeManager != address(0)) revert StakingDisputeManagerAlreadySet(_disputeManager);
        if (disputeManager_ == address(0)) revert StakingZeroAddress();
        uint256 minPeriod = Math.max(MIN_UNBONDING_PERIOD, ISlashingAuthority(disputeManager_).minUnbondingPeriod());
        if (_unbondingPeriod < minPeriod) {
            revert StakingInvalidUnbondingPeriod(_unbondingPeriod, minPeriod, MAX_UNBONDING_PERIOD);
        }
        _disputeManager = disputeManager_;
        emit DisputeManagerSet(disputeManager_);
    }

    /// @inheritdoc IAgentStaking
    /// @dev Raising the minimum does not touch existing stakes: an operator below the new minimum stays staked but
    /// is no longer active, and may top up to the minimum or leave entirely.
    function setMinimumStake(Role role, uint256 amount) external onlyOwner {
        _setMinimumStake(role, amount);
    }

    /// @inheritdoc IAgentStaking
    /// @dev Entries already unbonding keep their unlock time.
    function setUnbondingPeriod(uint256 period) external onlyOwner {
        _setUnbondingPeriod(period);
    }

    /// @inheritdoc IAgentStaking
    function setTreasury(address treasury_) external onlyOwner {
        _setTreasury(treasury_);
    }

    // ------------------------------------------------------------------------------------------------------------
    // Views
    // ------------------------------------------------------------------------------------------------------------

    /// @inheritdoc IERC6372
    function clock() public view returns (uint48) {
        return Time.blockNumber();
    }

    /// @inheritdoc IERC6372
    function CLOCK_MODE() external pure returns (string memory) {
        return "mode=blocknumber&from=default";
    }

    /// @inheritdoc IAgentStaking
    function token() external view returns (IERC20) {
        return _token;
    }

    /// @inheritdoc IAgentStaking
    function disputeManager() external view returns (address) {
        return _disputeManager;
    }

    /// @inheritdoc IAgentStaking
    function treasury() external view returns (address) {
        return _treasury;
    }

    /// @inheritdoc IAgentStaking
    function unbondingPeriod() external view returns (uint256) {
        return _unbondingPeriod;
    }

    /// @inheritdoc IAgentStaking
    function minimumStake(Role role) external view returns (uint256) {
        return _minimumStake[role];
    }

    /// @inheritdoc IAgentStaking
    function activeStake(address operator, Role role) public view returns (uint256) {
        return _activeStake[operator][role].latest();
    }

    /// @inheritdoc IAgentStaking
    function unbondingStake(address operator, Role role) external view returns (uint256 amount) {
        Unbonding[] storage entries = _unbondings[operator][role];
        for (uint256 i = 0; i < entries.length; ++i) {
            amount += entries[i].amount;
        }
    }

    /// @inheritdoc IAgentStaking
    function slashableStake(address operator, Role role) external view returns (uint256 amount) {
        amount = _activeStake[operator][role].latest();
        Unbonding[] storage entries = _unbondings[operator][role];
        for (uint256 i = 0; i < entries.length; ++i) {
            if (entries[i].unlockTime > block.timestamp) amount += entries[i].amount;
        }
    }

    /// @inheritdoc IAgentStaking
    function unbondings(address operator, Role role) external view returns (Unbonding[] memory) {
        return _unbondings[operator][role];
    }

    /// @inheritdoc IAgentStaking
    function totalActiveStake(Role role) external view returns (uint256) {
        return _totalActiveStake[role].latest();
    }

    /// @inheritdoc IAgentStaking
    function activeStakeAt(address operator, Role role, uint256 timepoint) external view returns (uint256) {
        return _activeStake[operator][role].upperLookupRecent(_validateTimepoint(timepoint));
    }

    /// @inheritdoc IAgentStaking
    function totalActiveStakeAt(Role role, uint256 timepoint) external view returns (uint256) {
        return _totalActiveStake[role].upperLookupRecent(_validateTimepoint(timepoint));
    }

    /// @inheritdoc IAgentStaking
    function agentInfo(address operator) external view returns (AgentInfo memory) {
        return _agents[operator];
    }

    /// @inheritdoc IAgentStaking
    function operatorOfSigner(address signer) external view returns (address) {
        return _operatorOfSigner[signer];
    }

    /// @inheritdoc IAgentStaking
    function isActiveAgent(address operator) external view returns (bool) {
        return _agents[operator].signer != address(0) && _meetsMinimum(operator, Role.Agent);
    }

    /// @inheritdoc IAgentStaking
    function isActiveValidator(address operator) external view returns (bool) {
        return _meetsMinimum(operator, Role.Validator);
    }

    // ------------------------------------------------------------------------------------------------------------
    // Internal
    // ------------------------------------------------------------------------------------------------------------

    /// @dev The one place active stake changes: checkpoints `operator`'s new stake and moves the role's total by the
    /// same difference, at the current clock.
    function _setActiveStake(address operator, Role role, uint256 newStake) private {
        uint48 timepoint = clock();
        (uint256 oldStake,) = _activeStake[operator][role].push(timepoint, SafeCast.toUint208(newStake));
        Checkpoints.Trace208 storage total = _totalActiveStake[role];
        // The total includes `oldStake`, so it cannot underflow.
        total.push(timepoint, SafeCast.toUint208(total.latest() + newStake - oldStake));
    }

    /// @dev Takes up to `amount` out of `operator`'s `role` entries that have not unlocked yet and returns what it
    /// took. An entry taken in full is removed so it does not hold one of the {MAX_UNBONDINGS} places.
    function _slashUnbondings(address operator, Role role, uint256 amount) private returns (uint256 taken) {
        Unbonding[] storage entries = _unbondings[operator][role];
        // Backwards, so that the entry swapped into a freed index has already been looked at.
        for (uint256 i = entries.length; i > 0 && taken < amount; --i) {
            Unbonding storage entry = entries[i - 1];
            if (entry.unlockTime <= block.timestamp) continue;
            uint256 needed = amount - taken;
            if (needed >= entry.amount) {
                taken += entry.amount;
                _removeUnbonding(entries, i - 1);
            } else {
                entry.amount -= SafeCast.toUint128(needed);
                taken = amount;
            }
        }
    }

    /// @dev Removes `entries[index]` by moving the last entry into its place.
    function _removeUnbonding(Unbonding[] storage entries, uint256 index) private {
        uint256 last = entries.length - 1;
        if (index != last) entries[index] = entries[last];
        entries.pop();
    }

    /// @dev Binds `signer` to `operator` (for good: bindings are never removed) and stores the registration.
    function _setAgent(address operator, address signer, bytes32 modelId, uint256 price, string calldata endpoint)
        private
    {
        if (signer == address(0) || signer == operator) revert StakingInvalidSigner(signer);
        address boundTo = _operatorOfSigner[signer];
        if (boundTo != address(0) && boundTo != operator) revert StakingSignerTaken(signer, boundTo);
        if (bytes(endpoint).length == 0 || bytes(endpoint).length > MAX_ENDPOINT_LENGTH) {
            revert StakingInvalidEndpoint(bytes(endpoint).length, MAX_ENDPOINT_LENGTH);
        }
        if (boundTo == address(0)) _operatorOfSigner[signer] = operator;
        _agents[operator] = AgentInfo({signer: signer, modelId: modelId, price: price, endpoint: endpoint});
    }

    function _setMinimumStake(Role role, uint256 amount) private {
        _minimumStake[role] = amount;
        emit MinimumStakeSet(role, amount);
    }

    /// @dev Bounds `period` by [max({MIN_UNBONDING_PERIOD}, the dispute manager's minimum), {MAX_UNBONDING_PERIOD}].
    function _setUnbondingPeriod(uint256 period) private {
        uint256 minPeriod = MIN_UNBONDING_PERIOD;
        if (_disputeManager != address(0)) {
            minPeriod = Math.max(minPeriod, ISlashingAuthority(_disputeManager).minUnbondingPeriod());
        }
        if (period < minPeriod || period > MAX_UNBONDING_PERIOD) {
            revert StakingInvalidUnbondingPeriod(period, minPeriod, MAX_UNBONDING_PERIOD);
        }
        _unbondingPeriod = SafeCast.toUint64(period);
        emit UnbondingPeriodSet(period);
    }

    function _setTreasury(address treasury_) private {
        if (treasury_ == address(0)) revert StakingZeroAddress();
        _treasury = treasury_;
        emit TreasurySet(treasury_);
    }

    /// @dev Reverts with {StakingInsufficientStake} if `newStake` is above zero but under the role's minimum.
    function _checkMinimumStake(address operator, Role role, uint256 newStake) private view {
        uint256 minimum = _minimumStake[role];
        if (newStake != 0 && newStake < minimum) revert StakingInsufficientStake(operator, newStake, minimum);
    }

    /// @dev Whether `operator` holds a positive active `role` stake of at least the minimum.
    function _meetsMinimum(address operator, Role role) private view returns (bool) {
        uint256 current = _activeStake[operator][role].latest();
        return current != 0 && current >= _minimumStake[role];
    }

    /// @dev What a payout receives when `left` of the slashed amount remains: its amount capped by `left`, or zero
    /// when its recipient cannot be paid (the zero address, or this contract, whose balance is all accounted stake).
    function _payoutAmount(SlashPayout calldata payout, uint256 left) private view returns (uint256) {
        if (payout.recipient == address(0) || payout.recipient == address(this)) return 0;
        return Math.min(payout.amount, left);
    }

    /// @dev Reverts with {StakingFutureLookup} unless `timepoint` is strictly before the current clock.
    function _validateTimepoint(uint256 timepoint) private view returns (uint48) {
        uint48 currentTimepoint = clock();
        if (timepoint >= currentTimepoint) revert StakingFutureLookup(timepoint, currentTimepoint);
        return SafeCast.toUint48(timepoint);
    }
}
