// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title EIP-712 digests of OpenToken's signed messages, computed independently of the token
/// @notice Test-only. Rebuilds the domain separator and the struct hashes from the type strings written out here, so
/// tests sign what an off-chain EIP-2612 / EIP-3009 client (an x402 `exact` payer) signs, rather than whatever the
/// token happens to hash. Every function is pure: the chain id and token address are explicit inputs, which lets a
/// test sign for one chain and submit on another.
library TokenSigUtils {
    /// @notice The fields of an EIP-3009 transfer or receive authorization.
    struct Authorization {
        address from;
        address to;
        uint256 value;
        uint256 validAfter;
        uint256 validBefore;
        bytes32 nonce;
    }

    bytes32 internal constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 internal constant PERMIT_TYPEHASH =
        keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)");
    bytes32 internal constant TRANSFER_WITH_AUTHORIZATION_TYPEHASH = keccak256(
        "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );
    bytes32 internal constant RECEIVE_WITH_AUTHORIZATION_TYPEHASH = keccak256(
        "ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );
    bytes32 internal constant CANCEL_AUTHORIZATION_TYPEHASH =
        keccak256("CancelAuthorization(address authorizer,bytes32 nonce)");

    /// @notice The EIP-712 domain separator of ("Open", "1", `chainId`, `token`).
    function domainSeparator(address token, uint256 chainId) internal pure returns (bytes32) {
        return keccak256(abi.encode(DOMAIN_TYPEHASH, keccak256("Open"), keccak256("1"), chainId, token));
    }

    /// @notice The digest an owner signs for EIP-2612 `permit`.
    function permitDigest(
        address token,
        uint256 chainId,
        address owner,
        address spender,
        uint256 value,
        uint256 nonce,
        uint256 deadline
    ) internal pure returns (bytes32) {
        return _typedDataHash(
            token, chainId, keccak256(abi.encode(PERMIT_TYPEHASH, owner, spender, value, nonce, deadline))
        );
    }

    /// @notice The digest `auth.from` signs for `transferWithAuthorization`.
    function transferDigest(address token, uint256 chainId, Authorization memory auth) internal pure returns (bytes32) {
        return _typedDataHash(token, chainId, _authorizationHash(TRANSFER_WITH_AUTHORIZATION_TYPEHASH, auth));
    }

    /// @notice The digest `auth.from` signs for `receiveWithAuthorization`.
    function receiveDigest(address token, uint256 chainId, Authorization memory auth) internal pure returns (bytes32) {
        return _typedDataHash(token, chainId, _authorizationHash(RECEIVE_WITH_AUTHORIZATION_TYPEHASH, auth));
    }

    /// @notice The digest `authorizer` signs for `cancelAuthorization`.
    function cancelDigest(address token, uint256 chainId, address authorizer, bytes32 nonce)
        internal
        pure
        returns (bytes32)
    {
        return _typedDataHash(token, chainId, keccak256(abi.encode(CANCEL_AUTHORIZATION_TYPEHASH, authorizer, nonce)));
    }

    function _authorizationHash(bytes32 typeHash, Authorization memory auth) private pure returns (bytes32) {
        return
            keccak256(
                abi.encode(typeHash, auth.from, auth.to, auth.value, auth.validAfter, auth.validBefore, auth.nonce)
            );
    }

    function _typedDataHash(address token, uint256 chainId, bytes32 structHash) private pure returns (bytes32) {
        return keccak256(abi.encodePacked("\x19\x01", domainSeparator(token, chainId), structHash));
    }
}
