// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IAgentStaking} from "./IAgentStaking.sol";
import {IReceiptRegistry} from "./IReceiptRegistry.sol";
import {ISlashingAuthority} from "./ISlashingAuthority.sol";

/// @title Disputes over agents' receipts, and the slashing they lead to
/// @notice The only contract allowed to slash in {IAgentStaking}. It knows five kinds of fault:
/// - *Equivocation*: two receipts for one request with different content, both signed for the agent. Proven on-chain
///   by {proveEquivocation} and slashed at once (`equivocationSlashBps`); the prover gets `proverRewardBps` of the
///   slash.
/// - *Withholding*: a signed receipt of an epoch the agent committed or skipped that the agent cannot show in the
///   epoch's receipts root. Opened by {challengeInclusion} (bond `inclusionBond`, against spam); the agent answers
///   with {proveInclusion} within `responseWindow`, which ends the dispute and pays the bond to the agent; otherwise
///   {resolve} slashes `withholdingSlashBps`, returns the bond and pays the challenger `proverRewardBps` of the slash.
/// - *Output*, *Attribution*, *Totals*: faults that need judgement (a wrong answer, a wrong attribution, misreported
///   epoch totals). Opened by {challenge} with bond `challengeBond`, decided by a vote of validators weighted by their
///   active stake one block before the opening. After `votingPeriod`, {resolve} upholds the challenge when the votes
///   reach `quorumBps` of the eligible stake and uphold outweighs reject: the agent is slashed `outputSlashBps`, the
///   challenger gets its bond back plus `challengerRewardBps` of the slash, the receipt's payer gets its price
///   back (as far as the rest of the slash covers it). Otherwise the bond goes to the agent.
///
/// Slashes are shares of the agent's slashable Agent stake at that moment (active plus not yet unlocked), so they
/// never exceed it; what is not paid out goes to the treasury of {IAgentStaking}. OPEN has a fixed supply: nothing
/// is minted or burnt.
///
/// Disputes on an epoch may be opened until the epoch's challenge deadline in the receipt registry; while any is open,
/// the epoch's rewards cannot be claimed. Each fault is disputed at most once: per (agent, requestId) for
/// equivocation, per (agent, epoch) for Totals, per receipt for the other kinds. Every dispute, equivocation proofs
/// included, gets an id from 1 up; a resolved dispute never changes again.
interface IDisputeManager is ISlashingAuthority {
    /// @notice The faults a dispute can be about.
    enum DisputeKind {
        Equivocation,
        Withholding,
        Output,
        Attribution,
        Totals
    }

    /// @notice Lifecycle of a dispute. `None`: no such dispute. `Open`: waiting for the agent's inclusion proof
    /// (Withholding) or for votes (Output, Attribution, Totals). `Upheld`: the agent was found at fault and slashed.
    /// `Rejected`: the agent was cleared. `Upheld` and `Rejected` are final.
    enum DisputeState {
        None,
        Open,
        Upheld,
        Rejected
    }

    /// @notice Names of the fields of {Parameters}, to say which one is out of bounds.
    enum Parameter {
        ChallengeWindow,
        ResponseWindow,
        VotingPeriod,
        QuorumBps,
        EquivocationSlashBps,
        WithholdingSlashBps,
        OutputSlashBps,
        ProverRewardBps,
        ChallengerRewardBps,
        ChallengeBond,
        InclusionBond
    }

    /// @notice The tunable parameters. Durations are seconds, shares basis points (of 10_000), bonds OPEN wei.
    /// Each has bounds (see {parameterBounds}).
    /// @param challengeWindow how long after an epoch's commit disputes on it may be opened, and its rewards wait.
    /// @param responseWindow how long an agent has to prove a challenged receipt's inclusion.
    /// @param votingPeriod how long validators may vote on a challenge.
    /// @param quorumBps share of the eligible validator stake that must vote for a challenge to be upheld.
    /// @param equivocationSlashBps share of the slashable stake slashed for equivocation.
    /// @param withholdingSlashBps share of the slashable stake slashed for a withheld receipt.
    /// @param outputSlashBps share of the slashable stake slashed for an upheld Output, Attribution or Totals
    /// challenge.
    /// @param proverRewardBps share of an equivocation or withholding slash paid to who proved it.
    /// @param challengerRewardBps share of an upheld challenge's slash paid to the challenger.
    /// @param challengeBond bond of an Output, Attribution or Totals challenge.
    /// @param inclusionBond bond of an inclusion challenge.
    struct Parameters {
        uint64 challengeWindow;
        uint64 responseWindow;
        uint64 votingPeriod;
        uint16 quorumBps;
        uint16 equivocationSlashBps;
        uint16 withholdingSlashBps;
        uint16 outputSlashBps;
        uint16 proverRewardBps;
        uint16 challengerRewardBps;
        uint96 challengeBond;
        uint96 inclusionBond;
    }

    /// @notice A dispute.
    /// @param agent the accused agent (operator address).
    /// @param epoch the epoch of the disputed receipt (of the first receipt, for equivocation).
    /// @param challenger who opened the dispute (who proved it, for equivocation).
    /// @param deadline last block time for the inclusion proof or the votes; zero for equivocation.
    /// @param snapshotBlock block whose active validator stakes weigh the votes; zero unless voted on.
    /// @param receiptHash EIP-712 struct hash of the disputed receipt (of the first receipt, for equivocation).
    /// @param payer the receipt's payer, refunded when a voted challenge is upheld; zero for other kinds, and when
    /// the payer is the agent itself.
    /// @param refund what the payer is refunded at most: the receipt's price (capped at `type(uint96).max`).
    /// @param bond the challenger's bond, held by this contract while the dispute is open.
    /// @param seq the receipt's position in its epoch.
    /// @param upholdWeight stake that voted to uphold.
    /// @param rejectWeight stake that voted to reject.
    struct Dispute {
        address agent;
        DisputeKind kind;
        DisputeState state;
        uint64 epoch;
        address challenger;
        uint48 deadline;
        uint48 snapshotBlock;
        bytes32 receiptHash;
        address payer;
        uint96 refund;
        uint96 bond;
        uint64 seq;
        uint128 upholdWeight;
        uint128 rejectWeight;
    }

    /// @notice `challenger` opened dispute `disputeId` of `kind` against `agent` about the receipt `receiptHash` of
    /// `epoch`, with `bond`; it is decided after `deadline`.
    event DisputeOpened(
        uint256 indexed disputeId,
        DisputeKind indexed kind,
        address indexed agent,
        address challenger,
        uint64 epoch,
        bytes32 receiptHash,
        bytes32 evidenceHash,
        uint256 bond,
        uint256 deadline
    );

    /// @notice `prover` proved that `agent` signed the two receipts `receiptHashA` and `receiptHashB` for
    /// `requestId`; `agent` was slashed `slashed`. Recorded as dispute `disputeId`, upheld at once.
    event EquivocationProven(
        uint256 indexed disputeId,
        address indexed agent,
        bytes32 indexed requestId,
        address prover,
        bytes32 receiptHashA,
        bytes32 receiptHashB,
        uint256 slashed
    );

    /// @notice `voter` voted on dispute `disputeId` with `weight` of stake, to uphold it or not.
    event Voted(uint256 indexed disputeId, address indexed voter, bool uphold, uint256 weight);

    /// @notice Dispute `disputeId` ended in `state`; the agent was slashed `slashed`.
    event DisputeResolved(uint256 indexed disputeId, DisputeState state, uint256 slashed);

    /// @notice The parameters became `parameters`.
    event ParametersSet(Parameters parameters);

    /// @notice The zero address was given where a contract is needed.
    error DisputeManagerZeroAddress();

    /// @notice The receipt registry works with the staking contract `registryStaking`, not `staking`.
    error DisputeManagerStakingMismatch(address staking, address registryStaking);

    /// @notice `parameter` would be `value`, outside [`min`, `max`].
    error DisputeManagerInvalidParameter(Parameter parameter, uint256 value, uint256 min, uint256 max);

    /// @notice The windows would need an unbonding period of at least `required` seconds; the staking contract has
    /// `unbondingPeriod`. Raise that first.
    error DisputeManagerUnbondingPeriodTooShort(uint256 required, uint256 unbondingPeriod);

    /// @notice The receipt for `agent` was signed by `signer`, which is not bound to `agent` (or `agent` is zero).
    error DisputeManagerInvalidSigner(address signer, address agent);

    /// @notice The two receipts are not for the same agent and request.
    error DisputeManagerNotEquivocation(address agentA, bytes32 requestIdA, address agentB, bytes32 requestIdB);

    /// @notice The two receipts are the same receipt, `receiptHash`.
    error DisputeManagerIdenticalReceipts(bytes32 receiptHash);

    /// @notice This fault was already disputed, as dispute `disputeId`.
    error DisputeManagerAlreadyDisputed(uint256 disputeId);

    /// @notice `agent`'s `epoch` is `status`, which this dispute cannot be about.
    error DisputeManagerEpochNotDisputable(address agent, uint64 epoch, IReceiptRegistry.EpochStatus status);

    /// @notice Disputes on `agent`'s `epoch` could be opened only until `challengeDeadline`.
    error DisputeManagerChallengeWindowClosed(address agent, uint64 epoch, uint256 challengeDeadline);

    /// @notice {challenge} takes only the kinds Output, Attribution and Totals, not `kind`.
    error DisputeManagerInvalidKind(DisputeKind kind);

    /// @notice Dispute `disputeId` is of `kind`, which this action does not apply to.
    error DisputeManagerWrongKind(uint256 disputeId, DisputeKind kind);

    /// @notice Dispute `disputeId` is in state `current`; the action needs one of the states set in the bitmap
    /// `expectedStates` (bit i set = state i allowed).
    error DisputeManagerUnexpectedState(uint256 disputeId, DisputeState current, bytes32 expectedStates);

    /// @notice Dispute `disputeId` took answers and votes only until `deadline`.
    error DisputeManagerDeadlinePassed(uint256 disputeId, uint256 deadline);

    /// @notice Dispute `disputeId` can be resolved only after `deadline`.
    error DisputeManagerDeadlineNotPassed(uint256 disputeId, uint256 deadline);

    /// @notice The proof does not show the receipt of dispute `disputeId` in its epoch's receipts.
    error DisputeManagerInclusionNotProven(uint256 disputeId);

    /// @notice `voter` is a party to dispute `disputeId` (the agent, one of its signers, or the challenger).
    error DisputeManagerPartyCannotVote(uint256 disputeId, address voter);

    /// @notice `voter` already voted on dispute `disputeId`.
    error DisputeManagerAlreadyVoted(uint256 disputeId, address voter);

    /// @notice `voter` held no active validator stake at block `snapshotBlock` of dispute `disputeId`.
    error DisputeManagerNoVotingWeight(uint256 disputeId, address voter, uint256 snapshotBlock);

    /// @notice Proves that `receiptA` and `receiptB`, for the same agent and request but with different content, were
    /// both signed by signers bound to the agent, and slashes the agent at once; the caller gets the prover's reward.
    /// Works once per (agent, requestId).
    /// @dev Signatures are 65-byte ECDSA signatures with a low `s`.
    /// @return disputeId the id the proof is recorded under.
    function proveEquivocation(
        IReceiptRegistry.Receipt calldata receiptA,
        bytes calldata signatureA,
        IReceiptRegistry.Receipt calldata receiptB,
        bytes calldata signatureB
    ) external returns (uint256 disputeId);

    /// @notice Challenges the agent to prove that `receipt` is in the receipts it committed for the receipt's epoch.
    /// The epoch must be committed or skipped and its challenge window open; pulls `inclusionBond` from the caller.
    /// @return disputeId the new dispute's id.
    function challengeInclusion(IReceiptRegistry.Receipt calldata receipt, bytes calldata signature)
        external
        returns (uint256 disputeId);

    /// @notice Answers inclusion challenge `disputeId` with the Merkle `proof` of its receipt, before the response
    /// deadline. Anyone may send it. Clears the agent, which receives the challenger's bond.
    function proveInclusion(uint256 disputeId, bytes32[] calldata proof) external;

    /// @notice Challenges `receipt` of a committed epoch for a fault of `kind` (Output, Attribution or Totals) while
    /// the epoch's challenge window is open; pulls `challengeBond` from the caller.
    /// @param evidenceHash hash of the off-chain evidence validators should look at (emitted, not stored).
    /// @return disputeId the new dispute's id.
    function challenge(
        IReceiptRegistry.Receipt calldata receipt,
        bytes calldata signature,
        DisputeKind kind,
        bytes32 evidenceHash
    ) external returns (uint256 disputeId);

    /// @notice Votes on challenge `disputeId` to uphold it or not, with the caller's active validator stake at the
    /// dispute's snapshot block. Once per validator, before the deadline; parties to the dispute cannot vote.
    function vote(uint256 disputeId, bool uphold) external;

    /// @notice Decides open dispute `disputeId` once its deadline has passed; anyone may call it. An inclusion
    /// challenge that was not answered is upheld; a voted challenge is upheld on quorum and majority, else rejected.
    /// @return state the final state.
    function resolve(uint256 disputeId) external returns (DisputeState state);

    /// @notice Sets all parameters at once. Owner only. Each must lie within its bounds, and the staking contract's
    /// unbonding period must cover {minUnbondingPeriod} with the new windows. Applies to disputes opened later, except
    /// slash and reward shares and the quorum, which apply to every later resolution.
    function setParameters(Parameters calldata parameters) external;

    /// @notice The staking contract this contract slashes in.
    function staking() external view returns (IAgentStaking);

    /// @notice The receipt registry whose receipts and epochs are disputed.
    function receiptRegistry() external view returns (IReceiptRegistry);

    /// @notice The bond token (OPEN).
    function token() external view returns (IERC20);

    /// @notice The current parameters.
    function parameters() external view returns (Parameters memory);

    /// @notice The bounds [`min`, `max`] of `parameter`.
    function parameterBounds(Parameter parameter) external pure returns (uint256 min, uint256 max);

    /// @notice How long after an epoch's commit disputes on it may be opened, in seconds.
    function challengeWindow() external view returns (uint256);

    /// @notice Dispute `disputeId` (all zero when there is none).
    function dispute(uint256 disputeId) external view returns (Dispute memory);

    /// @notice The number of disputes so far; ids run from 1 to it.
    function disputeCount() external view returns (uint256);

    /// @notice The dispute of `kind` that `receipt` falls under (see the keys above), or zero.
    function disputeIdOf(DisputeKind kind, IReceiptRegistry.Receipt calldata receipt)
        external
        view
        returns (uint256 disputeId);

    /// @notice The number of open disputes on `agent`'s `epoch`.
    function openDisputeCount(address agent, uint64 epoch) external view returns (uint256);

    /// @notice Whether `voter` voted on dispute `disputeId`.
    function hasVoted(uint256 disputeId, address voter) external view returns (bool);
}
