// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// @title Stakes of agents and validators, agent registration, and slashing
/// @notice An operator stakes OPEN in a role (Agent or Validator). Stake is *active* until the operator asks to
/// unstake; it is then *unbonding* for `unbondingPeriod` seconds, still slashable, and withdrawable only once it has
/// unlocked. Only the dispute manager, set once, may slash.
///
/// An agent registers its endpoint, model, price and a hot `signer` key that signs its receipts; the cold operator
/// key stays offline. A signer stays bound to its operator forever, also after rotation, so a receipt signed by a
/// rotated-out key is still attributable (and slashable): rotating keys never erases past faults.
///
/// Active stake is checkpointed per block (ERC-6372 block-number clock), so votes can be weighted by the stake held
/// before a dispute opened, and stake moved in afterwards does not count.
interface IAgentStaking {
    /// @notice The two roles an operator can stake in. Stakes of the two roles are independent.
    enum Role {
        Agent,
        Validator
    }

    /// @notice What an agent publishes about itself.
    /// @param signer hot key that signs the agent's receipts; never the operator itself.
    /// @param modelId keccak256 over the served model's weight files, as registered in the DatanetRegistry.
    /// @param price price of one request, in OPEN wei.
    /// @param endpoint base URL of the agent's HTTP API.
    struct AgentInfo {
        address signer;
        bytes32 modelId;
        uint256 price;
        string endpoint;
    }

    /// @notice Stake on its way out: slashable until `unlockTime`, withdrawable from then on.
    struct Unbonding {
        uint128 amount;
        uint64 unlockTime;
    }

    /// @notice Part of a slashed amount sent to `recipient` (a challenger's reward, a payer's refund).
    struct SlashPayout {
        address recipient;
        uint256 amount;
    }

    /// @notice `operator` added `amount` to its active stake in `role`, which is now `activeStake`.
    event Staked(address indexed operator, Role indexed role, uint256 amount, uint256 activeStake);

    /// @notice `operator` moved `amount` of its `role` stake into unbonding until `unlockTime`.
    event UnstakeRequested(address indexed operator, Role indexed role, uint256 amount, uint256 unlockTime);

    /// @notice `operator` withdrew `amount` of unlocked `role` stake.
    event Withdrawn(address indexed operator, Role indexed role, uint256 amount);

    /// @notice `amount` of `operator`'s `role` stake was slashed: `fromActive` out of active stake, the rest out of
    /// unbonding entries; `toTreasury` of it went to the treasury, the rest to the payouts.
    event Slashed(address indexed operator, Role indexed role, uint256 amount, uint256 fromActive, uint256 toTreasury);

    /// @notice `amount` of a slash of `operator` was paid to `recipient`.
    event SlashPaid(address indexed operator, address indexed recipient, uint256 amount);

    /// @notice `operator` registered as an agent.
    event AgentRegistered(
        address indexed operator, address indexed signer, bytes32 indexed modelId, uint256 price, string endpoint
    );

    /// @notice `operator` changed its agent registration.
    event AgentUpdated(
        address indexed operator, address indexed signer, bytes32 indexed modelId, uint256 price, string endpoint
    );

    /// @notice The minimum active stake of `role` became `amount`.
    event MinimumStakeSet(Role indexed role, uint256 amount);

    /// @notice The unbonding period became `period` seconds; it applies to later unstake requests.
    event UnbondingPeriodSet(uint256 period);

    /// @notice Slashed stake not paid out now goes to `treasury`.
    event TreasurySet(address indexed treasury);

    /// @notice `disputeManager` became the only account allowed to slash. It is set once.
    event DisputeManagerSet(address indexed disputeManager);

    /// @notice An amount of zero was given where a positive amount is needed.
    error StakingZeroAmount();

    /// @notice The zero address was given where an account is needed.
    error StakingZeroAddress();

    /// @notice After this action `operator` would hold `stake` of active stake, below the `required` minimum
    /// (an operator may go to zero, never below the minimum and above zero).
    error StakingInsufficientStake(address operator, uint256 stake, uint256 required);

    /// @notice `operator` asked to unstake `amount` but holds only `activeStake`.
    error StakingUnstakeExceedsStake(address operator, uint256 amount, uint256 activeStake);

    /// @notice `operator` already has `max` unbonding entries in this role; withdraw or wait before adding more.
    error StakingTooManyUnbondings(address operator, uint256 max);

    /// @notice `operator` has nothing unlocked to withdraw in this role.
    error StakingNothingToWithdraw(address operator);

    /// @notice `caller` is not the dispute manager.
    error StakingUnauthorizedSlasher(address caller);

    /// @notice The dispute manager is already set to `disputeManager`.
    error StakingDisputeManagerAlreadySet(address disputeManager);

    /// @notice `period` lies outside [`min`, `max`]; `min` includes what the dispute manager needs.
    error StakingInvalidUnbondingPeriod(uint256 period, uint256 min, uint256 max);

    /// @notice `signer` cannot sign for an agent: it is zero, or it is the operator itself.
    error StakingInvalidSigner(address signer);

    /// @notice `signer` is already bound to `operator`.
    error StakingSignerTaken(address signer, address operator);

    /// @notice `operator` is not a registered agent.
    error StakingAgentNotRegistered(address operator);

    /// @notice `operator` is already a registered agent; use {updateAgent}.
    error StakingAgentAlreadyRegistered(address operator);

    /// @notice The endpoint is empty or longer than `maxLength` bytes.
    error StakingInvalidEndpoint(uint256 length, uint256 maxLength);

    /// @notice A stake history lookup asked for `timepoint`, which is not in the past of `clock`.
    error StakingFutureLookup(uint256 timepoint, uint48 clock);

    /// @notice Moves `amount` OPEN from the caller into its active stake in `role`.
    /// @dev Needs an allowance. Reverts with {StakingInsufficientStake} when the result is under the minimum.
    function stake(Role role, uint256 amount) external;

    /// @notice Moves `amount` of the caller's active `role` stake into unbonding, unlocking after the unbonding
    /// period. The remaining active stake must be zero or at least the minimum.
    function requestUnstake(Role role, uint256 amount) external;

    /// @notice Pays the caller all of its unlocked `role` unbonding entries.
    /// @return amount what was paid.
    function withdraw(Role role) external returns (uint256 amount);

    /// @notice Registers the caller as an agent. Staking is separate: an agent serves only while
    /// {isActiveAgent}.
    function registerAgent(address signer, bytes32 modelId, uint256 price, string calldata endpoint) external;

    /// @notice Changes the caller's registration. A new signer is bound to the caller; the old one stays bound.
    function updateAgent(address signer, bytes32 modelId, uint256 price, string calldata endpoint) external;

    /// @notice Slashes up to `amount` of `operator`'s `role` stake, active stake first, then entries that have not
    /// unlocked yet. Pays `payouts` in order out of what was slashed (each capped by what is left) and the rest to
    /// the treasury. Only the dispute manager may call it.
    /// @dev Never reverts for lack of stake: with a zero `amount` or nothing slashable it returns 0 and moves no
    /// tokens, so an operator that already left cannot block a dispute's resolution. A payout whose recipient is the
    /// zero address (or this contract) is skipped and its share goes to the treasury, so a bad recipient taken from
    /// data the operator signed cannot block the slash either. A slash may leave active stake under the minimum.
    /// @return slashed the amount actually taken, at most the slashable stake.
    function slash(address operator, Role role, uint256 amount, SlashPayout[] calldata payouts)
        external
        returns (uint256 slashed);

    /// @notice Sets the dispute manager, once. Its {ISlashingAuthority-minUnbondingPeriod} must fit the current
    /// unbonding period. Owner only.
    function setDisputeManager(address disputeManager) external;

    /// @notice Sets the minimum active stake of `role`. Owner only.
    function setMinimumStake(Role role, uint256 amount) external;

    /// @notice Sets the unbonding period for later unstake requests. Owner only; bounded, and never shorter than
    /// the dispute manager's {ISlashingAuthority-minUnbondingPeriod}.
    function setUnbondingPeriod(uint256 period) external;

    /// @notice Sets where slashed stake goes when not paid out. Owner only.
    function setTreasury(address treasury) external;

    /// @notice The staked token (OPEN).
    function token() external view returns (IERC20);

    /// @notice The only account allowed to slash, or zero before it is set.
    function disputeManager() external view returns (address);

    /// @notice Where slashed stake goes when not paid out.
    function treasury() external view returns (address);

    /// @notice Seconds between an unstake request and its unlock.
    function unbondingPeriod() external view returns (uint256);

    /// @notice The minimum active stake of `role`.
    function minimumStake(Role role) external view returns (uint256);

    /// @notice Active (not unbonding) stake of `operator` in `role`.
    function activeStake(address operator, Role role) external view returns (uint256);

    /// @notice Stake of `operator` in `role` that is unbonding or unlocked but not withdrawn.
    function unbondingStake(address operator, Role role) external view returns (uint256);

    /// @notice Stake of `operator` in `role` that a slash can still reach: active plus not yet unlocked.
    function slashableStake(address operator, Role role) external view returns (uint256);

    /// @notice The unbonding entries of `operator` in `role`, in no particular order.
    function unbondings(address operator, Role role) external view returns (Unbonding[] memory);

    /// @notice Sum of all operators' active stake in `role`.
    function totalActiveStake(Role role) external view returns (uint256);

    /// @notice Active stake of `operator` in `role` at the end of block `timepoint`, which must be in the past.
    function activeStakeAt(address operator, Role role, uint256 timepoint) external view returns (uint256);

    /// @notice Sum of active stake in `role` at the end of block `timepoint`, which must be in the past.
    function totalActiveStakeAt(Role role, uint256 timepoint) external view returns (uint256);

    /// @notice The agent registration of `operator` (all zero when not registered).
    function agentInfo(address operator) external view returns (AgentInfo memory);

    /// @notice The operator that `signer` signs for, or zero.
    function operatorOfSigner(address signer) external view returns (address);

    /// @notice Whether `operator` is a registered agent with at least the minimum active Agent stake (and more than
    /// zero).
    function isActiveAgent(address operator) external view returns (bool);

    /// @notice Whether `operator` holds at least the minimum active Validator stake (and more than zero).
    function isActiveValidator(address operator) external view returns (bool);
}
