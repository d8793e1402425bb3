// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {IPaymentChannels} from "../../src/interfaces/IPaymentChannels.sol";

/// @notice A minimal contract wallet that pays through payment channels: it approves and opens channels on its
/// owner's behalf and answers ERC-1271 with "valid" for hashes its owner signed, until the owner makes it refuse.
contract ChannelERC1271Wallet is IERC1271 {
    using SafeERC20 for IERC20;

    /// @notice Only the owner may steer the wallet.
    error ChannelERC1271WalletNotOwner(address caller, address owner);

    /// @notice The wallet now answers ERC-1271 queries with `accepting` (for signatures of its owner).
    event AcceptingSet(bool accepting);

    address public immutable owner;
    bool public accepting = true;

    constructor(address owner_) {
        owner = owner_;
    }

    modifier onlyOwner() {
        if (msg.sender != owner) revert ChannelERC1271WalletNotOwner(msg.sender, owner);
        _;
    }

    /// @notice Makes the wallet accept (true) or refuse (false) every signature, even its owner's.
    function setAccepting(bool accepting_) external onlyOwner {
        accepting = accepting_;
        emit AcceptingSet(accepting_);
    }

    /// @notice Approves `channels` and opens a channel to `receiver` funded from this wallet.
    function openChannel(IPaymentChannels channels, address receiver, uint256 amount, bytes32 salt)
        external
        onlyOwner
        returns (bytes32)
    {
        channels.token().forceApprove(address(channels), amount);
        return channels.open(receiver, amount, salt);
    }

    /// @inheritdoc IERC1271
    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4) {
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecoverCalldata(hash, signature);
        if (accepting && err == ECDSA.RecoverError.NoError && signer == owner) {
            return IERC1271.isValidSignature.selector;
        }
        return 0xffffffff;
    }
}
