// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";

/// @title An ERC-1271 contract wallet that rejects every signature
/// @notice Answers every `isValidSignature` query with the ERC-1271 failure value, so no authorization can ever
/// move its funds; tests use it to show that the token defers to the wallet's verdict.
contract TokenRejectingERC1271Wallet is IERC1271 {
    /// @dev Any value other than `IERC1271.isValidSignature.selector` means "invalid"; 0xffffffff is the customary one.
    bytes4 private constant _INVALID_SIGNATURE = 0xffffffff;

    /// @inheritdoc IERC1271
    function isValidSignature(bytes32, bytes calldata) external pure returns (bytes4 magicValue) {
        return _INVALID_SIGNATURE;
    }
}
