// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {OpenToken} from "../src/OpenToken.sol";
import {PaymentChannels} from "../src/PaymentChannels.sol";
import {IPaymentChannels} from "../src/interfaces/IPaymentChannels.sol";
import {ChannelERC1271Wallet} from "./mocks/ChannelERC1271Wallet.sol";
import {Test} from "./utils/Test.sol";

contract PaymentChannelsTest is Test {
    uint256 internal constant DELAY = 1 days;
    uint256 internal constant DEPOSIT = 100 ether;
    uint256 internal constant PAYER_FUNDS = 1_000_000 ether;
    bytes32 internal constant SALT = bytes32(uint256(42));
    /// @dev secp256k1 group order; `n - s` turns a low-s signature into its malleable high-s twin.
    uint256 internal constant SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;

    OpenToken internal token;
    PaymentChannels internal channels;

    address internal payer;
    uint256 internal payerKey;
    address internal receiver;
    uint256 internal receiverKey;
    address internal stranger;
    uint256 internal strangerKey;

    function setUp() public {
        (payer, payerKey) = makeAccount("payer");
        (receiver, receiverKey) = makeAccount("receiver");
        (stranger, strangerKey) = makeAccount("stranger");
        token = new OpenToken(address(this));
        channels = new PaymentChannels(IERC20(address(token)), DELAY);
        _fund(payer, PAYER_FUNDS);
        _fund(stranger, PAYER_FUNDS);
    }

    // ---------------------------------------------------------------- constructor and views

    function test_constructor_setsTokenAndDelay() public view {
        vm.assertEq(address(channels.token()), address(token), "token");
        vm.assertEq(channels.withdrawDelay(), DELAY, "delay");
        vm.assertEq(channels.MIN_WITHDRAW_DELAY(), 1 hours, "min");
        vm.assertEq(channels.MAX_WITHDRAW_DELAY(), 30 days, "max");
    }

    function test_constructor_acceptsBounds() public {
        vm.assertEq(new PaymentChannels(IERC20(address(token)), 1 hours).withdrawDelay(), 1 hours, "min delay");
        vm.assertEq(new PaymentChannels(IERC20(address(token)), 30 days).withdrawDelay(), 30 days, "max delay");
    }

    function test_constructor_whenDelayTooShort_reverts() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IPaymentChannels.PaymentChannelsInvalidWithdrawDelay.selector, 1 hours - 1, 1 hours, 30 days
            )
        );
        new PaymentChannels(IERC20(address(token)), 1 hours - 1);
    }

    function test_constructor_whenDelayTooLong_reverts() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IPaymentChannels.PaymentChannelsInvalidWithdrawDelay.selector, 30 days + 1, 1 hours, 30 days
            )
        );
        new PaymentChannels(IERC20(address(token)), 30 days + 1);
    }

    function testFuzz_constructor_enforcesDelayBounds(uint256 delay) public {
        if (delay < 1 hours || delay > 30 days) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    IPaymentChannels.PaymentChannelsInvalidWithdrawDelay.selector, delay, 1 hours, 30 days
                )
            );
            new PaymentChannels(IERC20(address(token)), delay);
        } else {
            vm.assertEq(new PaymentChannels(IERC20(address(token)), delay).withdrawDelay(), delay, "delay");
        }
    }

    function test_eip712Domain_isPaymentChannelsV1() public view {
        (, string memory name, string memory version, uint256 chainId, address verifyingContract,,) =
            channels.eip712Domain();
        vm.assertEq(name, "PaymentChannels");
        vm.assertEq(version, "1");
        vm.assertEq(chainId, block.chainid, "chain id");
        vm.assertEq(verifyingContract, address(channels), "verifying contract");
    }

    function test_voucherTypehash_matchesTypeString() public view {
        vm.assertEq(
            channels.VOUCHER_TYPEHASH(), keccak256("Voucher(bytes32 channelId,uint256 cumulativeAmount)"), "typehash"
        );
    }

    function test_voucherDigest_matchesEip712Encoding() public view {
        bytes32 channelId = keccak256("any channel");
        vm.assertEq(
            channels.voucherDigest(IPaymentChannels.Voucher(channelId, 7 ether)), _digest(channelId, 7 ether), "digest"
        );
    }

    /// @dev Known-answer vector signed off-chain with Python eth-account 0.14 (`encode_typed_data` +
    /// `Account.sign_message`, key keccak256("payer"), chain 31337, the contract at VECTOR_CONTRACT, salt 42,
    /// 1.5 OPEN). The contract's code is placed at that address so the domain and channel id match the vector.
    function test_claim_acceptsVoucherSignedByEthAccount() public {
        address vectorContract = 0x00000000000000000000000000000000c4A77E15;
        bytes32 vectorChannelId = 0xeb74e39be1c31611386a4b306a42ee5e64befbe521b604ba684e74d5a57f8c61;
        bytes32 vectorDigest = 0xfa6004d37a6ce0744affaad0c6b230bb8310e3e4ebb5dcd75008379d14085732;
        bytes memory vectorSignature =
            hex"e14bcd5f9a69459f53df81884a0c54d81ded9c75e7fc505cc86d6443af4b3c7d382562cf9962148aa92a99fb7e953c73d94a455f540db41b5c5ab7ec2ca2bf521c";
        vm.assertEq(payer, 0x01CA95Ba9a19e6F88A90082367c285D179275De4, "payer");
        vm.assertEq(receiver, 0xB6D4805bf6943c5875C0C7b67EDa24b2bDACBF6e, "receiver");
        vm.assertEq(block.chainid, 31_337, "chain id");

        vm.etch(vectorContract, address(channels).code);
        PaymentChannels atVector = PaymentChannels(vectorContract);
        vm.startPrank(payer);
        token.approve(vectorContract, DEPOSIT);
        bytes32 channelId = atVector.open(receiver, DEPOSIT, SALT);
        vm.stopPrank();
        vm.assertEq(channelId, vectorChannelId, "channel id");
        vm.assertEq(atVector.voucherDigest(IPaymentChannels.Voucher(channelId, 1.5 ether)), vectorDigest, "digest");

        vm.prank(receiver);
        uint256 paid = atVector.claim(_one(channelId, 1.5 ether), _oneSig(vectorSignature));
        vm.assertEq(paid, 1.5 ether, "paid");
    }

    function test_channelIdOf_hashesChainContractPartiesAndSalt() public view {
        vm.assertEq(
            channels.channelIdOf(payer, receiver, SALT),
            keccak256(abi.encode(block.chainid, address(channels), payer, receiver, SALT)),
            "formula"
        );
        vm.assertNotEq(channels.channelIdOf(payer, receiver, SALT), channels.channelIdOf(receiver, payer, SALT));
        vm.assertNotEq(channels.channelIdOf(payer, receiver, SALT), channels.channelIdOf(payer, stranger, SALT));
        vm.assertNotEq(
            channels.channelIdOf(payer, receiver, SALT), channels.channelIdOf(payer, receiver, bytes32(uint256(43)))
        );
    }

    function test_channelIdOf_dependsOnChain() public {
        bytes32 here = channels.channelIdOf(payer, receiver, SALT);
        vm.chainId(10);
        vm.assertNotEq(channels.channelIdOf(payer, receiver, SALT), here);
    }

    function test_channel_whenUnknown_isEmpty() public view {
        IPaymentChannels.Channel memory ch = channels.channel(keccak256("nothing"));
        vm.assertEq(uint8(ch.state), uint8(IPaymentChannels.ChannelState.None), "state");
        vm.assertEq(ch.payer, address(0), "payer");
        vm.assertEq(ch.deposit, 0, "deposit");
    }

    // ---------------------------------------------------------------- open

    function test_open_createsChannelAndPullsDeposit() public {
        bytes32 expectedId = channels.channelIdOf(payer, receiver, SALT);
        vm.expectEmit(address(channels));
        emit IPaymentChannels.ChannelOpened(expectedId, payer, receiver, SALT, DEPOSIT);

        vm.prank(payer);
        bytes32 channelId = channels.open(receiver, DEPOSIT, SALT);
        vm.snapshotGasLastCall("open");

        vm.assertEq(channelId, expectedId, "id");
        IPaymentChannels.Channel memory ch = channels.channel(channelId);
        vm.assertEq(ch.payer, payer, "payer");
        vm.assertEq(ch.receiver, receiver, "receiver");
        vm.assertEq(uint8(ch.state), uint8(IPaymentChannels.ChannelState.Open), "state");
        vm.assertEq(ch.deposit, DEPOSIT, "deposit");
        vm.assertEq(ch.claimed, 0, "claimed");
        vm.assertEq(ch.withdrawableAt, 0, "withdrawableAt");
        vm.assertEq(token.balanceOf(address(channels)), DEPOSIT, "contract balance");
        vm.assertEq(token.balanceOf(payer), PAYER_FUNDS - DEPOSIT, "payer balance");
    }

    function test_open_sameSaltToOtherReceiver_opensSecondChannel() public {
        bytes32 first = _open(payer, receiver, DEPOSIT, SALT);
        bytes32 second = _open(payer, stranger, DEPOSIT, SALT);
        vm.assertNotEq(first, second);
        vm.assertEq(token.balanceOf(address(channels)), 2 * DEPOSIT, "contract balance");
    }

    function test_open_whenReceiverZero_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(IPaymentChannels.PaymentChannelsInvalidReceiver.selector, address(0)));
        vm.prank(payer);
        channels.open(address(0), DEPOSIT, SALT);
    }

    function test_open_whenReceiverIsCaller_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(IPaymentChannels.PaymentChannelsInvalidReceiver.selector, payer));
        vm.prank(payer);
        channels.open(payer, DEPOSIT, SALT);
    }

    function test_open_whenAmountZero_reverts() public {
        vm.expectRevert(IPaymentChannels.PaymentChannelsZeroAmount.selector);
        vm.prank(payer);
        channels.open(receiver, 0, SALT);
    }

    function test_open_whenChannelExists_reverts() public {
        bytes32 channelId = _open(payer, receiver, DEPOSIT, SALT);
        vm.expectRevert(abi.encodeWithSelector(IPaymentChannels.PaymentChannelsChannelExists.selector, channelId));
        vm.prank(payer);
        channels.open(receiver, DEPOSIT, SALT);
    }

    function test_open_whenChannelClosed_revertsSoIdsAreNeverReused() public {
        bytes32 channelId = _open(payer, receiver, DEPOSIT, SALT);
        _close(channelId);
        vm.expectRevert(abi.encodeWithSelector(IPaymentChannels.PaymentChannelsChannelExists.selector, channelId));
        vm.prank(payer);
        channels.open(receiver, DEPOSIT, SALT);
    }

    function test_open_whenAmountExceedsUint128_reverts() public {
        uint256 amount = uint256(type(uint128).max) + 1;
        vm.expectRevert(abi.encodeWithSelector(SafeCast.SafeCastOverflowedUintDowncast.selector, 128, amount));
        vm.prank(payer);
        channels.open(receiver, amount, SALT);
    }

    function test_open_withoutAllowance_reverts() public {
        (address poorPayer,) = makeAccount("no allowance");
        _fundWithoutApproval(poorPayer, DEPOSIT);
        vm.expectRevert(
            abi.encodeWithSelector(
                IERC20Errors.ERC20InsufficientAllowance.selector, address(channels), uint256(0), DEPOSIT
            )
        );
        vm.prank(poorPayer);
        channels.open(receiver, DEPOSIT, SALT);
    }

    // ---------------------------------------------------------------- topUp

    function test_topUp_addsToDeposit() public {
        bytes32 channelId = _open(payer, receiver, DEPOSIT, SALT);
        vm.expectEmit(address(channels));
        emit IPaymentChannels.ChannelToppedUp(channelId, 5 ether, DEPOSIT + 5 ether);

        vm.prank(payer);
        channels.topUp(channelId, 5 ether);
        vm.snapshotGasLastCall("topUp");

        vm.assertEq(channels.channel(channelId).deposit, DEPOSIT + 5 ether, "deposit");
        vm.assertEq(token.balanceOf(address(channels)), DEPOSIT + 5 ether, "contract balance");
        vm.assertEq(token.balanceOf(payer), PAYER_FUNDS - DEPOSIT - 5 ether, "payer balance");
    }

    function test_topUp_whenAmountZero_reverts() public {
        bytes32 channelId = _open(payer, receiver, DEPOSIT, SALT);
        vm.expectRevert(IPaymentChannels.PaymentChannelsZeroAmount.selector);
        vm.prank(payer);
        channels.topUp(channelId, 0);
    }

    function test_topUp_whenNotPayer_reverts() public {
        bytes32 channelId = _open(payer, receiver, DEPOSIT, SALT);
        vm.expectRevert(
            abi.encodeWithSelector(IPaymentChannels.PaymentChannelsNotPayer.selector, channelId, stranger, payer)
        );
        vm.prank(stranger);
        channels.topUp(channelId, 1 ether);
    }

    function test_topUp_whenUnknown_reverts() public {
        bytes32 channelId = keccak256("nothing");
        _expectUnexpectedState(
            channelId, IPaymentChannels.ChannelState.None, _bitmap(IPaymentChannels.ChannelState.Open)
        );
        vm.prank(payer);
        channels.topUp(channelId, 1 ether);
    }

    function test_topUp_whenClosing_reverts() public {
        bytes32 channelId = _open(payer, receiver, DEPOSIT, SALT);
        vm.prank(payer);
        channels.initiateWithdraw(channelId);
        _expectUnexpectedState(
            channelId, IPaymentChannels.ChannelState.Closing, _bitmap(IPaymentChannels.ChannelState.Open)
        );
        vm.prank(payer);
        channels.topUp(channelId, 1 ether);
    }

    function test_topUp_whenClosed_reverts() public {
        bytes32 channelId = _open(payer, receiver, DEPOSIT, SALT);
        _close(channelId);
        _expectUnexpectedState(
            channelId, IPaymentChannels.ChannelState.Closed, _bitmap(IPaymentChannels.ChannelState.Open)
        );
        vm.prank(payer);
        channels.topUp(channelId, 1 ether);
    }

    function test_topUp_whenDepositExceedsUint128_reverts() public {
        bytes32 channelId = _open(payer, receiver, DEPOSIT, SALT);
        uint256 amount = uint256(type(uint128).max);
        vm.expectRevert(abi.encodeWithSelector(SafeCast.SafeCastOverflowedUintDowncast.selector, 128, DEPOSIT + amount));
        vm.prank(payer);
        channels.topUp(channelId, amount);
    }

    // ---------------------------------------------------------------- claim

    function test_claim_paysReceiverAndBooksVoucher() public {
        bytes32 channelId = _open(payer, receiver, DEPOSIT, SALT);
        bytes memory signature = _sign(payerKey, channelId, 3 ether);
        vm.expectEmit(address(channels));
        emit IPaymentChannels.VoucherClaimed(channelId, receiver, 3 ether, 3 ether);

        vm.prank(receiver);
        uint256 paid = channels.claim(_one(channelId, 3 ether), _oneSig(signature));
        vm.snapshotGasLastCall("claim_1_voucher");

        vm.assertEq(paid, 3 ether, "paid");
        vm.assertEq(channels.channel(channelId).claimed, 3 ether, "claimed");
        vm.assertEq(token.balanceOf(receiver), 3 ether, "receiver balance");
        vm.assertEq(token.balanceOf(address(channels)), DEPOSIT - 3 ether, "contract balance");
    }

    function test_claim_laterVoucher_paysOnlyTheDifference() public {
        bytes32 channelId = _open(payer, receiver, DEPOSIT, SALT);
        _claim(receiver, channelId, 3 ether, _sign(payerKey, channelId, 3 ether));
        vm.expectEmit(address(channels));
        emit IPaymentChannels.VoucherClaimed(channelId, receiver, 10 ether, 7 ether);

        uint256 paid = _claim(receiver, channelId, 10 ether, _sign(payerKey, channelId, 10 ether));

        vm.assertEq(paid, 7 ether, "paid");
        vm.assertEq(token.balanceOf(receiver), 10 ether, "receiver balance");
    }

    function test_claim_wholeDeposit_pays() public {
        bytes32 channelId = _open(payer, receiver, DEPOSIT, SALT);
        vm.assertEq(_claim(receiver, channelId, DEPOSIT, _sign(payerKey, channelId, DEPOSIT)), DEPOSIT, "paid");
        vm.assertEq(token.balanceOf(address(channels)), 0, "contract balance");
    }

    function test_claim_sameChannelTwiceInBatch_paysHighest() public {
        bytes32 channelId = _open(payer, receiver, DEPOSIT, SALT);
        IPaymentChannels.Voucher[] memory vouchers = new IPaymentChannels.Voucher[](2);
        bytes[] memory signatures = new bytes[](2);
        vouchers[0] = IPaymentChannels.Voucher(channelId, 2 ether);
        vouchers[1] = IPaymentChannels.Voucher(channelId, 5 ether);
        signatures[0] = _sign(payerKey, channelId, 2 ether);
        signatures[1] = _sign(payerKey, channelId, 5 ether);
        vm.expectEmit(address(channels));
        emit IPaymentChannels.VoucherClaimed(channelId, receiver, 2 ether, 2 ether);
        vm.expectEmit(address(channels));
        emit IPaymentChannels.VoucherClaimed(channelId, receiver, 5 ether, 3 ether);

        vm.prank(receiver);
        uint256 paid = channels.claim(vouchers, signatures);

        vm.assertEq(paid, 5 ether, "paid");
        vm.assertEq(channels.channel(channelId).claimed, 5 ether, "claimed");
        vm.assertEq(token.balanceOf(receiver), 5 ether, "receiver balance");
    }

    function test_claim_sameChannelTwiceInBatch_whenSecondLower_reverts() public {
        bytes32 channelId = _open(payer, receiver, DEPOSIT, SALT);
        IPaymentChannels.Voucher[] memory vouchers = new IPaymentChannels.Voucher[](2);
        bytes[] memory signatures = new bytes[](2);
        vouchers[0] = IPaymentChannels.Voucher(channelId, 5 ether);
        vouchers[1] = IPaymentChannels.Voucher(channelId, 2 ether);
        signatures[0] = _sign(payerKey, channelId, 5 ether);
        signatures[1] = _sign(payerKey, channelId, 2 ether);
        vm.expectRevert(
            abi.encodeWithSelector(IPaymentChannels.PaymentChannelsStaleVoucher.selector, channelId, 2 ether, 5 ether)
        );
        vm.prank(receiver);
        channels.claim(vouchers, signatures);
    }

    function test_claim_hundredChannels_makesOneTransfer() public {
        uint256 count = 100;
        IPaymentChannels.Voucher[] memory vouchers = new IPaymentChannels.Voucher[](count);
        bytes[] memory signatures = new bytes[](count);
        uint256 total;
        for (uint256 i = 0; i < count; ++i) {
            uint256 key = uint256(keccak256(abi.encode("batch payer", i)));
            address batchPayer = vm.addr(key);
            _fund(batchPayer, DEPOSIT);
            bytes32 channelId = _open(batchPayer, receiver, DEPOSIT, SALT);
            uint256 amount = (i + 1) * 0.1 ether;
            vouchers[i] = IPaymentChannels.Voucher(channelId, amount);
            signatures[i] = _sign(key, channelId, amount);
            total += amount;
        }
        vm.expectCall(address(token), abi.encodeCall(IERC20.transfer, (receiver, total)), 1);
        vm.expectCall(address(token), abi.encodeWithSelector(IERC20.transfer.selector), 1);

        vm.prank(receiver);
        uint256 paid = channels.claim(vouchers, signatures);
        vm.snapshotGasLastCall("claim_100_vouchers");

        vm.assertEq(paid, total, "paid");
        vm.assertEq(token.balanceOf(receiver), total, "receiver balance");
        vm.assertEq(token.balanceOf(address(channels)), count * DEPOSIT - total, "contract balance");
        vm.assertEq(channels.channel(vouchers[99].channelId).claimed, 10 ether, "last channel claimed");
    }

    function test_claim_emptyBatch_paysNothing() public {
        vm.expectCall(address(token), abi.encodeWithSelector(IERC20.transfer.selector), 0);
        vm.prank(receiver);
        uint256 paid = channels.claim(new IPaymentChannels.Voucher[](0), new bytes[](0));
        vm.assertEq(paid, 0, "paid");
    }

    function test_claim_whenLengthsDiffer_reverts() public {
        bytes32 channelId = _open(payer, receiver, DEPOSIT, SALT);
        vm.expectRevert(abi.encodeWithSelector(IPaymentChannels.PaymentChannelsLengthMismatch.selector, 1, 2));
        vm.prank(receiver);
        channels.claim(_one(channelId, 1 ether), new bytes[](2));
    }

    function test_claim_whenUnknownChannel_reverts() public {
        bytes32 channelId = keccak256("nothing");
        _expectUnexpectedState(channelId, IPaymentChannels.ChannelState.None, _claimableBitmap());
        vm.prank(receiver);
        channels.claim(_one(channelId, 1 ether), _oneSig(_sign(payerKey, channelId, 1 ether)));
    }

    function test_claim_whenClosing_pays() public {
        bytes32 channelId = _open(payer, receiver, DEPOSIT, SALT);
        vm.prank(payer);
        channels.initiateWithdraw(channelId);
        vm.warp(block.timestamp + DELAY - 1);

        uint256 paid = _claim(receiver, channelId, 4 ether, _sign(payerKey, channelId, 4 ether));

        vm.assertEq(paid, 4 ether, "paid");
        vm.assertEq(uint8(channels.channel(channelId).state), uint8(IPaymentChannels.ChannelState.Closing), "state");
    }

    function test_claim_afterClose_reverts() public {
        bytes32 channelId = _open(payer, receiver, DEPOSIT, SALT);
        bytes memory signature = _sign(payerKey, channelId, 4 ether);
        _close(channelId);
        _expectUnexpectedState(channelId, IPaymentChannels.ChannelState.Closed, _claimableBitmap());
        vm.prank(receiver);
        channels.claim(_one(channelId, 4 ether), _oneSig(signature));
    }

    function test_claim_whenCallerNotReceiver_reverts() public {
        bytes32 channelId = _open(payer, receiver, DEPOSIT, SALT);
        bytes memory signature = _sign(payerKey, channelId, 4 ether);
        vm.expectRevert(
            abi.encodeWithSelector(IPaymentChannels.PaymentChannelsNotReceiver.selector, channelId, stranger, receiver)
        );
        vm.prank(stranger);
        channels.claim(_one(channelId, 4 ether), _oneSig(signature));
    }

    function test_claim_whenPayerClaimsOwnChannel_reverts() public {
        bytes32 channelId = _open(payer, receiver, DEPOSIT, SALT);
        bytes memory signature = _sign(payerKey, channelId, DEPOSIT);
        vm.expectRevert(
            abi.encodeWithSelector(IPaymentChannels.PaymentChannelsNotReceiver.selector, channelId, payer, receiver)
        );
        vm.prank(payer);
        channels.claim(_one(channelId, DEPOSIT), _oneSig(signature));
    }

    function test_claim_whenVoucherAlreadyClaimed_reverts() public {
        bytes32 channelId = _open(payer, receiver, DEPOSIT, SALT);
        bytes memory signature = _sign(payerKey, channelId, 4 ether);
        _claim(receiver, channelId, 4 ether, signature);

        vm.expectRevert(
            abi.encodeWithSelector(IPaymentChannels.PaymentChannelsStaleVoucher.selector, channelId, 4 ether, 4 ether)
        );
        vm.prank(receiver);
        channels.claim(_one(channelId, 4 ether), _oneSig(signature));
    }

    function test_claim_whenVoucherBelowClaimed_reverts() public {
        bytes32 channelId = _open(payer, receiver, DEPOSIT, SALT);
        bytes memory older = _sign(payerKey, channelId, 2 ether);
        _claim(receiver, channelId, 4 ether, _sign(payerKey, channelId, 4 ether));

        vm.expectRevert(
            abi.encodeWithSelector(IPaymentChannels.PaymentChannelsStaleVoucher.selector, channelId, 2 ether, 4 ether)
        );
        vm.prank(receiver);
        channels.claim(_one(channelId, 2 ether), _oneSig(older));
    }

    function test_claim_whenVoucherZero_reverts() public {
        bytes32 channelId = _open(payer, receiver, DEPOSIT, SALT);
        vm.expectRevert(abi.encodeWithSelector(IPaymentChannels.PaymentChannelsStaleVoucher.selector, channelId, 0, 0));
        vm.prank(receiver);
        channels.claim(_one(channelId, 0), _oneSig(_sign(payerKey, channelId, 0)));
    }

    function test_claim_whenVoucherExceedsDeposit_reverts() public {
        bytes32 channelId = _open(payer, receiver, DEPOSIT, SALT);
        vm.expectRevert(
            abi.encodeWithSelector(
                IPaymentChannels.PaymentChannelsVoucherExceedsDeposit.selector, channelId, DEPOSIT + 1, DEPOSIT
            )
        );
        vm.prank(receiver);
        channels.claim(_one(channelId, DEPOSIT + 1), _oneSig(_sign(payerKey, channelId, DEPOSIT + 1)));
    }

    function test_claim_afterTopUp_paysUpToNewDeposit() public {
        bytes32 channelId = _open(payer, receiver, DEPOSIT, SALT);
        bytes memory signature = _sign(payerKey, channelId, DEPOSIT + 1 ether);
        vm.prank(payer);
        channels.topUp(channelId, 1 ether);
        vm.assertEq(_claim(receiver, channelId, DEPOSIT + 1 ether, signature), DEPOSIT + 1 ether, "paid");
    }

    function test_claim_whenSignedByOther_reverts() public {
        bytes32 channelId = _open(payer, receiver, DEPOSIT, SALT);
        _expectInvalidSignature(channelId, payer);
        vm.prank(receiver);
        channels.claim(_one(channelId, 4 ether), _oneSig(_sign(strangerKey, channelId, 4 ether)));
    }

    function test_claim_whenSignedByReceiver_reverts() public {
        bytes32 channelId = _open(payer, receiver, DEPOSIT, SALT);
        _expectInvalidSignature(channelId, payer);
        vm.prank(receiver);
        channels.claim(_one(channelId, DEPOSIT), _oneSig(_sign(receiverKey, channelId, DEPOSIT)));
    }

    function test_claim_whenAmountAltered_reverts() public {
        bytes32 channelId = _open(payer, receiver, DEPOSIT, SALT);
        _expectInvalidSignature(channelId, payer);
        vm.prank(receiver);
        channels.claim(_one(channelId, 5 ether), _oneSig(_sign(payerKey, channelId, 4 ether)));
    }

    function test_claim_whenSignatureMalformed_reverts() public {
        bytes32 channelId = _open(payer, receiver, DEPOSIT, SALT);
        bytes memory signature = _sign(payerKey, channelId, 4 ether);
        bytes memory truncated = new bytes(64);
        for (uint256 i = 0; i < 64; ++i) {
            truncated[i] = signature[i];
        }
        _expectInvalidSignature(channelId, payer);
        vm.prank(receiver);
        channels.claim(_one(channelId, 4 ether), _oneSig(truncated));
    }

    /// @dev Attack: a voucher the payer signed for channel A is presented for its channel B to the same receiver.
    function test_claim_voucherOfOtherChannel_reverts() public {
        bytes32 channelA = _open(payer, receiver, DEPOSIT, SALT);
        bytes32 channelB = _open(payer, receiver, DEPOSIT, bytes32(uint256(43)));
        bytes memory signatureForA = _sign(payerKey, channelA, 4 ether);
        _claim(receiver, channelA, 4 ether, signatureForA);

        _expectInvalidSignature(channelB, payer);
        vm.prank(receiver);
        channels.claim(_one(channelB, 4 ether), _oneSig(signatureForA));
    }

    /// @dev Attack: a voucher signed on this chain is replayed after a fork to another chain id.
    function test_claim_voucherOfOtherChain_reverts() public {
        bytes32 channelId = _open(payer, receiver, DEPOSIT, SALT);
        bytes memory signature = _sign(payerKey, channelId, 4 ether);
        bytes32 digestHere = channels.voucherDigest(IPaymentChannels.Voucher(channelId, 4 ether));

        vm.chainId(10);
        vm.assertNotEq(channels.voucherDigest(IPaymentChannels.Voucher(channelId, 4 ether)), digestHere);
        _expectInvalidSignature(channelId, payer);
        vm.prank(receiver);
        channels.claim(_one(channelId, 4 ether), _oneSig(signature));
    }

    /// @dev Attack: a voucher signed for another deployment's domain is presented here for a channel of this one.
    function test_claim_voucherOfOtherDeployment_reverts() public {
        bytes32 channelId = _open(payer, receiver, DEPOSIT, SALT);
        PaymentChannels other = new PaymentChannels(IERC20(address(token)), DELAY);
        (uint8 v, bytes32 r, bytes32 s) =
            vm.sign(payerKey, other.voucherDigest(IPaymentChannels.Voucher(channelId, 4 ether)));

        _expectInvalidSignature(channelId, payer);
        vm.prank(receiver);
        channels.claim(_one(channelId, 4 ether), _oneSig(abi.encodePacked(r, s, v)));
    }

    /// @dev Attack: the high-s twin (r, n - s, v ^ 1) of a valid signature recovers the payer through the raw
    /// precompile, yet must be refused so that signatures are not malleable.
    function test_claim_highSTwinOfValidSignature_reverts() public {
        bytes32 channelId = _open(payer, receiver, DEPOSIT, SALT);
        bytes32 digest = channels.voucherDigest(IPaymentChannels.Voucher(channelId, 4 ether));
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(payerKey, digest);
        bytes32 twinS = bytes32(SECP256K1_N - uint256(s));
        uint8 twinV = v == 27 ? 28 : 27;
        vm.assertEq(ecrecover(digest, twinV, r, twinS), payer, "the twin recovers the payer");

        _expectInvalidSignature(channelId, payer);
        vm.prank(receiver);
        channels.claim(_one(channelId, 4 ether), _oneSig(abi.encodePacked(r, twinS, twinV)));

        // The canonical low-s signature still works.
        vm.assertEq(_claim(receiver, channelId, 4 ether, abi.encodePacked(r, s, v)), 4 ether, "paid");
    }

    function test_claim_oneBadVoucher_revertsWholeBatch() public {
        bytes32 channelA = _open(payer, receiver, DEPOSIT, SALT);
        bytes32 channelB = _open(payer, receiver, DEPOSIT, bytes32(uint256(43)));
        IPaymentChannels.Voucher[] memory vouchers = new IPaymentChannels.Voucher[](2);
        bytes[] memory signatures = new bytes[](2);
        vouchers[0] = IPaymentChannels.Voucher(channelA, 1 ether);
        vouchers[1] = IPaymentChannels.Voucher(channelB, 1 ether);
        signatures[0] = _sign(payerKey, channelA, 1 ether);
        signatures[1] = _sign(strangerKey, channelB, 1 ether);

        _expectInvalidSignature(channelB, payer);
        vm.prank(receiver);
        channels.claim(vouchers, signatures);
        vm.assertEq(channels.channel(channelA).claimed, 0, "nothing booked");
    }

    function test_claim_whenPayerIsErc1271Wallet_accepts() public {
        (address owner, uint256 ownerKey) = makeAccount("wallet owner");
        ChannelERC1271Wallet wallet = new ChannelERC1271Wallet(owner);
        _fundWithoutApproval(address(wallet), DEPOSIT);
        vm.prank(owner);
        bytes32 channelId = wallet.openChannel(channels, receiver, DEPOSIT, SALT);
        vm.assertEq(channels.channel(channelId).payer, address(wallet), "payer");

        uint256 paid = _claim(receiver, channelId, 6 ether, _sign(ownerKey, channelId, 6 ether));

        vm.assertEq(paid, 6 ether, "paid");
        vm.assertEq(token.balanceOf(receiver), 6 ether, "receiver balance");
    }

    function test_claim_whenErc1271WalletRefuses_reverts() public {
        (address owner, uint256 ownerKey) = makeAccount("wallet owner");
        ChannelERC1271Wallet wallet = new ChannelERC1271Wallet(owner);
        _fundWithoutApproval(address(wallet), DEPOSIT);
        vm.startPrank(owner);
        bytes32 channelId = wallet.openChannel(channels, receiver, DEPOSIT, SALT);
        wallet.setAccepting(false);
        vm.stopPrank();

        _expectInvalidSignature(channelId, address(wallet));
        vm.prank(receiver);
        channels.claim(_one(channelId, 6 ether), _oneSig(_sign(ownerKey, channelId, 6 ether)));
    }

    function test_claim_whenErc1271WalletSignedByOther_reverts() public {
        (address owner,) = makeAccount("wallet owner");
        ChannelERC1271Wallet wallet = new ChannelERC1271Wallet(owner);
        _fundWithoutApproval(address(wallet), DEPOSIT);
        vm.prank(owner);
        bytes32 channelId = wallet.openChannel(channels, receiver, DEPOSIT, SALT);

        _expectInvalidSignature(channelId, address(wallet));
        vm.prank(receiver);
        channels.claim(_one(channelId, 6 ether), _oneSig(_sign(strangerKey, channelId, 6 ether)));
    }

    function testFuzz_claim_paysEachIncrementOnce(uint256 deposit, uint256 first, uint256 second) public {
        deposit = bound(deposit, 1, PAYER_FUNDS);
        first = bound(first, 1, deposit);
        second = bound(second, 1, deposit);
        bytes32 channelId = _open(payer, receiver, deposit, SALT);

        vm.assertEq(_claim(receiver, channelId, first, _sign(payerKey, channelId, first)), first, "first");
        if (second <= first) {
            vm.expectRevert(
                abi.encodeWithSelector(IPaymentChannels.PaymentChannelsStaleVoucher.selector, channelId, second, first)
            );
            vm.prank(receiver);
            channels.claim(_one(channelId, second), _oneSig(_sign(payerKey, channelId, second)));
        } else {
            vm.assertEq(
                _claim(receiver, channelId, second, _sign(payerKey, channelId, second)), second - first, "second"
            );
        }
        uint256 claimed = channels.channel(channelId).claimed;
        vm.assertEq(claimed, first > second ? first : second, "claimed is the highest voucher");
        vm.assertEq(token.balanceOf(receiver), claimed, "receiver got exactly the claim");
        vm.assertEq(token.balanceOf(address(channels)), deposit - claimed, "rest stays locked");
    }

    function testFuzz_claim_whenAboveDeposit_reverts(uint256 deposit, uint256 cumulativeAmount) public {
        deposit = bound(deposit, 1, PAYER_FUNDS);
        cumulativeAmount = bound(cumulativeAmount, deposit + 1, type(uint256).max);
        bytes32 channelId = _open(payer, receiver, deposit, SALT);
        vm.expectRevert(
            abi.encodeWithSelector(
                IPaymentChannels.PaymentChannelsVoucherExceedsDeposit.selector, channelId, cumulativeAmount, deposit
            )
        );
        vm.prank(receiver);
        channels.claim(_one(channelId, cumulativeAmount), _oneSig(_sign(payerKey, channelId, cumulativeAmount)));
    }

    function testFuzz_claim_whenSignerNotPayer_reverts(uint256 signerKey, uint256 cumulativeAmount) public {
        signerKey = bound(signerKey, 1, SECP256K1_N - 1);
        vm.assume(signerKey != payerKey);
        cumulativeAmount = bound(cumulativeAmount, 1, DEPOSIT);
        bytes32 channelId = _open(payer, receiver, DEPOSIT, SALT);
        _expectInvalidSignature(channelId, payer);
        vm.prank(receiver);
        channels.claim(_one(channelId, cumulativeAmount), _oneSig(_sign(signerKey, channelId, cumulativeAmount)));
    }

    // ---------------------------------------------------------------- initiateWithdraw

    function test_initiateWithdraw_startsDelay() public {
        bytes32 channelId = _open(payer, receiver, DEPOSIT, SALT);
        uint256 expectedAt = block.timestamp + DELAY;
        vm.expectEmit(address(channels));
        emit IPaymentChannels.WithdrawalInitiated(channelId, expectedAt);

        vm.prank(payer);
        channels.initiateWithdraw(channelId);
        vm.snapshotGasLastCall("initiateWithdraw");

        IPaymentChannels.Channel memory ch = channels.channel(channelId);
        vm.assertEq(uint8(ch.state), uint8(IPaymentChannels.ChannelState.Closing), "state");
        vm.assertEq(ch.withdrawableAt, expectedAt, "withdrawableAt");
        vm.assertEq(token.balanceOf(address(channels)), DEPOSIT, "nothing moves yet");
    }

    function test_initiateWithdraw_whenNotPayer_reverts() public {
        bytes32 channelId = _open(payer, receiver, DEPOSIT, SALT);
        vm.expectRevert(
            abi.encodeWithSelector(IPaymentChannels.PaymentChannelsNotPayer.selector, channelId, receiver, payer)
        );
        vm.prank(receiver);
        channels.initiateWithdraw(channelId);
    }

    function test_initiateWithdraw_whenUnknown_reverts() public {
        bytes32 channelId = keccak256("nothing");
        _expectUnexpectedState(
            channelId, IPaymentChannels.ChannelState.None, _bitmap(IPaymentChannels.ChannelState.Open)
        );
        vm.prank(payer);
        channels.initiateWithdraw(channelId);
    }

    function test_initiateWithdraw_whenClosing_reverts() public {
        bytes32 channelId = _open(payer, receiver, DEPOSIT, SALT);
        vm.prank(payer);
        channels.initiateWithdraw(channelId);
        _expectUnexpectedState(
            channelId, IPaymentChannels.ChannelState.Closing, _bitmap(IPaymentChannels.ChannelState.Open)
        );
        vm.prank(payer);
        channels.initiateWithdraw(channelId);
    }

    function test_initiateWithdraw_whenClosed_reverts() public {
        bytes32 channelId = _open(payer, receiver, DEPOSIT, SALT);
        _close(channelId);
        _expectUnexpectedState(
            channelId, IPaymentChannels.ChannelState.Closed, _bitmap(IPaymentChannels.ChannelState.Open)
        );
        vm.prank(payer);
        channels.initiateWithdraw(channelId);
    }

    // ---------------------------------------------------------------- withdraw

    function test_withdraw_afterDelay_refundsRemainderAndCloses() public {
        bytes32 channelId = _open(payer, receiver, DEPOSIT, SALT);
        _claim(receiver, channelId, 30 ether, _sign(payerKey, channelId, 30 ether));
        vm.prank(payer);
        channels.initiateWithdraw(channelId);
        vm.warp(block.timestamp + DELAY);
        vm.expectEmit(address(channels));
        emit IPaymentChannels.ChannelClosed(channelId, DEPOSIT - 30 ether);

        vm.prank(payer);
        uint256 refund = channels.withdraw(channelId);
        vm.snapshotGasLastCall("withdraw");

        vm.assertEq(refund, DEPOSIT - 30 ether, "refund");
        vm.assertEq(token.balanceOf(payer), PAYER_FUNDS - 30 ether, "payer balance");
        vm.assertEq(token.balanceOf(address(channels)), 0, "contract balance");
        IPaymentChannels.Channel memory ch = channels.channel(channelId);
        vm.assertEq(uint8(ch.state), uint8(IPaymentChannels.ChannelState.Closed), "state");
        vm.assertEq(ch.payer, payer, "record kept: payer");
        vm.assertEq(ch.receiver, receiver, "record kept: receiver");
        vm.assertEq(ch.deposit, DEPOSIT, "record kept: deposit");
        vm.assertEq(ch.claimed, 30 ether, "record kept: claimed");
        vm.assertEq(ch.withdrawableAt, 0, "withdrawableAt cleared");
    }

    function test_withdraw_whenFullyClaimed_closesWithoutTransfer() public {
        bytes32 channelId = _open(payer, receiver, DEPOSIT, SALT);
        _claim(receiver, channelId, DEPOSIT, _sign(payerKey, channelId, DEPOSIT));
        vm.prank(payer);
        channels.initiateWithdraw(channelId);
        vm.warp(block.timestamp + DELAY);
        vm.expectCall(address(token), abi.encodeWithSelector(IERC20.transfer.selector), 0);

        vm.prank(payer);
        vm.assertEq(channels.withdraw(channelId), 0, "refund");
        vm.assertEq(uint8(channels.channel(channelId).state), uint8(IPaymentChannels.ChannelState.Closed), "state");
    }

    function test_withdraw_beforeDelay_reverts() public {
        bytes32 channelId = _open(payer, receiver, DEPOSIT, SALT);
        vm.prank(payer);
        channels.initiateWithdraw(channelId);
        uint256 withdrawableAt = block.timestamp + DELAY;
        vm.warp(withdrawableAt - 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                IPaymentChannels.PaymentChannelsWithdrawalLocked.selector, channelId, withdrawableAt, withdrawableAt - 1
            )
        );
        vm.prank(payer);
        channels.withdraw(channelId);
    }

    function test_withdraw_whenNotPayer_reverts() public {
        bytes32 channelId = _open(payer, receiver, DEPOSIT, SALT);
        vm.prank(payer);
        channels.initiateWithdraw(channelId);
        vm.warp(block.timestamp + DELAY);
        vm.expectRevert(
            abi.encodeWithSelector(IPaymentChannels.PaymentChannelsNotPayer.selector, channelId, receiver, payer)
        );
        vm.prank(receiver);
        channels.withdraw(channelId);
    }

    function test_withdraw_whenOpen_reverts() public {
        bytes32 channelId = _open(payer, receiver, DEPOSIT, SALT);
        _expectUnexpectedState(
            channelId, IPaymentChannels.ChannelState.Open, _bitmap(IPaymentChannels.ChannelState.Closing)
        );
        vm.prank(payer);
        channels.withdraw(channelId);
    }

    function test_withdraw_whenUnknown_reverts() public {
        bytes32 channelId = keccak256("nothing");
        _expectUnexpectedState(
            channelId, IPaymentChannels.ChannelState.None, _bitmap(IPaymentChannels.ChannelState.Closing)
        );
        vm.prank(payer);
        channels.withdraw(channelId);
    }

    function test_withdraw_whenClosed_reverts() public {
        bytes32 channelId = _open(payer, receiver, DEPOSIT, SALT);
        _close(channelId);
        _expectUnexpectedState(
            channelId, IPaymentChannels.ChannelState.Closed, _bitmap(IPaymentChannels.ChannelState.Closing)
        );
        vm.prank(payer);
        channels.withdraw(channelId);
    }

    function testFuzz_withdraw_refundsExactlyWhatWasNotClaimed(
        uint256 deposit,
        uint256 topUpAmount,
        uint256 cumulativeAmount,
        uint256 wait
    ) public {
        deposit = bound(deposit, 1, PAYER_FUNDS / 2);
        topUpAmount = bound(topUpAmount, 1, PAYER_FUNDS / 2);
        cumulativeAmount = bound(cumulativeAmount, 1, deposit + topUpAmount);
        wait = bound(wait, DELAY, 10 * 365 days);
        bytes32 channelId = _open(payer, receiver, deposit, SALT);
        vm.prank(payer);
        channels.topUp(channelId, topUpAmount);
        _claim(receiver, channelId, cumulativeAmount, _sign(payerKey, channelId, cumulativeAmount));
        vm.prank(payer);
        channels.initiateWithdraw(channelId);
        vm.warp(block.timestamp + wait);

        vm.prank(payer);
        uint256 refund = channels.withdraw(channelId);

        vm.assertEq(refund, deposit + topUpAmount - cumulativeAmount, "refund");
        vm.assertEq(token.balanceOf(payer), PAYER_FUNDS - cumulativeAmount, "payer paid exactly the claim");
        vm.assertEq(token.balanceOf(receiver), cumulativeAmount, "receiver got exactly the claim");
        vm.assertEq(token.balanceOf(address(channels)), 0, "nothing left behind");
    }

    function testFuzz_withdraw_beforeUnlock_reverts(uint256 elapsed) public {
        elapsed = bound(elapsed, 0, DELAY - 1);
        bytes32 channelId = _open(payer, receiver, DEPOSIT, SALT);
        vm.prank(payer);
        channels.initiateWithdraw(channelId);
        uint256 withdrawableAt = block.timestamp + DELAY;
        vm.warp(block.timestamp + elapsed);
        vm.expectRevert(
            abi.encodeWithSelector(
                IPaymentChannels.PaymentChannelsWithdrawalLocked.selector, channelId, withdrawableAt, block.timestamp
            )
        );
        vm.prank(payer);
        channels.withdraw(channelId);
    }

    // ---------------------------------------------------------------- lifecycle

    function test_lifecycle_openClaimInitiateWarpWithdraw() public {
        bytes32 channelId = _open(payer, receiver, DEPOSIT, SALT);

        // Three paid requests of 1 OPEN each: the receiver keeps only the latest voucher.
        bytes memory latest;
        for (uint256 i = 1; i <= 3; ++i) {
            latest = _sign(payerKey, channelId, i * 1 ether);
        }
        vm.assertEq(_claim(receiver, channelId, 3 ether, latest), 3 ether, "claim");

        vm.prank(payer);
        channels.initiateWithdraw(channelId);
        vm.warp(block.timestamp + DELAY);
        vm.prank(payer);
        vm.assertEq(channels.withdraw(channelId), DEPOSIT - 3 ether, "refund");

        vm.assertEq(token.balanceOf(receiver), 3 ether, "receiver");
        vm.assertEq(token.balanceOf(payer), PAYER_FUNDS - 3 ether, "payer");
        vm.assertEq(token.balanceOf(address(channels)), 0, "contract");
    }

    function test_lifecycle_receiverClaimsDuringDelay_payerGetsOnlyTheRest() public {
        bytes32 channelId = _open(payer, receiver, DEPOSIT, SALT);
        bytes memory latest = _sign(payerKey, channelId, 60 ether);

        // The payer tries to leave with the whole deposit; the receiver claims the last voucher in time.
        vm.prank(payer);
        channels.initiateWithdraw(channelId);
        vm.warp(block.timestamp + DELAY / 2);
        vm.assertEq(_claim(receiver, channelId, 60 ether, latest), 60 ether, "claim while closing");
        vm.warp(block.timestamp + DELAY / 2);
        vm.prank(payer);
        vm.assertEq(channels.withdraw(channelId), DEPOSIT - 60 ether, "refund");

        // Too late now: the channel is closed for good.
        bytes memory later = _sign(payerKey, channelId, 70 ether);
        _expectUnexpectedState(channelId, IPaymentChannels.ChannelState.Closed, _claimableBitmap());
        vm.prank(receiver);
        channels.claim(_one(channelId, 70 ether), _oneSig(later));
    }

    // ---------------------------------------------------------------- helpers

    function _fund(address account, uint256 amount) internal {
        _fundWithoutApproval(account, amount);
        vm.prank(account);
        token.approve(address(channels), type(uint256).max);
    }

    function _fundWithoutApproval(address account, uint256 amount) internal {
        vm.assertTrue(token.transfer(account, amount), "funding transfer");
    }

    function _open(address from, address to, uint256 amount, bytes32 salt) internal returns (bytes32 channelId) {
        vm.prank(from);
        channelId = channels.open(to, amount, salt);
    }

    /// @dev Initiates the payer's exit and completes it after the delay.
    function _close(bytes32 channelId) internal {
        vm.prank(payer);
        channels.initiateWithdraw(channelId);
        vm.warp(block.timestamp + DELAY);
        vm.prank(payer);
        channels.withdraw(channelId);
    }

    /// @dev Signs the voucher's digest computed here, independently of {PaymentChannels-voucherDigest}, and without
    /// an external call (which would consume a pending `vm.expectRevert`).
    function _sign(uint256 key, bytes32 channelId, uint256 cumulativeAmount) internal view returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, _digest(channelId, cumulativeAmount));
        return abi.encodePacked(r, s, v);
    }

    /// @dev The EIP-712 digest of a voucher under the domain ("PaymentChannels", "1", this chain, `channels`).
    function _digest(bytes32 channelId, uint256 cumulativeAmount) internal view returns (bytes32) {
        bytes32 domainSeparator = keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256("PaymentChannels"),
                keccak256("1"),
                block.chainid,
                address(channels)
            )
        );
        bytes32 structHash = keccak256(
            abi.encode(keccak256("Voucher(bytes32 channelId,uint256 cumulativeAmount)"), channelId, cumulativeAmount)
        );
        return keccak256(abi.encodePacked("\x19\x01", domainSeparator, structHash));
    }

    function _claim(address by, bytes32 channelId, uint256 cumulativeAmount, bytes memory signature)
        internal
        returns (uint256)
    {
        vm.prank(by);
        return channels.claim(_one(channelId, cumulativeAmount), _oneSig(signature));
    }

    function _one(bytes32 channelId, uint256 cumulativeAmount)
        internal
        pure
        returns (IPaymentChannels.Voucher[] memory vouchers)
    {
        vouchers = new IPaymentChannels.Voucher[](1);
        vouchers[0] = IPaymentChannels.Voucher(channelId, cumulativeAmount);
    }

    function _oneSig(bytes memory signature) internal pure returns (bytes[] memory signatures) {
        signatures = new bytes[](1);
        signatures[0] = signature;
    }

    function _bitmap(IPaymentChannels.ChannelState state) internal pure returns (bytes32) {
        return bytes32(uint256(1) << uint8(state));
    }

    function _claimableBitmap() internal pure returns (bytes32) {
        return _bitmap(IPaymentChannels.ChannelState.Open) | _bitmap(IPaymentChannels.ChannelState.Closing);
    }

    function _expectUnexpectedState(bytes32 channelId, IPaymentChannels.ChannelState current, bytes32 allowed)
        internal
    {
        vm.expectRevert(
            abi.encodeWithSelector(
                IPaymentChannels.PaymentChannelsUnexpectedState.selector, channelId, current, allowed
            )
        );
    }

    function _expectInvalidSignature(bytes32 channelId, address expectedPayer) internal {
        vm.expectRevert(
            abi.encodeWithSelector(IPaymentChannels.PaymentChannelsInvalidSignature.selector, channelId, expectedPayer)
        );
    }
}
