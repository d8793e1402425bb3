// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title EIP-3009: transfer with authorization
/// @notice Gasless, one-shot transfers signed by the token holder and submitted by anyone (or, for
/// `receiveWithAuthorization`, only by the payee). Each authorization carries a random 32-byte nonce that can be
/// used once; nonces are not sequential, so many authorizations can be outstanding at once. The type hashes are
/// the standard ones, so a signature made by any EIP-3009 client (for instance an x402 `exact` payment) verifies.
interface IERC3009 {
    /// @notice An authorization of `authorizer` with `nonce` was used for a transfer.
    event AuthorizationUsed(address indexed authorizer, bytes32 indexed nonce);

    /// @notice `authorizer` cancelled its authorization with `nonce` before it was used.
    event AuthorizationCanceled(address indexed authorizer, bytes32 indexed nonce);

    /// @notice The authorization is not valid before `validAfter` (exclusive); the block time is `nowTime`.
    error ERC3009AuthorizationNotYetValid(uint256 validAfter, uint256 nowTime);

    /// @notice The authorization expired at `validBefore` (exclusive); the block time is `nowTime`.
    error ERC3009AuthorizationExpired(uint256 validBefore, uint256 nowTime);

    /// @notice The nonce was already used or cancelled by `authorizer`.
    error ERC3009AuthorizationUsedOrCanceled(address authorizer, bytes32 nonce);

    /// @notice The signature is not a valid signature of `authorizer` over the authorization.
    error ERC3009InvalidSignature(address authorizer);

    /// @notice `receiveWithAuthorization` was called by `caller`, but only the payee `payee` may call it.
    error ERC3009CallerMustBePayee(address caller, address payee);

    /// @notice Whether `nonce` of `authorizer` has been used or cancelled.
    function authorizationState(address authorizer, bytes32 nonce) external view returns (bool);

    /// @notice Transfers `value` from `from` to `to` with `from`'s signed authorization. Anyone may submit it.
    /// @dev Reverts with {ERC3009AuthorizationNotYetValid} unless `block.timestamp > validAfter`, with
    /// {ERC3009AuthorizationExpired} unless `block.timestamp < validBefore`, and with
    /// {ERC3009AuthorizationUsedOrCanceled} when the nonce is spent.
    function transferWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external;

    /// @notice As the (v, r, s) form, with the signature as bytes: 65-byte ECDSA, or an ERC-1271 signature when
    /// `from` is a contract wallet.
    function transferWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes calldata signature
    ) external;

    /// @notice Like {transferWithAuthorization}, but only the payee `to` may submit it, which stops a front-runner
    /// from moving the funds outside the payee's own transaction (for example a deposit that pulls them).
    function receiveWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external;

    /// @notice As the (v, r, s) form, with the signature as bytes (ECDSA or ERC-1271).
    function receiveWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes calldata signature
    ) external;

    /// @notice Cancels an unused authorization of `authorizer`, signed by `authorizer`.
    function cancelAuthorization(address authorizer, bytes32 nonce, uint8 v, bytes32 r, bytes32 s) external;

    /// @notice As the (v, r, s) form, with the signature as bytes (ECDSA or ERC-1271).
    function cancelAuthorization(address authorizer, bytes32 nonce, bytes calldata signature) external;
}
