// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IPaymentChannels} from "./interfaces/IPaymentChannels.sol";

/// @title Unidirectional OPEN payment channels with batched voucher settlement
/// @notice See {IPaymentChannels}. Vouchers are EIP-712 messages under the domain ("PaymentChannels", "1", chain id,
/// this contract); a receiver settles any number of its channels with one call and one token transfer.
/// @dev Signatures are checked with OpenZeppelin's SignatureChecker: an ECDSA signature must have a low `s` (its
/// malleable twin is rejected) and a payer with code is asked through ERC-1271. A contract wallet may withdraw its
/// consent later (ERC-1271 answers can change), so a receiver that accepts vouchers from contract wallets should
/// claim them without much delay.
///
/// Vouchers carry no nonce or deadline: they are cumulative, so a claim consumes every voucher up to its amount,
/// and the channel's lifecycle bounds how long any of them is good for. The token is OPEN, a plain ERC-20 without
/// transfer fees or hooks; deposits are booked at face value.
contract PaymentChannels is IPaymentChannels, EIP712 {
    using SafeERC20 for IERC20;

    /// @notice EIP-712 type hash of {IPaymentChannels-Voucher}.
    bytes32 public constant VOUCHER_TYPEHASH = keccak256("Voucher(bytes32 channelId,uint256 cumulativeAmount)");

    /// @notice Lower bound of {withdrawDelay}: time enough for a receiver to notice an exit and claim.
    uint256 public constant MIN_WITHDRAW_DELAY = 1 hours;

    /// @notice Upper bound of {withdrawDelay}: a payer's deposit is never locked longer than this.
    uint256 public constant MAX_WITHDRAW_DELAY = 30 days;

    /// @dev State bitmaps for {_validateStateBitmap}: bit i set allows `ChannelState(i)`.
    bytes32 private constant _OPEN_BITMAP = bytes32(uint256(1) << uint8(ChannelState.Open));
    bytes32 private constant _CLOSING_BITMAP = bytes32(uint256(1) << uint8(ChannelState.Closing));
    bytes32 private constant _CLAIMABLE_BITMAP = _OPEN_BITMAP | _CLOSING_BITMAP;

    IERC20 private immutable _token;
    uint256 private immutable _withdrawDelay;

    mapping(bytes32 channelId => Channel) private _channels;

    /// @param token_ the token channels are funded and paid in (OPEN).
    /// @param withdrawDelay_ seconds between {initiateWithdraw} and {withdraw}, within
    /// [{MIN_WITHDRAW_DELAY}, {MAX_WITHDRAW_DELAY}]. Immutable: receivers rely on it for every open channel.
    constructor(IERC20 token_, uint256 withdrawDelay_) EIP712("PaymentChannels", "1") {
        if (withdrawDelay_ < MIN_WITHDRAW_DELAY || withdrawDelay_ > MAX_WITHDRAW_DELAY) {
            revert PaymentChannelsInvalidWithdrawDelay(withdrawDelay_, MIN_WITHDRAW_DELAY, MAX_WITHDRAW_DELAY);
        }
        _token = token_;
        _withdrawDelay = withdrawDelay_;
    }

    /// @inheritdoc IPaymentChannels
    function open(address receiver, uint256 amount, bytes32 salt) external returns (bytes32 channelId) {
        if (receiver == address(0) || receiver == msg.sender) revert PaymentChannelsInvalidReceiver(receiver);
        if (amount == 0) revert PaymentChannelsZeroAmount();
        channelId = channelIdOf(msg.sender, receiver, salt);
        if (_channels[channelId].state != ChannelState.None) revert PaymentChannelsChannelExists(channelId);

        _channels[channelId] = Channel({
            payer: msg.sender,
            withdrawableAt: 0,
            state: ChannelState.Open,
            receiver: receiver,
            deposit: SafeCast.toUint128(amount),
            claimed: 0
        });
        emit ChannelOpened(channelId, msg.sender, receiver, salt, amount);

        _token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @inheritdoc IPaymentChannels
    function topUp(bytes32 channelId, uint256 amount) external {
        if (amount == 0) revert PaymentChannelsZeroAmount();
        Channel storage ch = _channels[channelId];
        _validateStateBitmap(channelId, ch.state, _OPEN_BITMAP);
        _checkPayer(channelId, ch.payer);

        uint128 deposit = SafeCast.toUint128(ch.deposit + amount);
        ch.deposit = deposit;
        emit ChannelToppedUp(channelId, amount, deposit);

        _token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @inheritdoc IPaymentChannels
    function claim(Voucher[] calldata vouchers, bytes[] calldata signatures) external returns (uint256 amount) {
        if (vouchers.length != signatures.length) {
            revert PaymentChannelsLengthMismatch(vouchers.length, signatures.length);
        }
        for (uint256 i = 0; i < vouchers.length; ++i) {
            amount += _claimVoucher(vouchers[i], signatures[i]);
        }

        // One transfer for the whole batch. `amount` is zero only for an empty batch: every voucher pays > 0.
        if (amount != 0) _token.safeTransfer(msg.sender, amount);
    }

    /// @inheritdoc IPaymentChannels
    function initiateWithdraw(bytes32 channelId) external {
        Channel storage ch = _channels[channelId];
        _validateStateBitmap(channelId, ch.state, _OPEN_BITMAP);
        _checkPayer(channelId, ch.payer);

        uint64 withdrawableAt = SafeCast.toUint64(block.timestamp + _withdrawDelay);
        ch.state = ChannelState.Closing;
        ch.withdrawableAt = withdrawableAt;
        emit WithdrawalInitiated(channelId, withdrawableAt);
    }

    /// @inheritdoc IPaymentChannels
    function withdraw(bytes32 channelId) external returns (uint256 refund) {
        Channel storage ch = _channels[channelId];
        _validateStateBitmap(channelId, ch.state, _CLOSING_BITMAP);
        _checkPayer(channelId, ch.payer);
        uint256 withdrawableAt = ch.withdrawableAt;
        if (block.timestamp < withdrawableAt) {
            revert PaymentChannelsWithdrawalLocked(channelId, withdrawableAt, block.timestamp);
        }

        // The record stays (state Closed, deposit and claimed kept) so the id can never be opened again.
        unchecked {
            // Cannot underflow: a claim never raises `claimed` above `deposit`, and `deposit` never shrinks.
            refund = ch.deposit - ch.claimed;
        }
        ch.state = ChannelState.Closed;
        ch.withdrawableAt = 0;
        emit ChannelClosed(channelId, refund);

        if (refund != 0) _token.safeTransfer(msg.sender, refund);
    }

    /// @inheritdoc IPaymentChannels
    function token() external view returns (IERC20) {
        return _token;
    }

    /// @inheritdoc IPaymentChannels
    function withdrawDelay() external view returns (uint256) {
        return _withdrawDelay;
    }

    /// @inheritdoc IPaymentChannels
    function channel(bytes32 channelId) external view returns (Channel memory) {
        return _channels[channelId];
    }

    /// @inheritdoc IPaymentChannels
    function voucherDigest(Voucher calldata voucher) external view returns (bytes32) {
        return _voucherDigest(voucher.channelId, voucher.cumulativeAmount);
    }

    /// @inheritdoc IPaymentChannels
    function channelIdOf(address payer, address receiver, bytes32 salt) public view returns (bytes32) {
        return keccak256(abi.encode(block.chainid, address(this), payer, receiver, salt));
    }

    /// @dev Checks one voucher of a {claim} by the caller, books it and returns what it adds to the channel's claim.
    function _claimVoucher(Voucher calldata voucher, bytes calldata signature) private returns (uint256 amount) {
        bytes32 channelId = voucher.channelId;
        uint256 cumulativeAmount = voucher.cumulativeAmount;
        Channel storage ch = _channels[channelId];
        _validateStateBitmap(channelId, ch.state, _CLAIMABLE_BITMAP);
        address receiver = ch.receiver;
        if (msg.sender != receiver) revert PaymentChannelsNotReceiver(channelId, msg.sender, receiver);
        uint256 claimed = ch.claimed;
        if (cumulativeAmount <= claimed) revert PaymentChannelsStaleVoucher(channelId, cumulativeAmount, claimed);
        uint256 deposit = ch.deposit;
        if (cumulativeAmount > deposit) {
            revert PaymentChannelsVoucherExceedsDeposit(channelId, cumulativeAmount, deposit);
        }
        address payer = ch.payer;
        bytes32 digest = _voucherDigest(channelId, cumulativeAmount);
        if (!SignatureChecker.isValidSignatureNowCalldata(payer, digest, signature)) {
            revert PaymentChannelsInvalidSignature(channelId, payer);
        }

        unchecked {
            // Cannot underflow: `cumulativeAmount > claimed` was checked above.
            amount = cumulativeAmount - claimed;
        }
        // Safe cast: `cumulativeAmount <= deposit`, a uint128, was checked above.
        // forge-lint: disable-next-line(unsafe-typecast)
        ch.claimed = uint128(cumulativeAmount);
        emit VoucherClaimed(channelId, receiver, cumulativeAmount, amount);
    }

    /// @dev Reverts unless the caller is `payer`, the payer of `channelId`.
    function _checkPayer(bytes32 channelId, address payer) private view {
        if (msg.sender != payer) revert PaymentChannelsNotPayer(channelId, msg.sender, payer);
    }

    /// @dev The EIP-712 digest of `Voucher(channelId, cumulativeAmount)` under this contract's domain.
    function _voucherDigest(bytes32 channelId, uint256 cumulativeAmount) private view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(VOUCHER_TYPEHASH, channelId, cumulativeAmount)));
    }

    /// @dev Reverts with {PaymentChannelsUnexpectedState} unless `current`, the state of `channelId`, is one of the
    /// states set in `allowedStates` (bit i set = `ChannelState(i)` allowed), as Governor's check of the same name.
    function _validateStateBitmap(bytes32 channelId, ChannelState current, bytes32 allowedStates) private pure {
        if (bytes32(uint256(1) << uint8(current)) & allowedStates == bytes32(0)) {
            revert PaymentChannelsUnexpectedState(channelId, current, allowedStates);
        }
    }
}
