// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

/// @title A minimal ERC-1271 contract wallet for token tests
/// @notice Accepts a signature over a hash when it is a valid ECDSA signature of that hash by `OWNER`, the way a
/// single-owner smart account does. It holds tokens but cannot move them itself: in the tests its funds leave only
/// through EIP-3009 authorizations or permits that its owner signs.
contract TokenERC1271Wallet is IERC1271 {
    /// @notice The EOA whose ECDSA signatures the wallet accepts as its own.
    address public immutable OWNER;

    /// @param owner the EOA whose ECDSA signatures this wallet accepts
    constructor(address owner) {
        OWNER = owner;
    }

    /// @inheritdoc IERC1271
    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4 magicValue) {
        (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecoverCalldata(hash, signature);
        return err == ECDSA.RecoverError.NoError && recovered == OWNER
            ? IERC1271.isValidSignature.selector
            : bytes4(0xffffffff);
    }
}
