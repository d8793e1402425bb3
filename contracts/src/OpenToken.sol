// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {IOpenToken} from "./interfaces/IOpenToken.sol";
import {ERC3009} from "./token/ERC3009.sol";

/// @title OPEN, the token agents and validators stake and payers pay with
/// @notice See {IOpenToken}. The whole supply goes to `holder` (a treasury or distribution contract).
contract OpenToken is ERC20, ERC20Permit, ERC3009, IOpenToken {
    /// @inheritdoc IOpenToken
    uint256 public constant TOTAL_SUPPLY = 1_000_000_000 ether;

    /// @param holder receives the whole supply.
    constructor(address holder) ERC20("Open", "OPEN") ERC20Permit("Open") {
        _mint(holder, TOTAL_SUPPLY);
    }

    /// @inheritdoc IERC20Permit
    /// @dev Resolves the same function reaching this contract through ERC20Permit and through {IOpenToken}.
    function nonces(address owner) public view override(ERC20Permit, IERC20Permit) returns (uint256) {
        return super.nonces(owner);
    }
}
