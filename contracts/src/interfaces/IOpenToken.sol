// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20Metadata} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {IERC3009} from "./IERC3009.sol";

/// @title OPEN, the token agents and validators stake and payers pay with
/// @notice A fixed-supply ERC-20: exactly {TOTAL_SUPPLY} minted once at deployment, no mint function, so nothing in
/// the protocol can inflate it; slashed stake is redistributed, never minted or burnt. Supports EIP-2612 `permit`
/// and EIP-3009 authorizations under one EIP-712 domain ("Open", "1", chain id, token).
interface IOpenToken is IERC20Metadata, IERC20Permit, IERC3009 {
    /// @notice The whole supply, in wei: 1,000,000,000 OPEN with 18 decimals.
    function TOTAL_SUPPLY() external view returns (uint256);
}
