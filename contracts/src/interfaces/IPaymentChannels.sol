// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// @title Unidirectional OPEN payment channels from a payer to one receiver (an agent)
/// @notice The payer deposits OPEN once, then pays each request off-chain with an EIP-712
/// `Voucher(bytes32 channelId,uint256 cumulativeAmount)`: the running total it owes. The receiver keeps the latest
/// voucher of each channel and claims many channels in one transaction; each claim pays the difference to what was
/// already claimed. A payer leaves in two steps, {initiateWithdraw} then {withdraw} after `withdrawDelay`; the
/// receiver can still claim during the delay, so no voucher it accepted is lost.
///
/// Replay: a channel id commits to payer, receiver, salt, chain and contract, the EIP-712 domain to chain and
/// contract, and channel ids are never reused, so a voucher is good for one channel on one chain only.
interface IPaymentChannels {
    /// @notice Lifecycle of a channel. `None` means no such channel.
    enum ChannelState {
        None,
        Open,
        Closing,
        Closed
    }

    /// @notice A channel's on-chain state.
    /// @param withdrawableAt block time from which the payer may withdraw; zero unless `Closing`.
    struct Channel {
        address payer;
        uint64 withdrawableAt;
        ChannelState state;
        address receiver;
        uint128 deposit;
        uint128 claimed;
    }

    /// @notice The payer's promise that the receiver may take `cumulativeAmount` in total out of `channelId`.
    struct Voucher {
        bytes32 channelId;
        uint256 cumulativeAmount;
    }

    /// @notice `payer` opened `channelId` to `receiver` with a deposit of `deposit`.
    event ChannelOpened(
        bytes32 indexed channelId, address indexed payer, address indexed receiver, bytes32 salt, uint256 deposit
    );

    /// @notice `amount` was added to `channelId`, whose deposit is now `deposit`.
    event ChannelToppedUp(bytes32 indexed channelId, uint256 amount, uint256 deposit);

    /// @notice The receiver claimed `channelId` up to `cumulativeAmount`, being paid `amount` now.
    event VoucherClaimed(bytes32 indexed channelId, address indexed receiver, uint256 cumulativeAmount, uint256 amount);

    /// @notice The payer asked to leave `channelId`; it may withdraw from `withdrawableAt` on.
    event WithdrawalInitiated(bytes32 indexed channelId, uint256 withdrawableAt);

    /// @notice The payer withdrew the `refund` left in `channelId`, which is now closed for good.
    event ChannelClosed(bytes32 indexed channelId, uint256 refund);

    /// @notice An amount of zero was given where a positive amount is needed.
    error PaymentChannelsZeroAmount();

    /// @notice `receiver` cannot receive a channel: it is zero or the payer itself.
    error PaymentChannelsInvalidReceiver(address receiver);

    /// @notice `channelId` exists already (ids are never reused); choose another salt.
    error PaymentChannelsChannelExists(bytes32 channelId);

    /// @notice `channelId` is in state `current`; the action needs one of the states set in the bitmap
    /// `expectedStates` (bit i set = state i allowed).
    error PaymentChannelsUnexpectedState(bytes32 channelId, ChannelState current, bytes32 expectedStates);

    /// @notice `caller` is not the payer `payer` of `channelId`.
    error PaymentChannelsNotPayer(bytes32 channelId, address caller, address payer);

    /// @notice `caller` is not the receiver `receiver` of `channelId`.
    error PaymentChannelsNotReceiver(bytes32 channelId, address caller, address receiver);

    /// @notice The voucher's `cumulativeAmount` does not exceed the `claimed` amount of `channelId`.
    error PaymentChannelsStaleVoucher(bytes32 channelId, uint256 cumulativeAmount, uint256 claimed);

    /// @notice The voucher's `cumulativeAmount` exceeds the `deposit` of `channelId`.
    error PaymentChannelsVoucherExceedsDeposit(bytes32 channelId, uint256 cumulativeAmount, uint256 deposit);

    /// @notice The signature over the voucher for `channelId` is not the payer `payer`'s.
    error PaymentChannelsInvalidSignature(bytes32 channelId, address payer);

    /// @notice The payer may withdraw from `channelId` only from `withdrawableAt`; the block time is `nowTime`.
    error PaymentChannelsWithdrawalLocked(bytes32 channelId, uint256 withdrawableAt, uint256 nowTime);

    /// @notice {claim} got `vouchers` vouchers but `signatures` signatures.
    error PaymentChannelsLengthMismatch(uint256 vouchers, uint256 signatures);

    /// @notice The withdraw delay `delay` lies outside [`min`, `max`].
    error PaymentChannelsInvalidWithdrawDelay(uint256 delay, uint256 min, uint256 max);

    /// @notice Opens a channel from the caller to `receiver`, pulling `amount` OPEN (needs an allowance).
    /// @param salt any value that makes the id unique among the caller's channels to `receiver`.
    /// @return channelId the id, also given by {channelIdOf}.
    function open(address receiver, uint256 amount, bytes32 salt) external returns (bytes32 channelId);

    /// @notice Adds `amount` OPEN to the caller's open channel `channelId`.
    function topUp(bytes32 channelId, uint256 amount) external;

    /// @notice Pays the caller, as receiver of every channel named, what each voucher adds to what was claimed.
    /// Each voucher must be signed by its channel's payer (ECDSA, or ERC-1271 for a contract wallet), exceed what
    /// was claimed and not exceed the deposit; any bad voucher reverts the whole batch. Works while `Open` or
    /// `Closing`.
    /// @return amount the total paid.
    function claim(Voucher[] calldata vouchers, bytes[] calldata signatures) external returns (uint256 amount);

    /// @notice Starts the caller's exit from `channelId`: the remainder becomes withdrawable after the delay.
    function initiateWithdraw(bytes32 channelId) external;

    /// @notice Pays the caller, the payer, what is left in `channelId` once the delay has passed, and closes it.
    /// @return refund what was paid.
    function withdraw(bytes32 channelId) external returns (uint256 refund);

    /// @notice The staked token (OPEN).
    function token() external view returns (IERC20);

    /// @notice Seconds between {initiateWithdraw} and {withdraw}; fixed at deployment.
    function withdrawDelay() external view returns (uint256);

    /// @notice The state of `channelId`.
    function channel(bytes32 channelId) external view returns (Channel memory);

    /// @notice The id of the channel `payer` opens to `receiver` with `salt` on this chain and contract.
    function channelIdOf(address payer, address receiver, bytes32 salt) external view returns (bytes32);

    /// @notice The EIP-712 digest the payer signs for `voucher`.
    function voucherDigest(Voucher calldata voucher) external view returns (bytes32);
}
