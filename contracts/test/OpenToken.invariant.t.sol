// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {OpenToken} from "../src/OpenToken.sol";
import {IERC3009} from "../src/interfaces/IERC3009.sol";
import {TokenERC1271Wallet} from "./mocks/TokenERC1271Wallet.sol";
import {TokenSigUtils} from "./mocks/TokenSigUtils.sol";
import {Test} from "./utils/Test.sol";

/// @notice Drives OpenToken with bounded, mostly valid actions of a few actors: transfers, approvals,
/// transferFrom, permits and EIP-3009 transfers, receives and cancellations signed for real with `vm.sign`, and
/// clock moves. One actor is an ERC-1271 wallet whose owner signs for it.
/// @dev The handler is also an oracle: ERC-20 and permit calls are bounded so that they must succeed, and for every
/// EIP-3009 call it predicts success or the exact revert. Wrong predictions are counted in `ghostUnexpectedOutcomes`
/// rather than asserted, because an assertion inside a handler call only reverts that call, which the invariant
/// runner (fail_on_revert = false) ignores. Nonces come from a small pool per authorizer, so replays of used and
/// canceled nonces happen often.
contract OpenTokenHandler is Test {
    /// @dev Nonces per authorizer; small, so that a good share of authorizations reuse a spent nonce.
    uint256 private constant NONCE_POOL = 8;
    /// @dev Longest clock move per call.
    uint256 private constant MAX_WARP = 1 days;
    /// @dev Longest validity an authorization or permit gets.
    uint256 private constant MAX_VALIDITY = 1 hours;

    OpenToken public immutable TOKEN;

    address[] private _actors;
    /// @dev The key that signs for each actor: its own for an EOA, the owner's for the wallet.
    uint256[] private _signingKeys;
    /// @dev Whether the actor signs with ECDSA for itself (permit needs that; the wallet cannot).
    bool[] private _isEoa;

    /// @dev Every address the handler has credited or that held tokens at the start; balances are summed over it.
    address[] private _holders;
    mapping(address account => bool known) private _isHolder;

    struct SpentNonce {
        address authorizer;
        bytes32 nonce;
    }

    SpentNonce[] private _spentNonces;
    mapping(address authorizer => mapping(bytes32 nonce => bool spent)) private _isSpent;

    /// @notice Calls whose outcome differed from the handler's prediction; must stay 0.
    uint256 public ghostUnexpectedOutcomes;
    /// @notice Successful permits per owner; the token's permit nonce must equal it.
    mapping(address owner => uint256 count) public ghostPermits;

    /// @param token the token under test
    /// @param treasury the address the supply was minted to (tracked as a holder)
    /// @param eoaNames names of the EOA actors (keys derive from them)
    /// @param wallet an ERC-1271 wallet actor, signed for by `walletOwnerKey`
    constructor(
        OpenToken token,
        address treasury,
        string[] memory eoaNames,
        TokenERC1271Wallet wallet,
        uint256 walletOwnerKey
    ) {
        TOKEN = token;
        _trackHolder(treasury);
        for (uint256 i = 0; i < eoaNames.length; ++i) {
            (address actor, uint256 key) = makeAccount(eoaNames[i]);
            _addActor(actor, key, true);
        }
        _addActor(address(wallet), walletOwnerKey, false);
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Actions
    // ---------------------------------------------------------------------------------------------------------------

    function transfer(uint256 fromSeed, uint256 toSeed, uint256 amount) external {
        address from = _actor(fromSeed);
        address to = _actor(toSeed);
        amount = bound(amount, 0, TOKEN.balanceOf(from));

        vm.prank(from);
        try TOKEN.transfer(to, amount) returns (bool success) {
            _expect(success);
            _trackHolder(to);
        } catch {
            _expect(false);
        }
    }

    function approve(uint256 ownerSeed, uint256 spenderSeed, uint256 amount) external {
        address owner = _actor(ownerSeed);
        address spender = _actor(spenderSeed);

        vm.prank(owner);
        try TOKEN.approve(spender, amount) returns (bool success) {
            _expect(success);
        } catch {
            _expect(false);
        }
    }

    function transferFrom(uint256 spenderSeed, uint256 fromSeed, uint256 toSeed, uint256 amount) external {
        address spender = _actor(spenderSeed);
        address from = _actor(fromSeed);
        address to = _actor(toSeed);
        amount = bound(amount, 0, _min(TOKEN.allowance(from, spender), TOKEN.balanceOf(from)));

        vm.prank(spender);
        try TOKEN.transferFrom(from, to, amount) returns (bool success) {
            _expect(success);
            _trackHolder(to);
        } catch {
            _expect(false);
        }
    }

    function permit(uint256 ownerSeed, uint256 spenderSeed, uint256 amount, uint256 validity) external {
        uint256 index = _eoaIndex(ownerSeed);
        address owner = _actors[index];
        address spender = _actor(spenderSeed);
        uint256 deadline = block.timestamp + bound(validity, 0, MAX_VALIDITY);
        bytes32 digest = TokenSigUtils.permitDigest(
            address(TOKEN), block.chainid, owner, spender, amount, TOKEN.nonces(owner), deadline
        );
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(_signingKeys[index], digest);

        try TOKEN.permit(owner, spender, amount, deadline, v, r, s) {
            ++ghostPermits[owner];
        } catch {
            _expect(false);
        }
    }

    /// @param amount bounded to a quarter above the balance, so some authorizations are underfunded
    function transferWithAuthorization(
        uint256 fromSeed,
        uint256 toSeed,
        uint256 amount,
        uint256 nonceSeed,
        uint256 validity,
        bool asBytes
    ) external {
        (uint256 index, TokenSigUtils.Authorization memory auth) =
            _authorization(fromSeed, toSeed, amount, nonceSeed, validity);
        (uint8 v, bytes32 r, bytes32 s) =
            vm.sign(_signingKeys[index], TokenSigUtils.transferDigest(address(TOKEN), block.chainid, auth));
        bytes memory expectedRevert = _expectedRevert(auth);

        bool success;
        bytes memory revertData;
        if (asBytes) {
            try TOKEN.transferWithAuthorization(
                auth.from, auth.to, auth.value, auth.validAfter, auth.validBefore, auth.nonce, abi.encodePacked(r, s, v)
            ) {
                success = true;
            } catch (bytes memory reason) {
                revertData = reason;
            }
        } else {
            try TOKEN.transferWithAuthorization(
                auth.from, auth.to, auth.value, auth.validAfter, auth.validBefore, auth.nonce, v, r, s
            ) {
                success = true;
            } catch (bytes memory reason) {
                revertData = reason;
            }
        }
        _recordAuthorizationOutcome(auth, expectedRevert, success, revertData);
    }

    function receiveWithAuthorization(
        uint256 fromSeed,
        uint256 toSeed,
        uint256 amount,
        uint256 nonceSeed,
        uint256 validity,
        bool asBytes
    ) external {
        (uint256 index, TokenSigUtils.Authorization memory auth) =
            _authorization(fromSeed, toSeed, amount, nonceSeed, validity);
        (uint8 v, bytes32 r, bytes32 s) =
            vm.sign(_signingKeys[index], TokenSigUtils.receiveDigest(address(TOKEN), block.chainid, auth));
        bytes memory expectedRevert = _expectedRevert(auth);

        bool success;
        bytes memory revertData;
        vm.prank(auth.to);
        if (asBytes) {
            try TOKEN.receiveWithAuthorization(
                auth.from, auth.to, auth.value, auth.validAfter, auth.validBefore, auth.nonce, abi.encodePacked(r, s, v)
            ) {
                success = true;
            } catch (bytes memory reason) {
                revertData = reason;
            }
        } else {
            try TOKEN.receiveWithAuthorization(
                auth.from, auth.to, auth.value, auth.validAfter, auth.validBefore, auth.nonce, v, r, s
            ) {
                success = true;
            } catch (bytes memory reason) {
                revertData = reason;
            }
        }
        _recordAuthorizationOutcome(auth, expectedRevert, success, revertData);
    }

    function cancelAuthorization(uint256 authorizerSeed, uint256 nonceSeed, bool asBytes) external {
        uint256 index = authorizerSeed % _actors.length;
        address authorizer = _actors[index];
        bytes32 nonce = _nonce(nonceSeed);
        (uint8 v, bytes32 r, bytes32 s) =
            vm.sign(_signingKeys[index], TokenSigUtils.cancelDigest(address(TOKEN), block.chainid, authorizer, nonce));
        bytes memory expectedRevert = _isSpent[authorizer][nonce]
            ? abi.encodeWithSelector(IERC3009.ERC3009AuthorizationUsedOrCanceled.selector, authorizer, nonce)
            : bytes("");

        bool success;
        bytes memory revertData;
        if (asBytes) {
            try TOKEN.cancelAuthorization(authorizer, nonce, abi.encodePacked(r, s, v)) {
                success = true;
            } catch (bytes memory reason) {
                revertData = reason;
            }
        } else {
            try TOKEN.cancelAuthorization(authorizer, nonce, v, r, s) {
                success = true;
            } catch (bytes memory reason) {
                revertData = reason;
            }
        }
        _recordOutcome(authorizer, nonce, expectedRevert, success, revertData);
    }

    function warp(uint256 secondsForward) external {
        vm.warp(block.timestamp + bound(secondsForward, 0, MAX_WARP));
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Views for the invariants
    // ---------------------------------------------------------------------------------------------------------------

    function holders() external view returns (address[] memory) {
        return _holders;
    }

    function actors() external view returns (address[] memory) {
        return _actors;
    }

    function spentNonceCount() external view returns (uint256) {
        return _spentNonces.length;
    }

    function spentNonce(uint256 index) external view returns (address authorizer, bytes32 nonce) {
        SpentNonce storage spent = _spentNonces[index];
        return (spent.authorizer, spent.nonce);
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Internals
    // ---------------------------------------------------------------------------------------------------------------

    function _addActor(address actor, uint256 key, bool isEoa) private {
        _actors.push(actor);
        _signingKeys.push(key);
        _isEoa.push(isEoa);
        _trackHolder(actor);
    }

    function _trackHolder(address account) private {
        if (_isHolder[account]) return;
        _isHolder[account] = true;
        _holders.push(account);
    }

    function _actor(uint256 seed) private view returns (address) {
        return _actors[seed % _actors.length];
    }

    /// @dev An actor that can sign an EIP-2612 permit (ECDSA only, so never the wallet).
    function _eoaIndex(uint256 seed) private view returns (uint256 index) {
        index = seed % _actors.length;
        while (!_isEoa[index]) {
            index = (index + 1) % _actors.length;
        }
    }

    function _nonce(uint256 seed) private pure returns (bytes32) {
        return keccak256(abi.encode("OpenTokenHandler.nonce", seed % NONCE_POOL));
    }

    /// @dev A currently valid window (now - 1, now + validity]; the window edges are covered by the unit tests.
    function _authorization(uint256 fromSeed, uint256 toSeed, uint256 amount, uint256 nonceSeed, uint256 validity)
        private
        view
        returns (uint256 index, TokenSigUtils.Authorization memory auth)
    {
        index = fromSeed % _actors.length;
        address from = _actors[index];
        uint256 balance = TOKEN.balanceOf(from);
        auth = TokenSigUtils.Authorization({
            from: from,
            to: _actor(toSeed),
            value: bound(amount, 0, balance + balance / 4),
            validAfter: block.timestamp - 1,
            validBefore: block.timestamp + bound(validity, 1, MAX_VALIDITY),
            nonce: _nonce(nonceSeed)
        });
    }

    /// @dev Empty when the call must succeed; otherwise the exact revert data, nonce check first, then balance.
    function _expectedRevert(TokenSigUtils.Authorization memory auth) private view returns (bytes memory) {
        if (_isSpent[auth.from][auth.nonce]) {
            return abi.encodeWithSelector(IERC3009.ERC3009AuthorizationUsedOrCanceled.selector, auth.from, auth.nonce);
        }
        uint256 balance = TOKEN.balanceOf(auth.from);
        if (auth.value > balance) {
            return
                abi.encodeWithSelector(IERC20Errors.ERC20InsufficientBalance.selector, auth.from, balance, auth.value);
        }
        return "";
    }

    function _recordAuthorizationOutcome(
        TokenSigUtils.Authorization memory auth,
        bytes memory expectedRevert,
        bool success,
        bytes memory revertData
    ) private {
        _recordOutcome(auth.from, auth.nonce, expectedRevert, success, revertData);
        if (success) _trackHolder(auth.to);
    }

    function _recordOutcome(
        address authorizer,
        bytes32 nonce,
        bytes memory expectedRevert,
        bool success,
        bytes memory revertData
    ) private {
        bool expectedSuccess = expectedRevert.length == 0;
        if (success != expectedSuccess || (!success && keccak256(revertData) != keccak256(expectedRevert))) {
            ++ghostUnexpectedOutcomes;
        }
        if (success && !_isSpent[authorizer][nonce]) {
            _isSpent[authorizer][nonce] = true;
            _spentNonces.push(SpentNonce({authorizer: authorizer, nonce: nonce}));
        }
    }

    /// @dev For calls whose inputs are bounded so that they must succeed.
    function _expect(bool succeeded) private {
        if (!succeeded) ++ghostUnexpectedOutcomes;
    }

    function _min(uint256 a, uint256 b) private pure returns (uint256) {
        return a < b ? a : b;
    }
}

/// @notice Invariants of OpenToken under the handler's random sequences of actions.
contract OpenTokenInvariantTest is Test {
    uint256 private constant START_TIME = 1_700_000_000;

    OpenToken internal token;
    OpenTokenHandler internal handler;

    function setUp() public {
        vm.warp(START_TIME);
        token = new OpenToken(address(this));
        (address walletOwner, uint256 walletOwnerKey) = makeAccount("walletOwner");
        TokenERC1271Wallet wallet = new TokenERC1271Wallet(walletOwner);

        string[] memory names = new string[](4);
        names[0] = "alice";
        names[1] = "bob";
        names[2] = "carol";
        names[3] = "dave";
        handler = new OpenTokenHandler(token, address(this), names, wallet, walletOwnerKey);

        // Spread the supply unevenly, so that balances of very different sizes meet.
        address[] memory actors = handler.actors();
        uint256 remaining = token.totalSupply();
        for (uint256 i = 0; i < actors.length - 1; ++i) {
            uint256 share = remaining / 2;
            vm.assertTrue(token.transfer(actors[i], share), "distribution");
            remaining -= share;
        }
        vm.assertTrue(token.transfer(actors[actors.length - 1], remaining), "distribution");

        bytes4[] memory selectors = new bytes4[](8);
        selectors[0] = OpenTokenHandler.transfer.selector;
        selectors[1] = OpenTokenHandler.approve.selector;
        selectors[2] = OpenTokenHandler.transferFrom.selector;
        selectors[3] = OpenTokenHandler.permit.selector;
        selectors[4] = OpenTokenHandler.transferWithAuthorization.selector;
        selectors[5] = OpenTokenHandler.receiveWithAuthorization.selector;
        selectors[6] = OpenTokenHandler.cancelAuthorization.selector;
        selectors[7] = OpenTokenHandler.warp.selector;
        targetSelector(FuzzSelector({addr: address(handler), selectors: selectors}));
        targetContract(address(handler));
    }

    function invariant_totalSupplyIsFixed() public view {
        vm.assertEq(token.totalSupply(), 1_000_000_000 ether, "totalSupply");
        vm.assertEq(token.totalSupply(), token.TOTAL_SUPPLY(), "TOTAL_SUPPLY");
    }

    function invariant_holderBalancesSumToTotalSupply() public view {
        address[] memory holders = handler.holders();
        uint256 sum;
        for (uint256 i = 0; i < holders.length; ++i) {
            sum += token.balanceOf(holders[i]);
        }
        vm.assertEq(sum, token.totalSupply(), "sum of balances");
    }

    function invariant_spentNoncesStaySpent() public view {
        uint256 count = handler.spentNonceCount();
        for (uint256 i = 0; i < count; ++i) {
            (address authorizer, bytes32 nonce) = handler.spentNonce(i);
            vm.assertTrue(token.authorizationState(authorizer, nonce), "a used or canceled nonce became usable");
        }
    }

    function invariant_callOutcomesMatchPrediction() public view {
        vm.assertEq(handler.ghostUnexpectedOutcomes(), 0, "a call succeeded or failed unexpectedly");
    }

    function invariant_permitNonceCountsSuccessfulPermits() public view {
        address[] memory actors = handler.actors();
        for (uint256 i = 0; i < actors.length; ++i) {
            vm.assertEq(token.nonces(actors[i]), handler.ghostPermits(actors[i]), "permit nonce");
        }
    }
}
