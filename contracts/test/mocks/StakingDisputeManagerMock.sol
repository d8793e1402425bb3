// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IAgentStaking} from "../../src/interfaces/IAgentStaking.sol";
import {ISlashingAuthority} from "../../src/interfaces/ISlashingAuthority.sol";

/// @notice A stand-in for the DisputeManager in AgentStaking tests: it reports a settable
/// {ISlashingAuthority-minUnbondingPeriod} and lets its deployer slash through it.
contract StakingDisputeManagerMock is ISlashingAuthority {
    /// @notice `caller` is not the deployer.
    error StakingDisputeManagerMockUnauthorized(address caller);

    address private immutable _owner;
    uint256 private _minUnbondingPeriod;

    constructor(uint256 minUnbondingPeriod_) {
        _owner = msg.sender;
        _minUnbondingPeriod = minUnbondingPeriod_;
    }

    /// @inheritdoc ISlashingAuthority
    function minUnbondingPeriod() external view returns (uint256) {
        return _minUnbondingPeriod;
    }

    /// @notice Changes what {minUnbondingPeriod} reports.
    function setMinUnbondingPeriod(uint256 period) external {
        if (msg.sender != _owner) revert StakingDisputeManagerMockUnauthorized(msg.sender);
        _minUnbondingPeriod = period;
    }

    /// @notice Slashes through `staking` as its dispute manager.
    function slash(
        IAgentStaking staking,
        address operator,
        IAgentStaking.Role role,
        uint256 amount,
        IAgentStaking.SlashPayout[] calldata payouts
    ) external returns (uint256) {
        if (msg.sender != _owner) revert StakingDisputeManagerMockUnauthorized(msg.sender);
        return staking.slash(operator, role, amount, payouts);
    }
}
