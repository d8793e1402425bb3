// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title The contract allowed to slash stakes (the DisputeManager)
/// @notice AgentStaking asks it how long stake must stay slashable after an unstake request, so that nobody can
/// leave before a fault they committed can be challenged and decided.
interface ISlashingAuthority {
    /// @notice The shortest unbonding period that still covers a whole dispute: challenge window plus voting
    /// period (plus any response window), in seconds.
    function minUnbondingPeriod() external view returns (uint256);
}
