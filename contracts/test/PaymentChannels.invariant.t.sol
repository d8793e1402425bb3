// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {OpenToken} from "../src/OpenToken.sol";
import {PaymentChannels} from "../src/PaymentChannels.sol";
import {IPaymentChannels} from "../src/interfaces/IPaymentChannels.sol";
import {Test} from "./utils/Test.sol";

/// @notice Drives {PaymentChannels} the way payers and receivers do, with their own keys, and keeps ghost books of
/// every token that moved so the invariants can compare them with the contract's state.
/// @dev The suite runs with `fail_on_revert = false`, so a broken expectation is never a revert here: it is counted
/// in a ghost counter (`ghostWrongOutcomes`, `ghostEarlyWithdrawals`, ...) that an invariant requires to stay zero.
contract PaymentChannelsHandler is Test {
    uint256 internal constant ACTORS = 3;
    uint256 internal constant MAX_DEPOSIT = 1_000_000 ether;
    uint256 internal constant MAX_BATCH = 4;

    PaymentChannels public immutable channels;
    OpenToken public immutable token;

    address[ACTORS] public payers;
    address[ACTORS] public receivers;
    mapping(address payer => uint256 privateKey) internal _keys;

    bytes32[] public channelIds;

    /// @dev The clock lives here, and every call starts by warping to it, so time only moves through {warp}.
    uint256 public currentTime;

    // The handler's own model of every channel, kept apart from the contract's books.
    mapping(bytes32 channelId => uint256 amount) public ghostDeposited;
    mapping(bytes32 channelId => uint256 amount) public ghostPaid;
    mapping(bytes32 channelId => uint256 amount) public ghostRefunded;
    mapping(bytes32 channelId => uint256 time) public ghostUnlockAt;
    mapping(bytes32 channelId => uint256 amount) internal _lastSeenClaimed;
    mapping(bytes32 channelId => IPaymentChannels.Voucher voucher) internal _lastVoucher;
    mapping(bytes32 channelId => bytes signature) internal _lastSignature;
    uint256 public ghostDepositedTotal;
    uint256 public ghostPaidTotal;
    uint256 public ghostRefundedTotal;

    // Broken rules, each counted where it shows and required by an invariant to stay zero.
    uint256 public ghostClaimedDecreases;
    uint256 public ghostEarlyWithdrawals;
    uint256 public ghostReplaysAccepted;
    uint256 public ghostPaymentMismatches;
    /// @dev A call the rules allow reverted, or one they forbid went through.
    uint256 public ghostWrongOutcomes;

    // Successful calls, to see that the runs reach every path.
    uint256 public opened;
    uint256 public toppedUp;
    uint256 public claims;
    uint256 public initiated;
    uint256 public withdrawn;

    constructor(PaymentChannels channels_, OpenToken token_) {
        channels = channels_;
        token = token_;
        currentTime = block.timestamp;
        string[ACTORS] memory payerNames = ["payer 0", "payer 1", "payer 2"];
        string[ACTORS] memory receiverNames = ["receiver 0", "receiver 1", "receiver 2"];
        for (uint256 i = 0; i < ACTORS; ++i) {
            (address payer, uint256 key) = makeAccount(payerNames[i]);
            payers[i] = payer;
            _keys[payer] = key;
            (receivers[i],) = makeAccount(receiverNames[i]);
        }
    }

    /// @dev Gives every payer its funds and allowance; called once by the test after deployment.
    function fundPayers(uint256 amountEach) external {
        for (uint256 i = 0; i < ACTORS; ++i) {
            vm.assertTrue(token.transfer(payers[i], amountEach), "funding transfer");
            vm.prank(payers[i]);
            token.approve(address(channels), type(uint256).max);
        }
    }

    modifier onClock() {
        vm.warp(currentTime);
        _;
        _watchClaimed();
    }

    function open(uint256 payerSeed, uint256 receiverSeed, uint256 amount) external onClock {
        address payer = payers[payerSeed % ACTORS];
        address receiver = receivers[receiverSeed % ACTORS];
        amount = bound(amount, 1, MAX_DEPOSIT);
        if (token.balanceOf(payer) < amount) return;

        vm.prank(payer);
        try channels.open(receiver, amount, bytes32(channelIds.length)) returns (bytes32 channelId) {
            channelIds.push(channelId);
            ghostDeposited[channelId] = amount;
            ghostDepositedTotal += amount;
            ++opened;
        } catch {
            ++ghostWrongOutcomes;
        }
    }

    function topUp(uint256 channelSeed, uint256 amount) external onClock {
        if (channelIds.length == 0) return;
        bytes32 channelId = channelIds[channelSeed % channelIds.length];
        IPaymentChannels.Channel memory ch = channels.channel(channelId);
        amount = bound(amount, 1, MAX_DEPOSIT);
        if (token.balanceOf(ch.payer) < amount) return;
        bool allowed = ch.state == IPaymentChannels.ChannelState.Open;

        vm.prank(ch.payer);
        try channels.topUp(channelId, amount) {
            if (!allowed) ++ghostWrongOutcomes;
            ghostDeposited[channelId] += amount;
            ghostDepositedTotal += amount;
            ++toppedUp;
        } catch {
            if (allowed) ++ghostWrongOutcomes;
        }
    }

    /// @notice A receiver claims a batch of up to MAX_BATCH fresh vouchers from its channels, each signed with the
    /// channel payer's key; a channel may appear twice with rising amounts. Every such batch must pay.
    function claim(uint256 receiverSeed, uint256 channelSeed, uint256 count, uint256 amountSeed) external onClock {
        if (channelIds.length == 0) return;
        address receiver = receivers[receiverSeed % ACTORS];
        count = bound(count, 1, MAX_BATCH);

        IPaymentChannels.Voucher[] memory vouchers = new IPaymentChannels.Voucher[](count);
        uint256 found;
        uint256 start = channelSeed % channelIds.length;
        for (uint256 i = 0; i < channelIds.length && found < count; ++i) {
            bytes32 channelId = channelIds[(start + i) % channelIds.length];
            IPaymentChannels.Channel memory ch = channels.channel(channelId);
            if (ch.receiver != receiver || ch.state == IPaymentChannels.ChannelState.Closed) continue;
            uint256 paid = ghostPaid[channelId];
            if (paid >= ch.deposit) continue;
            amountSeed = uint256(keccak256(abi.encode(amountSeed)));
            uint256 cumulativeAmount = bound(amountSeed, paid + 1, ch.deposit);
            vouchers[found++] = IPaymentChannels.Voucher(channelId, cumulativeAmount);
            // Half the time the same channel goes in again, with a higher voucher.
            if (amountSeed % 2 == 0 && found < count && cumulativeAmount < ch.deposit) {
                vouchers[found++] = IPaymentChannels.Voucher(channelId, cumulativeAmount + 1);
            }
        }
        if (found == 0) return;

        IPaymentChannels.Voucher[] memory batch = new IPaymentChannels.Voucher[](found);
        bytes[] memory signatures = new bytes[](found);
        for (uint256 i = 0; i < found; ++i) {
            batch[i] = vouchers[i];
            signatures[i] = _sign(_keys[channels.channel(batch[i].channelId).payer], batch[i]);
        }
        _claimBatch(receiver, batch, signatures);
    }

    /// @notice The receiver presents its last claimed voucher again; it must never be paid twice.
    function replayLastVoucher(uint256 channelSeed) external onClock {
        if (channelIds.length == 0) return;
        bytes32 channelId = channelIds[channelSeed % channelIds.length];
        if (_lastSignature[channelId].length == 0) return;
        IPaymentChannels.Voucher[] memory vouchers = new IPaymentChannels.Voucher[](1);
        bytes[] memory signatures = new bytes[](1);
        vouchers[0] = _lastVoucher[channelId];
        signatures[0] = _lastSignature[channelId];

        vm.prank(channels.channel(channelId).receiver);
        try channels.claim(vouchers, signatures) {
            ++ghostReplaysAccepted;
        } catch {}
    }

    function initiateWithdraw(uint256 channelSeed) external onClock {
        if (channelIds.length == 0) return;
        bytes32 channelId = channelIds[channelSeed % channelIds.length];
        IPaymentChannels.Channel memory ch = channels.channel(channelId);
        bool allowed = ch.state == IPaymentChannels.ChannelState.Open;

        vm.prank(ch.payer);
        try channels.initiateWithdraw(channelId) {
            if (!allowed) ++ghostWrongOutcomes;
            ghostUnlockAt[channelId] = currentTime + channels.withdrawDelay();
            ++initiated;
        } catch {
            if (allowed) ++ghostWrongOutcomes;
        }
    }

    /// @notice The payer tries to withdraw whenever it likes, early or not; only a due withdrawal may succeed.
    function withdraw(uint256 channelSeed) external onClock {
        if (channelIds.length == 0) return;
        bytes32 channelId = channelIds[channelSeed % channelIds.length];
        IPaymentChannels.Channel memory ch = channels.channel(channelId);
        bool closing = ch.state == IPaymentChannels.ChannelState.Closing;
        bool due = closing && currentTime >= ghostUnlockAt[channelId];
        uint256 balanceBefore = token.balanceOf(ch.payer);

        vm.prank(ch.payer);
        try channels.withdraw(channelId) returns (uint256 refund) {
            if (closing && !due) ++ghostEarlyWithdrawals;
            if (!closing) ++ghostWrongOutcomes;
            uint256 expected = ghostDeposited[channelId] - ghostPaid[channelId];
            if (refund != expected || token.balanceOf(ch.payer) - balanceBefore != expected) {
                ++ghostPaymentMismatches;
            }
            ghostRefunded[channelId] += refund;
            ghostRefundedTotal += refund;
            ++withdrawn;
        } catch {
            if (due) ++ghostWrongOutcomes;
        }
    }

    function warp(uint256 secondsForward) external onClock {
        currentTime += bound(secondsForward, 0, 2 * channels.withdrawDelay());
    }

    function channelCount() external view returns (uint256) {
        return channelIds.length;
    }

    /// @dev Claims `vouchers` as `receiver` and checks the payment against the handler's own model.
    function _claimBatch(address receiver, IPaymentChannels.Voucher[] memory vouchers, bytes[] memory signatures)
        internal
    {
        // Expected: for each channel, its highest voucher in the batch minus what the model says was paid.
        uint256 expectedPaid;
        for (uint256 i = 0; i < vouchers.length; ++i) {
            bytes32 channelId = vouchers[i].channelId;
            uint256 floor = ghostPaid[channelId];
            for (uint256 j = 0; j < i; ++j) {
                if (vouchers[j].channelId == channelId) floor = vouchers[j].cumulativeAmount;
            }
            expectedPaid += vouchers[i].cumulativeAmount - floor;
        }
        uint256 balanceBefore = token.balanceOf(receiver);

        vm.prank(receiver);
        try channels.claim(vouchers, signatures) returns (uint256 paid) {
            uint256 received = token.balanceOf(receiver) - balanceBefore;
            if (paid != expectedPaid || received != expectedPaid) ++ghostPaymentMismatches;
            ghostPaidTotal += received;
            for (uint256 i = 0; i < vouchers.length; ++i) {
                ghostPaid[vouchers[i].channelId] = vouchers[i].cumulativeAmount;
                _lastVoucher[vouchers[i].channelId] = vouchers[i];
                _lastSignature[vouchers[i].channelId] = signatures[i];
            }
            ++claims;
        } catch {
            ++ghostWrongOutcomes;
        }
    }

    /// @dev After every action: no channel's claimed amount went down.
    function _watchClaimed() internal {
        for (uint256 i = 0; i < channelIds.length; ++i) {
            uint256 claimed = channels.channel(channelIds[i]).claimed;
            if (claimed < _lastSeenClaimed[channelIds[i]]) ++ghostClaimedDecreases;
            _lastSeenClaimed[channelIds[i]] = claimed;
        }
    }

    function _sign(uint256 key, IPaymentChannels.Voucher memory voucher) internal view returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, channels.voucherDigest(voucher));
        return abi.encodePacked(r, s, v);
    }
}

contract PaymentChannelsInvariantTest is Test {
    uint256 internal constant DELAY = 1 days;
    uint256 internal constant PAYER_FUNDS = 100_000_000 ether;

    OpenToken internal token;
    PaymentChannels internal channels;
    PaymentChannelsHandler internal handler;
    uint256 internal initialSupply;

    function setUp() public {
        token = new OpenToken(address(this));
        channels = new PaymentChannels(IERC20(address(token)), DELAY);
        handler = new PaymentChannelsHandler(channels, token);
        vm.assertTrue(token.transfer(address(handler), 3 * PAYER_FUNDS), "fund handler");
        handler.fundPayers(PAYER_FUNDS);
        initialSupply = token.totalSupply();

        bytes4[] memory selectors = new bytes4[](7);
        selectors[0] = PaymentChannelsHandler.open.selector;
        selectors[1] = PaymentChannelsHandler.topUp.selector;
        selectors[2] = PaymentChannelsHandler.claim.selector;
        selectors[3] = PaymentChannelsHandler.replayLastVoucher.selector;
        selectors[4] = PaymentChannelsHandler.initiateWithdraw.selector;
        selectors[5] = PaymentChannelsHandler.withdraw.selector;
        selectors[6] = PaymentChannelsHandler.warp.selector;
        targetContract(address(handler));
        targetSelector(FuzzSelector({addr: address(handler), selectors: selectors}));
    }

    /// @notice The contract holds exactly what it owes: the unclaimed rest of every channel not yet closed.
    function invariant_balanceEqualsOutstandingDeposits() public view {
        uint256 outstanding;
        uint256 count = handler.channelCount();
        for (uint256 i = 0; i < count; ++i) {
            IPaymentChannels.Channel memory ch = channels.channel(handler.channelIds(i));
            if (ch.state != IPaymentChannels.ChannelState.Closed) outstanding += ch.deposit - ch.claimed;
        }
        vm.assertEq(token.balanceOf(address(channels)), outstanding, "balance == sum of open (deposit - claimed)");
    }

    /// @notice A channel never pays out more than was put in, and a closed one paid out exactly that.
    function invariant_channelNeverPaysMoreThanDeposit() public view {
        uint256 count = handler.channelCount();
        for (uint256 i = 0; i < count; ++i) {
            bytes32 channelId = handler.channelIds(i);
            IPaymentChannels.Channel memory ch = channels.channel(channelId);
            uint256 paidOut = handler.ghostPaid(channelId) + handler.ghostRefunded(channelId);
            vm.assertEq(ch.deposit, handler.ghostDeposited(channelId), "deposit == what was put in");
            vm.assertLe(ch.claimed, ch.deposit, "claimed <= deposit");
            vm.assertLe(paidOut, ch.deposit, "claimed + refund <= deposit");
            if (ch.state == IPaymentChannels.ChannelState.Closed) {
                vm.assertEq(paidOut, ch.deposit, "a closed channel paid out its whole deposit");
            }
        }
    }

    /// @notice Every token a receiver got matches a rise of a channel's claimed amount, once.
    function invariant_noVoucherPaidTwice() public view {
        uint256 claimedTotal;
        uint256 count = handler.channelCount();
        for (uint256 i = 0; i < count; ++i) {
            bytes32 channelId = handler.channelIds(i);
            uint256 claimed = channels.channel(channelId).claimed;
            vm.assertEq(handler.ghostPaid(channelId), claimed, "paid to receiver == claimed, per channel");
            claimedTotal += claimed;
        }
        vm.assertEq(handler.ghostPaidTotal(), claimedTotal, "paid to receivers == sum of claimed");
        vm.assertEq(handler.ghostReplaysAccepted(), 0, "a claimed voucher was paid again");
        vm.assertEq(handler.ghostPaymentMismatches(), 0, "a call paid other than it said");
    }

    function invariant_claimedNeverDecreases() public view {
        vm.assertEq(handler.ghostClaimedDecreases(), 0, "claimed went down");
    }

    function invariant_noWithdrawalBeforeUnlock() public view {
        vm.assertEq(handler.ghostEarlyWithdrawals(), 0, "withdrawal completed before its unlock time");
        uint256 count = handler.channelCount();
        for (uint256 i = 0; i < count; ++i) {
            bytes32 channelId = handler.channelIds(i);
            IPaymentChannels.Channel memory ch = channels.channel(channelId);
            if (ch.state == IPaymentChannels.ChannelState.Closing) {
                vm.assertEq(ch.withdrawableAt, handler.ghostUnlockAt(channelId), "unlock time = initiation + delay");
            }
        }
    }

    /// @notice Every call the rules allow succeeds and every call they forbid fails, with the right payments.
    function invariant_callsBehaveAsSpecified() public view {
        vm.assertEq(handler.ghostWrongOutcomes(), 0, "a call succeeded or failed against the rules");
    }

    /// @notice Every token deposited is either still held, or was paid once to a receiver or refunded once.
    function invariant_depositsAreAccountedFor() public view {
        vm.assertEq(
            handler.ghostDepositedTotal(),
            token.balanceOf(address(channels)) + handler.ghostPaidTotal() + handler.ghostRefundedTotal(),
            "deposited == held + paid + refunded"
        );
    }

    /// @notice Nothing mints or burns, and every token is with an actor, the handler or the contract.
    function invariant_tokenSupplyConstant() public view {
        vm.assertEq(token.totalSupply(), initialSupply, "total supply");
        uint256 held =
            token.balanceOf(address(channels)) + token.balanceOf(address(handler)) + token.balanceOf(address(this));
        for (uint256 i = 0; i < 3; ++i) {
            held += token.balanceOf(handler.payers(i)) + token.balanceOf(handler.receivers(i));
        }
        vm.assertEq(held, initialSupply, "tokens conserved");
    }
}
