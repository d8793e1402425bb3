// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {OpenToken} from "../src/OpenToken.sol";
import {IERC3009} from "../src/interfaces/IERC3009.sol";
import {TokenERC1271Wallet} from "./mocks/TokenERC1271Wallet.sol";
import {TokenRejectingERC1271Wallet} from "./mocks/TokenRejectingERC1271Wallet.sol";
import {TokenSigUtils} from "./mocks/TokenSigUtils.sol";
import {Test} from "./utils/Test.sol";

/// @notice Unit and fuzz tests of OpenToken: fixed supply, ERC-20, EIP-2612 permit and EIP-3009 authorizations.
/// @dev Every signature is made with `vm.sign` over a digest that {TokenSigUtils} rebuilds from the written-out type
/// strings, never over a hash read back from the token. EIP-3009 behaviour is checked for both the (v, r, s) and the
/// bytes-signature overloads: each `_check...(SigForm)` body runs once per form through a `_vrs` and a `_bytes` test.
contract OpenTokenTest is Test {
    /// @notice Which overload of an EIP-3009 function a check submits through.
    enum SigForm {
        Vrs,
        Bytes
    }

    struct Signature {
        uint8 v;
        bytes32 r;
        bytes32 s;
    }

    uint256 private constant START_TIME = 1_700_000_000;
    uint256 private constant ALICE_FUNDS = 1000 ether;
    uint256 private constant WALLET_FUNDS = 1000 ether;
    uint256 private constant AMOUNT = 100 ether;
    uint256 private constant VALIDITY = 1 hours;
    /// @dev The order of secp256k1's group: `s` and `n - s` are both valid ECDSA `s` values for the same signature.
    uint256 private constant SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;
    /// @dev Base mainnet, a chain the token could also be deployed on at the same address.
    uint256 private constant OTHER_CHAIN_ID = 8453;

    OpenToken internal token;
    TokenERC1271Wallet internal wallet;
    TokenRejectingERC1271Wallet internal rejectingWallet;

    address internal holder;
    address internal alice;
    uint256 internal aliceKey;
    address internal bob;
    uint256 internal bobKey;
    address internal carol;
    address internal relayer;
    address internal walletOwner;
    uint256 internal walletOwnerKey;

    function setUp() public {
        (holder,) = makeAccount("holder");
        (alice, aliceKey) = makeAccount("alice");
        (bob, bobKey) = makeAccount("bob");
        (carol,) = makeAccount("carol");
        (relayer,) = makeAccount("relayer");
        (walletOwner, walletOwnerKey) = makeAccount("walletOwner");

        // Deployed first, so its address is the test contract's first CREATE address (the eth-account vector
        // below is signed for it).
        token = new OpenToken(holder);
        wallet = new TokenERC1271Wallet(walletOwner);
        rejectingWallet = new TokenRejectingERC1271Wallet();
        vm.label(address(token), "OpenToken");
        vm.label(address(wallet), "wallet");
        vm.label(address(rejectingWallet), "rejectingWallet");

        _fund(alice, ALICE_FUNDS);
        _fund(address(wallet), WALLET_FUNDS);
        _fund(address(rejectingWallet), WALLET_FUNDS);

        vm.warp(START_TIME);
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Metadata and fixed supply
    // ---------------------------------------------------------------------------------------------------------------

    function test_metadata_isOpenWith18Decimals() public view {
        vm.assertEq(token.name(), "Open");
        vm.assertEq(token.symbol(), "OPEN");
        vm.assertEq(uint256(token.decimals()), 18, "decimals");
    }

    function test_constructor_mintsWholeSupplyOnceToHolder() public {
        vm.expectEmit();
        emit IERC20.Transfer(address(0), carol, 1_000_000_000 ether);
        OpenToken fresh = new OpenToken(carol);

        vm.assertEq(fresh.TOTAL_SUPPLY(), 1_000_000_000 ether, "TOTAL_SUPPLY");
        vm.assertEq(fresh.totalSupply(), 1_000_000_000 ether, "totalSupply");
        vm.assertEq(fresh.balanceOf(carol), 1_000_000_000 ether, "holder balance");
    }

    function test_constructor_zeroHolder_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(IERC20Errors.ERC20InvalidReceiver.selector, address(0)));
        new OpenToken(address(0));
    }

    function test_supply_hasNoMintOrBurnEntryPoint() public {
        bytes[4] memory calls = [
            abi.encodeWithSignature("mint(address,uint256)", holder, 1 ether),
            abi.encodeWithSignature("mint(uint256)", 1 ether),
            abi.encodeWithSignature("burn(uint256)", 1 ether),
            abi.encodeWithSignature("burnFrom(address,uint256)", holder, 1 ether)
        ];
        for (uint256 i = 0; i < calls.length; ++i) {
            // The holder is the account most likely to be privileged, so it makes the attempt.
            vm.prank(holder);
            (bool success, bytes memory returnData) = address(token).call(calls[i]);
            vm.assertFalse(success, "supply-changing selector must not exist");
            vm.assertEq(returnData.length, 0, "no function and no fallback: empty revert");
        }
        vm.assertEq(token.totalSupply(), 1_000_000_000 ether, "supply unchanged");
    }

    // ---------------------------------------------------------------------------------------------------------------
    // ERC-20 smoke tests
    // ---------------------------------------------------------------------------------------------------------------

    function test_transfer_movesBalanceAndEmits() public {
        vm.expectEmit(address(token));
        emit IERC20.Transfer(alice, bob, AMOUNT);
        vm.prank(alice);
        bool success = token.transfer(bob, AMOUNT);
        vm.snapshotGasLastCall("transfer");

        vm.assertTrue(success, "returns true");
        vm.assertEq(token.balanceOf(alice), ALICE_FUNDS - AMOUNT, "alice");
        vm.assertEq(token.balanceOf(bob), AMOUNT, "bob");
    }

    function test_transfer_moreThanBalance_reverts() public {
        vm.expectRevert(
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientBalance.selector, alice, ALICE_FUNDS, ALICE_FUNDS + 1)
        );
        vm.prank(alice);
        // forge-lint: disable-next-line(erc20-unchecked-transfer)
        token.transfer(bob, ALICE_FUNDS + 1); // reverts: no return value to check
    }

    function test_transfer_toZeroAddress_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(IERC20Errors.ERC20InvalidReceiver.selector, address(0)));
        vm.prank(alice);
        // forge-lint: disable-next-line(erc20-unchecked-transfer)
        token.transfer(address(0), AMOUNT); // reverts: no return value to check
    }

    function test_approve_setsAllowanceAndEmits() public {
        vm.expectEmit(address(token));
        emit IERC20.Approval(alice, bob, AMOUNT);
        vm.prank(alice);
        vm.assertTrue(token.approve(bob, AMOUNT), "returns true");
        vm.assertEq(token.allowance(alice, bob), AMOUNT, "allowance");
    }

    function test_transferFrom_spendsAllowance() public {
        vm.prank(alice);
        token.approve(bob, AMOUNT);

        vm.expectEmit(address(token));
        emit IERC20.Transfer(alice, carol, 40 ether);
        vm.prank(bob);
        vm.assertTrue(token.transferFrom(alice, carol, 40 ether), "returns true");

        vm.assertEq(token.allowance(alice, bob), AMOUNT - 40 ether, "allowance spent");
        vm.assertEq(token.balanceOf(alice), ALICE_FUNDS - 40 ether, "alice");
        vm.assertEq(token.balanceOf(carol), 40 ether, "carol");
    }

    function test_transferFrom_infiniteAllowance_isNotSpent() public {
        vm.prank(alice);
        token.approve(bob, type(uint256).max);
        vm.prank(bob);
        vm.assertTrue(token.transferFrom(alice, carol, AMOUNT), "returns true");
        vm.assertEq(token.allowance(alice, bob), type(uint256).max, "infinite allowance kept");
    }

    function test_transferFrom_moreThanAllowance_reverts() public {
        vm.prank(alice);
        token.approve(bob, AMOUNT);
        vm.expectRevert(
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientAllowance.selector, bob, AMOUNT, AMOUNT + 1)
        );
        vm.prank(bob);
        // forge-lint: disable-next-line(erc20-unchecked-transfer)
        token.transferFrom(alice, carol, AMOUNT + 1); // reverts: no return value to check
    }

    // ---------------------------------------------------------------------------------------------------------------
    // EIP-712 domain and type hashes
    // ---------------------------------------------------------------------------------------------------------------

    function test_typeHashes_matchStandardTypeStrings() public view {
        bytes32 transferTypeHash = keccak256(
            "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
        );
        bytes32 receiveTypeHash = keccak256(
            "ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
        );
        bytes32 cancelTypeHash = keccak256("CancelAuthorization(address authorizer,bytes32 nonce)");

        vm.assertEq(token.TRANSFER_WITH_AUTHORIZATION_TYPEHASH(), transferTypeHash, "transfer type hash");
        vm.assertEq(token.RECEIVE_WITH_AUTHORIZATION_TYPEHASH(), receiveTypeHash, "receive type hash");
        vm.assertEq(token.CANCEL_AUTHORIZATION_TYPEHASH(), cancelTypeHash, "cancel type hash");
        // The constants USDC's FiatToken publishes, which x402 `exact` clients sign against.
        vm.assertEq(transferTypeHash, 0x7c7c6cdb67a18743f49ec6fa9b35f50d52ed05cbed4cc592e13b44501c1a2267, "USDC");
        vm.assertEq(receiveTypeHash, 0xd099cc98ef71107a616c4f0f941f04c322d8e254fe26b3c6668db87aae413de8, "USDC");
        vm.assertEq(cancelTypeHash, 0x158b0a9edf7a828aad02f63cd515c68ef2f50ba807396f6d12842833a1597429, "USDC");
    }

    function test_domainSeparator_isEip712DomainOfOpenVersion1() public view {
        bytes32 expected = keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256("Open"),
                keccak256("1"),
                block.chainid,
                address(token)
            )
        );
        vm.assertEq(token.DOMAIN_SEPARATOR(), expected, "DOMAIN_SEPARATOR");
    }

    function test_domainSeparator_followsChainId() public {
        vm.chainId(OTHER_CHAIN_ID);
        vm.assertEq(
            token.DOMAIN_SEPARATOR(), TokenSigUtils.domainSeparator(address(token), OTHER_CHAIN_ID), "rebuilt on fork"
        );
    }

    function test_eip712Domain_reportsNameVersionChainAndContract() public view {
        (
            bytes1 fields,
            string memory name,
            string memory version,
            uint256 chainId,
            address verifyingContract,
            bytes32 salt,
            uint256[] memory extensions
        ) = token.eip712Domain();
        vm.assertEq(uint256(uint8(fields)), 0x0f, "name, version, chainId, verifyingContract");
        vm.assertEq(name, "Open");
        vm.assertEq(version, "1");
        vm.assertEq(chainId, block.chainid, "chainId");
        vm.assertEq(verifyingContract, address(token), "verifyingContract");
        vm.assertEq(salt, bytes32(0), "salt");
        vm.assertEq(extensions.length, 0, "extensions");
    }

    // ---------------------------------------------------------------------------------------------------------------
    // EIP-2612 permit
    // ---------------------------------------------------------------------------------------------------------------

    function test_permit_validSignature_setsAllowanceAndUsesNonce() public {
        uint256 deadline = block.timestamp + VALIDITY;
        Signature memory sig = _signPermit(aliceKey, alice, bob, AMOUNT, 0, deadline);

        vm.expectEmit(address(token));
        emit IERC20.Approval(alice, bob, AMOUNT);
        vm.prank(relayer);
        token.permit(alice, bob, AMOUNT, deadline, sig.v, sig.r, sig.s);
        vm.snapshotGasLastCall("permit");

        vm.assertEq(token.allowance(alice, bob), AMOUNT, "allowance");
        vm.assertEq(token.nonces(alice), 1, "nonce used");
    }

    function test_permit_atDeadline_succeeds() public {
        uint256 deadline = block.timestamp;
        Signature memory sig = _signPermit(aliceKey, alice, bob, AMOUNT, 0, deadline);
        token.permit(alice, bob, AMOUNT, deadline, sig.v, sig.r, sig.s);
        vm.assertEq(token.allowance(alice, bob), AMOUNT, "allowance");
    }

    function test_permit_expired_reverts() public {
        uint256 deadline = block.timestamp - 1;
        Signature memory sig = _signPermit(aliceKey, alice, bob, AMOUNT, 0, deadline);
        vm.expectRevert(abi.encodeWithSelector(ERC20Permit.ERC2612ExpiredSignature.selector, deadline));
        token.permit(alice, bob, AMOUNT, deadline, sig.v, sig.r, sig.s);
    }

    function test_permit_wrongSigner_reverts() public {
        uint256 deadline = block.timestamp + VALIDITY;
        Signature memory sig = _signPermit(bobKey, alice, bob, AMOUNT, 0, deadline);
        vm.expectRevert(abi.encodeWithSelector(ERC20Permit.ERC2612InvalidSigner.selector, bob, alice));
        token.permit(alice, bob, AMOUNT, deadline, sig.v, sig.r, sig.s);
    }

    function test_permit_replayed_reverts() public {
        uint256 deadline = block.timestamp + VALIDITY;
        Signature memory sig = _signPermit(aliceKey, alice, bob, AMOUNT, 0, deadline);
        token.permit(alice, bob, AMOUNT, deadline, sig.v, sig.r, sig.s);

        // The token now hashes nonce 1, so the old signature recovers to some unrelated address.
        address recovered = ecrecover(
            TokenSigUtils.permitDigest(address(token), block.chainid, alice, bob, AMOUNT, 1, deadline),
            sig.v,
            sig.r,
            sig.s
        );
        vm.expectRevert(abi.encodeWithSelector(ERC20Permit.ERC2612InvalidSigner.selector, recovered, alice));
        token.permit(alice, bob, AMOUNT, deadline, sig.v, sig.r, sig.s);
    }

    // ---------------------------------------------------------------------------------------------------------------
    // EIP-3009: successful use
    // ---------------------------------------------------------------------------------------------------------------

    function test_transferWithAuthorization_vrs_byRelayer_movesFundsAndUsesNonce() public {
        _checkTransferMovesFundsAndUsesNonce(SigForm.Vrs);
    }

    function test_transferWithAuthorization_bytes_byRelayer_movesFundsAndUsesNonce() public {
        _checkTransferMovesFundsAndUsesNonce(SigForm.Bytes);
    }

    function _checkTransferMovesFundsAndUsesNonce(SigForm form) private {
        TokenSigUtils.Authorization memory auth = _authorization(alice, bob, AMOUNT, "pay bob");
        Signature memory sig = _signTransfer(aliceKey, auth);
        vm.assertFalse(token.authorizationState(alice, auth.nonce), "nonce unused before");

        vm.expectEmit(address(token));
        emit IERC3009.AuthorizationUsed(alice, auth.nonce);
        vm.expectEmit(address(token));
        emit IERC20.Transfer(alice, bob, AMOUNT);
        vm.prank(relayer);
        _submitTransfer(form, auth, sig);
        vm.snapshotGasLastCall(string.concat("transferWithAuthorization_", _formName(form)));

        vm.assertTrue(token.authorizationState(alice, auth.nonce), "nonce used");
        vm.assertEq(token.balanceOf(alice), ALICE_FUNDS - AMOUNT, "alice");
        vm.assertEq(token.balanceOf(bob), AMOUNT, "bob");
        vm.assertEq(token.balanceOf(relayer), 0, "relayer gets nothing");
    }

    function test_receiveWithAuthorization_vrs_byPayee_movesFundsAndUsesNonce() public {
        _checkReceiveMovesFundsAndUsesNonce(SigForm.Vrs);
    }

    function test_receiveWithAuthorization_bytes_byPayee_movesFundsAndUsesNonce() public {
        _checkReceiveMovesFundsAndUsesNonce(SigForm.Bytes);
    }

    function _checkReceiveMovesFundsAndUsesNonce(SigForm form) private {
        TokenSigUtils.Authorization memory auth = _authorization(alice, bob, AMOUNT, "deposit for bob");
        Signature memory sig = _signReceive(aliceKey, auth);

        vm.expectEmit(address(token));
        emit IERC3009.AuthorizationUsed(alice, auth.nonce);
        vm.expectEmit(address(token));
        emit IERC20.Transfer(alice, bob, AMOUNT);
        vm.prank(bob);
        _submitReceive(form, auth, sig);
        vm.snapshotGasLastCall(string.concat("receiveWithAuthorization_", _formName(form)));

        vm.assertTrue(token.authorizationState(alice, auth.nonce), "nonce used");
        vm.assertEq(token.balanceOf(alice), ALICE_FUNDS - AMOUNT, "alice");
        vm.assertEq(token.balanceOf(bob), AMOUNT, "bob");
    }

    function test_cancelAuthorization_vrs_marksNonceAndEmits() public {
        _checkCancelMarksNonce(SigForm.Vrs);
    }

    function test_cancelAuthorization_bytes_marksNonceAndEmits() public {
        _checkCancelMarksNonce(SigForm.Bytes);
    }

    function _checkCancelMarksNonce(SigForm form) private {
        bytes32 nonce = keccak256("to cancel");
        Signature memory sig = _signCancel(aliceKey, alice, nonce);

        vm.expectEmit(address(token));
        emit IERC3009.AuthorizationCanceled(alice, nonce);
        vm.prank(relayer);
        _submitCancel(form, alice, nonce, sig);
        vm.snapshotGasLastCall(string.concat("cancelAuthorization_", _formName(form)));

        vm.assertTrue(token.authorizationState(alice, nonce), "nonce canceled");
        vm.assertEq(token.balanceOf(alice), ALICE_FUNDS, "no funds move");
    }

    function test_transferWithAuthorization_sameNonceOfAnotherAuthorizer_succeeds() public {
        bytes32 nonce = keccak256("shared nonce");
        TokenSigUtils.Authorization memory fromAlice = _authorization(alice, carol, AMOUNT, "shared nonce");
        _submitTransfer(SigForm.Vrs, fromAlice, _signTransfer(aliceKey, fromAlice));

        _fund(bob, AMOUNT);
        TokenSigUtils.Authorization memory fromBob = _authorization(bob, carol, AMOUNT, "shared nonce");
        _submitTransfer(SigForm.Vrs, fromBob, _signTransfer(bobKey, fromBob));

        vm.assertTrue(token.authorizationState(alice, nonce), "alice's nonce");
        vm.assertTrue(token.authorizationState(bob, nonce), "bob's nonce");
        vm.assertEq(token.balanceOf(carol), 2 * AMOUNT, "both paid");
    }

    /// @notice Interoperability: a signature made off-chain by eth-account (the signer behind web3.py and x402's
    /// Python client) over the EIP-712 JSON of a TransferWithAuthorization verifies on chain. Produced with:
    /// `Account.sign_message(encode_typed_data(full_message=typed), KEY)`, where `typed` is the standard
    /// TransferWithAuthorization type, the domain {name: "Open", version: "1", chainId: 31337, verifyingContract:
    /// 0x5615dEB798BB3E4dFa0139dFa1b3D433Cc23b72f} and the message below; KEY is anvil's first dev key.
    function test_transferWithAuthorization_ethAccountSignature_verifies() public {
        address payer = 0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266;
        address payee = 0x70997970C51812dc3A010C7d01b50e0d17dc79C8;
        bytes32 nonce = keccak256("staked/x402/vector-1");
        bytes memory signature =
            hex"c78717511e8c119939b74b9026be8aee20dfac1c8c9c9103157252e5ff1f424a027123b712118ce9da4a7e6b7cfd0e86481bee3cce72ec77dfe01883bbcd22be1c";
        vm.assertEq(block.chainid, 31_337, "vector signed for chain 31337");
        vm.assertEq(address(token), 0x5615dEB798BB3E4dFa0139dFa1b3D433Cc23b72f, "vector signed for this address");
        _fund(payer, 2 ether);

        token.transferWithAuthorization(payer, payee, 1.5 ether, 1_699_999_400, 1_700_000_300, nonce, signature);

        vm.assertEq(token.balanceOf(payee), 1.5 ether, "payee");
        vm.assertTrue(token.authorizationState(payer, nonce), "nonce used");
    }

    // ---------------------------------------------------------------------------------------------------------------
    // EIP-3009: nonces
    // ---------------------------------------------------------------------------------------------------------------

    function test_transferWithAuthorization_vrs_reusedNonce_reverts() public {
        _checkReusedNonceReverts(SigForm.Vrs);
    }

    function test_transferWithAuthorization_bytes_reusedNonce_reverts() public {
        _checkReusedNonceReverts(SigForm.Bytes);
    }

    function _checkReusedNonceReverts(SigForm form) private {
        TokenSigUtils.Authorization memory auth = _authorization(alice, bob, AMOUNT, "once");
        Signature memory sig = _signTransfer(aliceKey, auth);
        _submitTransfer(form, auth, sig);

        // The very same authorization, replayed.
        vm.expectRevert(abi.encodeWithSelector(IERC3009.ERC3009AuthorizationUsedOrCanceled.selector, alice, auth.nonce));
        _submitTransfer(form, auth, sig);

        // A fresh, correctly signed authorization that merely shares the nonce.
        TokenSigUtils.Authorization memory other = _authorization(alice, carol, 1 ether, "once");
        Signature memory otherSig = _signTransfer(aliceKey, other);
        vm.expectRevert(abi.encodeWithSelector(IERC3009.ERC3009AuthorizationUsedOrCanceled.selector, alice, auth.nonce));
        _submitTransfer(form, other, otherSig);
    }

    function test_cancelAuthorization_vrs_thenTransfer_reverts() public {
        _checkCancelThenTransferReverts(SigForm.Vrs);
    }

    function test_cancelAuthorization_bytes_thenTransfer_reverts() public {
        _checkCancelThenTransferReverts(SigForm.Bytes);
    }

    function _checkCancelThenTransferReverts(SigForm form) private {
        TokenSigUtils.Authorization memory auth = _authorization(alice, bob, AMOUNT, "regretted");
        Signature memory transferSig = _signTransfer(aliceKey, auth);
        Signature memory receiveSig = _signReceive(aliceKey, auth);
        _submitCancel(form, alice, auth.nonce, _signCancel(aliceKey, alice, auth.nonce));

        bytes memory usedOrCanceled =
            abi.encodeWithSelector(IERC3009.ERC3009AuthorizationUsedOrCanceled.selector, alice, auth.nonce);
        vm.expectRevert(usedOrCanceled);
        _submitTransfer(form, auth, transferSig);
        vm.expectRevert(usedOrCanceled);
        vm.prank(bob);
        _submitReceive(form, auth, receiveSig);
        vm.assertEq(token.balanceOf(alice), ALICE_FUNDS, "nothing moved");
    }

    function test_cancelAuthorization_vrs_usedNonce_reverts() public {
        _checkCancelUsedNonceReverts(SigForm.Vrs);
    }

    function test_cancelAuthorization_bytes_usedNonce_reverts() public {
        _checkCancelUsedNonceReverts(SigForm.Bytes);
    }

    function _checkCancelUsedNonceReverts(SigForm form) private {
        TokenSigUtils.Authorization memory auth = _authorization(alice, bob, AMOUNT, "spent");
        _submitTransfer(form, auth, _signTransfer(aliceKey, auth));
        Signature memory cancelSig = _signCancel(aliceKey, alice, auth.nonce);

        vm.expectRevert(abi.encodeWithSelector(IERC3009.ERC3009AuthorizationUsedOrCanceled.selector, alice, auth.nonce));
        _submitCancel(form, alice, auth.nonce, cancelSig);
    }

    function test_cancelAuthorization_twice_reverts() public {
        bytes32 nonce = keccak256("cancel twice");
        Signature memory sig = _signCancel(aliceKey, alice, nonce);
        _submitCancel(SigForm.Vrs, alice, nonce, sig);

        vm.expectRevert(abi.encodeWithSelector(IERC3009.ERC3009AuthorizationUsedOrCanceled.selector, alice, nonce));
        _submitCancel(SigForm.Vrs, alice, nonce, sig);
    }

    function test_cancelAuthorization_wrongSigner_reverts() public {
        bytes32 nonce = keccak256("griefed");
        Signature memory sig = _signCancel(bobKey, alice, nonce);

        vm.expectRevert(abi.encodeWithSelector(IERC3009.ERC3009InvalidSignature.selector, alice));
        _submitCancel(SigForm.Vrs, alice, nonce, sig);
        vm.assertFalse(token.authorizationState(alice, nonce), "nonce still usable");
    }

    // ---------------------------------------------------------------------------------------------------------------
    // EIP-3009: validity window (validAfter < block.timestamp < validBefore)
    // ---------------------------------------------------------------------------------------------------------------

    function test_transferWithAuthorization_vrs_atValidBefore_revertsAndOneSecondEarlierSucceeds() public {
        _checkValidBeforeBoundary(SigForm.Vrs);
    }

    function test_transferWithAuthorization_bytes_atValidBefore_revertsAndOneSecondEarlierSucceeds() public {
        _checkValidBeforeBoundary(SigForm.Bytes);
    }

    function _checkValidBeforeBoundary(SigForm form) private {
        TokenSigUtils.Authorization memory auth = _authorization(alice, bob, AMOUNT, "expiring");
        auth.validBefore = block.timestamp + 10;
        Signature memory sig = _signTransfer(aliceKey, auth);

        vm.warp(auth.validBefore);
        vm.expectRevert(
            abi.encodeWithSelector(IERC3009.ERC3009AuthorizationExpired.selector, auth.validBefore, auth.validBefore)
        );
        _submitTransfer(form, auth, sig);

        vm.warp(auth.validBefore - 1);
        _submitTransfer(form, auth, sig);
        vm.assertEq(token.balanceOf(bob), AMOUNT, "valid one second before validBefore");
    }

    function test_transferWithAuthorization_vrs_atValidAfter_revertsAndOneSecondLaterSucceeds() public {
        _checkValidAfterBoundary(SigForm.Vrs);
    }

    function test_transferWithAuthorization_bytes_atValidAfter_revertsAndOneSecondLaterSucceeds() public {
        _checkValidAfterBoundary(SigForm.Bytes);
    }

    function _checkValidAfterBoundary(SigForm form) private {
        TokenSigUtils.Authorization memory auth = _authorization(alice, bob, AMOUNT, "postdated");
        auth.validAfter = block.timestamp + 10;
        Signature memory sig = _signTransfer(aliceKey, auth);

        vm.warp(auth.validAfter);
        vm.expectRevert(
            abi.encodeWithSelector(IERC3009.ERC3009AuthorizationNotYetValid.selector, auth.validAfter, auth.validAfter)
        );
        _submitTransfer(form, auth, sig);

        vm.warp(auth.validAfter + 1);
        _submitTransfer(form, auth, sig);
        vm.assertEq(token.balanceOf(bob), AMOUNT, "valid one second after validAfter");
    }

    function test_receiveWithAuthorization_expired_reverts() public {
        TokenSigUtils.Authorization memory auth = _authorization(alice, bob, AMOUNT, "late deposit");
        Signature memory sig = _signReceive(aliceKey, auth);
        vm.warp(auth.validBefore);

        vm.expectRevert(
            abi.encodeWithSelector(IERC3009.ERC3009AuthorizationExpired.selector, auth.validBefore, auth.validBefore)
        );
        vm.prank(bob);
        _submitReceive(SigForm.Vrs, auth, sig);
    }

    // ---------------------------------------------------------------------------------------------------------------
    // EIP-3009: signatures
    // ---------------------------------------------------------------------------------------------------------------

    function test_transferWithAuthorization_vrs_wrongSigner_reverts() public {
        _checkWrongSignerReverts(SigForm.Vrs);
    }

    function test_transferWithAuthorization_bytes_wrongSigner_reverts() public {
        _checkWrongSignerReverts(SigForm.Bytes);
    }

    function _checkWrongSignerReverts(SigForm form) private {
        TokenSigUtils.Authorization memory auth = _authorization(alice, bob, AMOUNT, "forged");
        _expectInvalidSignatureAndNoEffect(form, auth, _signTransfer(bobKey, auth));
    }

    function test_transferWithAuthorization_vrs_tamperedValue_reverts() public {
        _checkTamperedValueReverts(SigForm.Vrs);
    }

    function test_transferWithAuthorization_bytes_tamperedValue_reverts() public {
        _checkTamperedValueReverts(SigForm.Bytes);
    }

    function _checkTamperedValueReverts(SigForm form) private {
        TokenSigUtils.Authorization memory auth = _authorization(alice, bob, AMOUNT, "tampered value");
        Signature memory sig = _signTransfer(aliceKey, auth);
        auth.value = AMOUNT + 1;
        _expectInvalidSignatureAndNoEffect(form, auth, sig);
    }

    function test_transferWithAuthorization_vrs_tamperedRecipient_reverts() public {
        _checkTamperedRecipientReverts(SigForm.Vrs);
    }

    function test_transferWithAuthorization_bytes_tamperedRecipient_reverts() public {
        _checkTamperedRecipientReverts(SigForm.Bytes);
    }

    function _checkTamperedRecipientReverts(SigForm form) private {
        TokenSigUtils.Authorization memory auth = _authorization(alice, bob, AMOUNT, "tampered recipient");
        Signature memory sig = _signTransfer(aliceKey, auth);
        auth.to = carol;
        _expectInvalidSignatureAndNoEffect(form, auth, sig);
    }

    function test_transferWithAuthorization_vrs_extendedValidBefore_reverts() public {
        _checkExtendedValidBeforeReverts(SigForm.Vrs);
    }

    function test_transferWithAuthorization_bytes_extendedValidBefore_reverts() public {
        _checkExtendedValidBeforeReverts(SigForm.Bytes);
    }

    function _checkExtendedValidBeforeReverts(SigForm form) private {
        TokenSigUtils.Authorization memory auth = _authorization(alice, bob, AMOUNT, "extended");
        Signature memory sig = _signTransfer(aliceKey, auth);
        auth.validBefore += 1 days;
        _expectInvalidSignatureAndNoEffect(form, auth, sig);
    }

    function test_transferWithAuthorization_vrs_highSTwin_reverts() public {
        _checkHighSTwinReverts(SigForm.Vrs);
    }

    function test_transferWithAuthorization_bytes_highSTwin_reverts() public {
        _checkHighSTwinReverts(SigForm.Bytes);
    }

    function _checkHighSTwinReverts(SigForm form) private {
        TokenSigUtils.Authorization memory auth = _authorization(alice, bob, AMOUNT, "malleable");
        Signature memory sig = _signTransfer(aliceKey, auth);
        Signature memory twin = Signature({
            v: sig.v == 27 ? 28 : 27,
            r: sig.r,
            // A low `s` from vm.sign lies in [1, SECP256K1_N / 2], so `n - s` is its high twin.
            s: bytes32(SECP256K1_N - uint256(sig.s))
        });
        // The twin is a genuine signature by alice as far as the precompile is concerned...
        bytes32 digest = TokenSigUtils.transferDigest(address(token), block.chainid, auth);
        vm.assertEq(ecrecover(digest, twin.v, twin.r, twin.s), alice, "twin recovers to alice");
        // ...but the token accepts only the low-s form, so one authorization has one signature.
        _expectInvalidSignatureAndNoEffect(form, auth, twin);

        _submitTransfer(form, auth, sig);
        vm.assertEq(token.balanceOf(bob), AMOUNT, "low-s original still works");
    }

    function test_transferWithAuthorization_compactSignature_reverts() public {
        TokenSigUtils.Authorization memory auth = _authorization(alice, bob, AMOUNT, "compact");
        Signature memory sig = _signTransfer(aliceKey, auth);
        // EIP-2098 (r, yParity·2^255 | s): 64 bytes. Like USDC, the token takes 65-byte ECDSA signatures only.
        bytes32 vs = bytes32(uint256(sig.v - 27) << 255 | uint256(sig.s));

        vm.expectRevert(abi.encodeWithSelector(IERC3009.ERC3009InvalidSignature.selector, alice));
        token.transferWithAuthorization(
            auth.from, auth.to, auth.value, auth.validAfter, auth.validBefore, auth.nonce, abi.encodePacked(sig.r, vs)
        );
    }

    function test_transferWithAuthorization_fromZeroAddress_reverts() public {
        TokenSigUtils.Authorization memory auth = _authorization(address(0), bob, AMOUNT, "from nobody");
        // ecrecover returns address(0) for garbage; that must never count as a signature of address(0).
        Signature memory garbage = Signature({v: 27, r: bytes32(0), s: bytes32(0)});
        bytes32 digest = TokenSigUtils.transferDigest(address(token), block.chainid, auth);
        vm.assertEq(ecrecover(digest, garbage.v, garbage.r, garbage.s), address(0), "garbage recovers to 0");

        vm.expectRevert(abi.encodeWithSelector(IERC3009.ERC3009InvalidSignature.selector, address(0)));
        _submitTransfer(SigForm.Vrs, auth, garbage);
    }

    function test_transferWithAuthorization_toZeroAddress_revertsAndKeepsNonce() public {
        TokenSigUtils.Authorization memory auth = _authorization(alice, address(0), AMOUNT, "burn attempt");
        Signature memory sig = _signTransfer(aliceKey, auth);

        vm.expectRevert(abi.encodeWithSelector(IERC20Errors.ERC20InvalidReceiver.selector, address(0)));
        _submitTransfer(SigForm.Vrs, auth, sig);
        vm.assertFalse(token.authorizationState(alice, auth.nonce), "nonce unused");
    }

    function test_transferWithAuthorization_vrs_onOtherChain_reverts() public {
        _checkCrossChainReplayReverts(SigForm.Vrs);
    }

    function test_transferWithAuthorization_bytes_onOtherChain_reverts() public {
        _checkCrossChainReplayReverts(SigForm.Bytes);
    }

    function _checkCrossChainReplayReverts(SigForm form) private {
        uint256 originalChainId = block.chainid;
        TokenSigUtils.Authorization memory auth = _authorization(alice, bob, AMOUNT, "chain bound");
        Signature memory sig = _signTransfer(aliceKey, auth);

        vm.chainId(OTHER_CHAIN_ID);
        _expectInvalidSignatureAndNoEffect(form, auth, sig);

        vm.chainId(originalChainId);
        _submitTransfer(form, auth, sig);
        vm.assertEq(token.balanceOf(bob), AMOUNT, "valid on the chain it was signed for");
    }

    // ---------------------------------------------------------------------------------------------------------------
    // EIP-3009: transfer vs receive
    // ---------------------------------------------------------------------------------------------------------------

    function test_receiveWithAuthorization_vrs_byNonPayee_reverts() public {
        _checkReceiveByNonPayeeReverts(SigForm.Vrs);
    }

    function test_receiveWithAuthorization_bytes_byNonPayee_reverts() public {
        _checkReceiveByNonPayeeReverts(SigForm.Bytes);
    }

    function _checkReceiveByNonPayeeReverts(SigForm form) private {
        TokenSigUtils.Authorization memory auth = _authorization(alice, bob, AMOUNT, "front-run");
        Signature memory sig = _signReceive(aliceKey, auth);

        vm.expectRevert(abi.encodeWithSelector(IERC3009.ERC3009CallerMustBePayee.selector, relayer, bob));
        vm.prank(relayer);
        _submitReceive(form, auth, sig);
        vm.assertFalse(token.authorizationState(alice, auth.nonce), "nonce unused");
    }

    function test_receiveWithAuthorization_vrs_withTransferSignature_reverts() public {
        _checkTransferSignatureRejectedByReceive(SigForm.Vrs);
    }

    function test_receiveWithAuthorization_bytes_withTransferSignature_reverts() public {
        _checkTransferSignatureRejectedByReceive(SigForm.Bytes);
    }

    function _checkTransferSignatureRejectedByReceive(SigForm form) private {
        TokenSigUtils.Authorization memory auth = _authorization(alice, bob, AMOUNT, "wrong type");
        Signature memory sig = _signTransfer(aliceKey, auth);

        vm.expectRevert(abi.encodeWithSelector(IERC3009.ERC3009InvalidSignature.selector, alice));
        vm.prank(bob);
        _submitReceive(form, auth, sig);
    }

    function test_transferWithAuthorization_vrs_withReceiveSignature_reverts() public {
        _checkReceiveSignatureRejectedByTransfer(SigForm.Vrs);
    }

    function test_transferWithAuthorization_bytes_withReceiveSignature_reverts() public {
        _checkReceiveSignatureRejectedByTransfer(SigForm.Bytes);
    }

    function _checkReceiveSignatureRejectedByTransfer(SigForm form) private {
        TokenSigUtils.Authorization memory auth = _authorization(alice, bob, AMOUNT, "wrong type");
        // A payee-only authorization must not be turned into one anybody can submit.
        _expectInvalidSignatureAndNoEffect(form, auth, _signReceive(aliceKey, auth));
    }

    // ---------------------------------------------------------------------------------------------------------------
    // EIP-3009: ERC-1271 contract wallets
    // ---------------------------------------------------------------------------------------------------------------

    function test_transferWithAuthorization_bytes_fromERC1271Wallet_movesFunds() public {
        _checkWalletTransferMovesFunds(SigForm.Bytes);
    }

    /// @dev As in USDC v2.2, the (v, r, s) form also reaches ERC-1271, with the signature packed as r ‖ s ‖ v.
    function test_transferWithAuthorization_vrs_fromERC1271Wallet_movesFunds() public {
        _checkWalletTransferMovesFunds(SigForm.Vrs);
    }

    function _checkWalletTransferMovesFunds(SigForm form) private {
        TokenSigUtils.Authorization memory auth = _authorization(address(wallet), bob, AMOUNT, "wallet pays");
        Signature memory sig = _signTransfer(walletOwnerKey, auth);

        vm.expectEmit(address(token));
        emit IERC3009.AuthorizationUsed(address(wallet), auth.nonce);
        _submitTransfer(form, auth, sig);

        vm.assertTrue(token.authorizationState(address(wallet), auth.nonce), "nonce used");
        vm.assertEq(token.balanceOf(address(wallet)), WALLET_FUNDS - AMOUNT, "wallet");
        vm.assertEq(token.balanceOf(bob), AMOUNT, "bob");
    }

    function test_transferWithAuthorization_bytes_fromERC1271WalletSignedByNonOwner_reverts() public {
        TokenSigUtils.Authorization memory auth = _authorization(address(wallet), bob, AMOUNT, "not the owner");
        Signature memory sig = _signTransfer(aliceKey, auth);

        vm.expectRevert(abi.encodeWithSelector(IERC3009.ERC3009InvalidSignature.selector, address(wallet)));
        _submitTransfer(SigForm.Bytes, auth, sig);
    }

    function test_transferWithAuthorization_bytes_fromRejectingWallet_reverts() public {
        TokenSigUtils.Authorization memory auth = _authorization(address(rejectingWallet), bob, AMOUNT, "rejected");
        Signature memory sig = _signTransfer(walletOwnerKey, auth);

        vm.expectRevert(abi.encodeWithSelector(IERC3009.ERC3009InvalidSignature.selector, address(rejectingWallet)));
        _submitTransfer(SigForm.Bytes, auth, sig);
        vm.assertEq(token.balanceOf(address(rejectingWallet)), WALLET_FUNDS, "funds stay");
    }

    function test_receiveWithAuthorization_bytes_fromERC1271Wallet_movesFunds() public {
        TokenSigUtils.Authorization memory auth = _authorization(address(wallet), bob, AMOUNT, "wallet deposit");
        Signature memory sig = _signReceive(walletOwnerKey, auth);
        vm.prank(bob);
        _submitReceive(SigForm.Bytes, auth, sig);
        vm.assertEq(token.balanceOf(bob), AMOUNT, "bob");
    }

    function test_cancelAuthorization_bytes_fromERC1271Wallet_marksNonce() public {
        bytes32 nonce = keccak256("wallet cancels");
        _submitCancel(SigForm.Bytes, address(wallet), nonce, _signCancel(walletOwnerKey, address(wallet), nonce));
        vm.assertTrue(token.authorizationState(address(wallet), nonce), "nonce canceled");
    }

    // ---------------------------------------------------------------------------------------------------------------
    // EIP-3009: balance
    // ---------------------------------------------------------------------------------------------------------------

    function test_transferWithAuthorization_vrs_insufficientBalance_revertsAndKeepsNonce() public {
        _checkInsufficientBalanceKeepsNonce(SigForm.Vrs);
    }

    function test_transferWithAuthorization_bytes_insufficientBalance_revertsAndKeepsNonce() public {
        _checkInsufficientBalanceKeepsNonce(SigForm.Bytes);
    }

    function _checkInsufficientBalanceKeepsNonce(SigForm form) private {
        TokenSigUtils.Authorization memory auth = _authorization(alice, bob, ALICE_FUNDS + 1, "too much");
        Signature memory sig = _signTransfer(aliceKey, auth);

        vm.expectRevert(
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientBalance.selector, alice, ALICE_FUNDS, ALICE_FUNDS + 1)
        );
        _submitTransfer(form, auth, sig);
        vm.assertFalse(token.authorizationState(alice, auth.nonce), "the whole call reverted: nonce unused");

        // Once alice holds exactly `value`, the same authorization goes through.
        _fund(alice, 1);
        _submitTransfer(form, auth, sig);
        vm.assertEq(token.balanceOf(alice), 0, "alice spent everything");
        vm.assertEq(token.balanceOf(bob), ALICE_FUNDS + 1, "bob");
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Fuzz
    // ---------------------------------------------------------------------------------------------------------------

    /// @notice The transfer succeeds iff validAfter < now < validBefore and value <= balance; otherwise it reverts
    /// with the first failing check (time, then balance) and changes nothing.
    function testFuzz_transferWithAuthorization_succeedsIffInWindowAndFunded(
        uint256 timestamp,
        uint256 validAfterOffset,
        uint256 validBeforeOffset,
        uint256 value,
        bytes32 nonce,
        bool asBytes
    ) public {
        // Offsets within a few seconds of `now` so that the boundaries (offset 0) come up often.
        uint256 nowTime = bound(timestamp, 10, type(uint64).max);
        TokenSigUtils.Authorization memory auth = TokenSigUtils.Authorization({
            from: alice,
            to: bob,
            value: bound(value, 0, 2 * ALICE_FUNDS),
            validAfter: nowTime - 5 + bound(validAfterOffset, 0, 10),
            validBefore: nowTime - 5 + bound(validBeforeOffset, 0, 10),
            nonce: nonce
        });
        SigForm form = asBytes ? SigForm.Bytes : SigForm.Vrs;
        Signature memory sig = _signTransfer(aliceKey, auth);
        vm.warp(nowTime);

        bool succeeds = auth.validAfter < nowTime && nowTime < auth.validBefore && auth.value <= ALICE_FUNDS;
        if (auth.validAfter >= nowTime) {
            vm.expectRevert(
                abi.encodeWithSelector(IERC3009.ERC3009AuthorizationNotYetValid.selector, auth.validAfter, nowTime)
            );
        } else if (auth.validBefore <= nowTime) {
            vm.expectRevert(
                abi.encodeWithSelector(IERC3009.ERC3009AuthorizationExpired.selector, auth.validBefore, nowTime)
            );
        } else if (!succeeds) {
            vm.expectRevert(
                abi.encodeWithSelector(IERC20Errors.ERC20InsufficientBalance.selector, alice, ALICE_FUNDS, auth.value)
            );
        }
        _submitTransfer(form, auth, sig);

        vm.assertEq(token.authorizationState(alice, nonce), succeeds, "nonce used iff success");
        vm.assertEq(token.balanceOf(bob), succeeds ? auth.value : 0, "bob");
        vm.assertEq(token.balanceOf(alice), succeeds ? ALICE_FUNDS - auth.value : ALICE_FUNDS, "alice");
    }

    function testFuzz_transferWithAuthorization_signedByAnyOtherKey_reverts(uint256 signerKey, bool asBytes) public {
        signerKey = bound(signerKey, 1, SECP256K1_N - 1);
        vm.assume(signerKey != aliceKey);
        TokenSigUtils.Authorization memory auth = _authorization(alice, bob, AMOUNT, "other key");

        _expectInvalidSignatureAndNoEffect(asBytes ? SigForm.Bytes : SigForm.Vrs, auth, _signTransfer(signerKey, auth));
    }

    function testFuzz_cancelAuthorization_blocksTransferAndReceive(bytes32 nonce, uint256 value) public {
        TokenSigUtils.Authorization memory auth = TokenSigUtils.Authorization({
            from: alice,
            to: bob,
            value: bound(value, 0, ALICE_FUNDS),
            validAfter: 0,
            validBefore: type(uint256).max,
            nonce: nonce
        });
        Signature memory transferSig = _signTransfer(aliceKey, auth);
        Signature memory receiveSig = _signReceive(aliceKey, auth);
        _submitCancel(SigForm.Bytes, alice, nonce, _signCancel(aliceKey, alice, nonce));

        bytes memory usedOrCanceled =
            abi.encodeWithSelector(IERC3009.ERC3009AuthorizationUsedOrCanceled.selector, alice, nonce);
        vm.expectRevert(usedOrCanceled);
        _submitTransfer(SigForm.Vrs, auth, transferSig);
        vm.expectRevert(usedOrCanceled);
        vm.prank(bob);
        _submitReceive(SigForm.Bytes, auth, receiveSig);
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Helpers
    // ---------------------------------------------------------------------------------------------------------------

    /// @dev Pays `to` from the holder's supply.
    function _fund(address to, uint256 amount) private {
        vm.prank(holder);
        vm.assertTrue(token.transfer(to, amount), "funding transfer");
    }

    /// @dev Valid from one second ago for an hour, the shape x402 clients use; the nonce is the hash of `label`.
    function _authorization(address from, address to, uint256 value, string memory label)
        private
        view
        returns (TokenSigUtils.Authorization memory)
    {
        return TokenSigUtils.Authorization({
            from: from,
            to: to,
            value: value,
            validAfter: block.timestamp - 1,
            validBefore: block.timestamp + VALIDITY,
            nonce: keccak256(bytes(label))
        });
    }

    function _signPermit(uint256 key, address owner, address spender, uint256 value, uint256 nonce, uint256 deadline)
        private
        view
        returns (Signature memory)
    {
        return
            _sign(
                key, TokenSigUtils.permitDigest(address(token), block.chainid, owner, spender, value, nonce, deadline)
            );
    }

    function _signTransfer(uint256 key, TokenSigUtils.Authorization memory auth)
        private
        view
        returns (Signature memory)
    {
        return _sign(key, TokenSigUtils.transferDigest(address(token), block.chainid, auth));
    }

    function _signReceive(uint256 key, TokenSigUtils.Authorization memory auth)
        private
        view
        returns (Signature memory)
    {
        return _sign(key, TokenSigUtils.receiveDigest(address(token), block.chainid, auth));
    }

    function _signCancel(uint256 key, address authorizer, bytes32 nonce) private view returns (Signature memory) {
        return _sign(key, TokenSigUtils.cancelDigest(address(token), block.chainid, authorizer, nonce));
    }

    function _sign(uint256 key, bytes32 digest) private pure returns (Signature memory sig) {
        (sig.v, sig.r, sig.s) = vm.sign(key, digest);
    }

    /// @dev Exactly one external call, so a preceding `vm.prank` or `vm.expectRevert` applies to the token call.
    function _submitTransfer(SigForm form, TokenSigUtils.Authorization memory auth, Signature memory sig) private {
        if (form == SigForm.Vrs) {
            token.transferWithAuthorization(
                auth.from, auth.to, auth.value, auth.validAfter, auth.validBefore, auth.nonce, sig.v, sig.r, sig.s
            );
        } else {
            token.transferWithAuthorization(
                auth.from, auth.to, auth.value, auth.validAfter, auth.validBefore, auth.nonce, _packed(sig)
            );
        }
    }

    /// @dev Exactly one external call; the caller pranks the payee (or someone else).
    function _submitReceive(SigForm form, TokenSigUtils.Authorization memory auth, Signature memory sig) private {
        if (form == SigForm.Vrs) {
            token.receiveWithAuthorization(
                auth.from, auth.to, auth.value, auth.validAfter, auth.validBefore, auth.nonce, sig.v, sig.r, sig.s
            );
        } else {
            token.receiveWithAuthorization(
                auth.from, auth.to, auth.value, auth.validAfter, auth.validBefore, auth.nonce, _packed(sig)
            );
        }
    }

    /// @dev Exactly one external call.
    function _submitCancel(SigForm form, address authorizer, bytes32 nonce, Signature memory sig) private {
        if (form == SigForm.Vrs) {
            token.cancelAuthorization(authorizer, nonce, sig.v, sig.r, sig.s);
        } else {
            token.cancelAuthorization(authorizer, nonce, _packed(sig));
        }
    }

    /// @dev Expects ERC3009InvalidSignature(auth.from) from a transfer, then checks that nothing changed.
    function _expectInvalidSignatureAndNoEffect(
        SigForm form,
        TokenSigUtils.Authorization memory auth,
        Signature memory sig
    ) private {
        uint256 fromBalance = token.balanceOf(auth.from);
        vm.expectRevert(abi.encodeWithSelector(IERC3009.ERC3009InvalidSignature.selector, auth.from));
        _submitTransfer(form, auth, sig);
        vm.assertFalse(token.authorizationState(auth.from, auth.nonce), "nonce unused");
        vm.assertEq(token.balanceOf(auth.from), fromBalance, "no funds moved");
    }

    /// @dev The 65-byte r ‖ s ‖ v layout that the (v, r, s) overloads build and that ECDSA.recover(bytes) expects.
    function _packed(Signature memory sig) private pure returns (bytes memory) {
        return abi.encodePacked(sig.r, sig.s, sig.v);
    }

    function _formName(SigForm form) private pure returns (string memory) {
        return form == SigForm.Vrs ? "vrs" : "bytes";
    }
}
