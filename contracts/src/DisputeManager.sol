// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IAgentStaking} from "./interfaces/IAgentStaking.sol";
import {IDisputeManager} from "./interfaces/IDisputeManager.sol";
import {IReceiptRegistry} from "./interfaces/IReceiptRegistry.sol";
import {ISlashingAuthority} from "./interfaces/ISlashingAuthority.sol";

/// @title Disputes over agents' receipts, and the slashing they lead to
/// @notice See {IDisputeManager}.
/// @dev Owns every duration of the protocol's dispute game (challenge window, response window, voting period), so
/// {minUnbondingPeriod} and the check against the staking contract's unbonding period live in one place; the receipt
/// registry reads the challenge window at each commit and fixes the epoch's deadline with it.
///
/// Holds exactly the bonds of open disputes: a bond is pulled when a dispute opens and paid out, to the challenger
/// or to the agent, when it ends. Slashed stake never passes through here: {IAgentStaking-slash} pays the prover,
/// challenger and payer directly and sends the rest to the treasury. Every external call comes after the state
/// change it depends on (checks, effects, interactions); the token, the staking contract and the registry are the
/// protocol's own contracts.
///
/// Known limits, inherent to stake-weighted votes: validator stake the agent holds under unlinked addresses votes
/// like any other, and validator stake held by the agent's signer keys counts in the quorum base although it cannot
/// vote. An equivocation proof sent to a public mempool can be copied by a front-runner, who then gets the reward.
contract DisputeManager is IDisputeManager, Ownable2Step {
    using SafeERC20 for IERC20;

    uint256 private constant _BPS = 10_000;

    uint256 private constant _MIN_WINDOW = 1 hours;
    uint256 private constant _MAX_CHALLENGE_WINDOW = 30 days;
    uint256 private constant _MAX_RESPONSE_WINDOW = 7 days;
    uint256 private constant _MAX_VOTING_PERIOD = 14 days;
    uint256 private constant _MIN_QUORUM_BPS = 1000;
    uint256 private constant _MIN_SLASH_BPS = 100;
    uint256 private constant _MAX_REWARD_BPS = 5000;
    uint256 private constant _MIN_CHALLENGE_BOND = 1 ether;
    uint256 private constant _MAX_BOND = 1_000_000 ether;

    /// @dev State bitmap for {_validateState}: bit i set allows `DisputeState(i)`.
    bytes32 private constant _OPEN_BITMAP = bytes32(uint256(1) << uint8(DisputeState.Open));

    IAgentStaking private immutable _staking;
    IReceiptRegistry private immutable _receipts;
    IERC20 private immutable _token;

    Parameters private _parameters;
    uint256 private _disputeCount;

    mapping(uint256 disputeId => Dispute) private _disputes;
    mapping(bytes32 disputeKey => uint256 disputeId) private _disputeOfKey;
    mapping(address agent => mapping(uint64 epoch => uint256 count)) private _openDisputes;
    mapping(uint256 disputeId => mapping(address voter => bool voted)) private _hasVoted;

    /// @param staking_ the staking contract; this contract must then be set as its dispute manager.
    /// @param receipts_ the receipt registry; it must use `staking_`, and this contract must then be set as its
    /// dispute manager.
    /// @param initialOwner may set the parameters (two-step ownership transfer).
    /// @param parameters_ the initial parameters; `staking_`'s unbonding period must already cover their windows.
    constructor(IAgentStaking staking_, IReceiptRegistry receipts_, address initialOwner, Parameters memory parameters_)
        Ownable(initialOwner)
    {
        if (address(staking_) == address(0) || address(receipts_) == address(0)) revert DisputeManagerZeroAddress();
        address registryStaking = address(receipts_.staking());
        if (registryStaking != address(staking_)) {
            revert DisputeManagerStakingMismatch(address(staking_), registryStaking);
        }
        _staking = staking_;
        _receipts = receipts_;
        _token = staking_.token();
        _setParameters(parameters_);
    }

    // ------------------------------------------------------------------------------------------------------------
    // Objective faults
    // ------------------------------------------------------------------------------------------------------------

    /// @inheritdoc IDisputeManager
    function proveEquivocation(
        IReceiptRegistry.Receipt calldata receiptA,
        bytes calldata signatureA,
        IReceiptRegistry.Receipt calldata receiptB,
        bytes calldata signatureB
    ) external returns (uint256 disputeId) {
        (bytes32 hashA, bytes32 hashB) = _equivocationHashes(receiptA, receiptB);
        bytes32 key = _disputeKey(DisputeKind.Equivocation, receiptA.agent, receiptA.requestId, 0, bytes32(0));
        _checkNotDisputed(key);
        _checkSignature(receiptA, signatureA);
        _checkSignature(receiptB, signatureB);
        uint256 amount = _slashAmount(receiptA.agent, _parameters.equivocationSlashBps);

        (disputeId,) = _record(key, DisputeKind.Equivocation, receiptA, hashA);
        emit EquivocationProven(disputeId, receiptA.agent, receiptA.requestId, msg.sender, hashA, hashB, amount);

        uint256 reward = amount * _parameters.proverRewardBps / _BPS;
        _slash(receiptA.agent, amount, _payouts(msg.sender, reward, address(0), 0));
    }

    /// @inheritdoc IDisputeManager
    function challengeInclusion(IReceiptRegistry.Receipt calldata receipt, bytes calldata signature)
        external
        returns (uint256 disputeId)
    {
        bytes32 receiptHash = _receipts.receiptStructHash(receipt);
        _checkDisputableEpoch(receipt.agent, receipt.epoch, true);
        bytes32 key = _disputeKey(DisputeKind.Withholding, receipt.agent, bytes32(0), 0, receiptHash);
        _checkNotDisputed(key);
        _checkSignature(receipt, signature);
        Parameters storage params = _parameters;
        uint96 bond = params.inclusionBond;

        Dispute storage d;
        (disputeId, d) = _record(key, DisputeKind.Withholding, receipt, receiptHash);
        d.deadline = SafeCast.toUint48(block.timestamp + params.responseWindow);
        d.bond = bond;
        _emitOpened(disputeId, bytes32(0));

        if (bond != 0) _token.safeTransferFrom(msg.sender, address(this), bond);
    }

    /// @inheritdoc IDisputeManager
    function proveInclusion(uint256 disputeId, bytes32[] calldata proof) external {
        Dispute storage d = _validateState(disputeId, _OPEN_BITMAP);
        if (d.kind != DisputeKind.Withholding) revert DisputeManagerWrongKind(disputeId, d.kind);
        uint256 deadline = d.deadline;
        if (block.timestamp > deadline) revert DisputeManagerDeadlinePassed(disputeId, deadline);
        address agent = d.agent;
        if (!_receipts.verifyInclusion(agent, d.epoch, d.seq, d.receiptHash, proof)) {
            revert DisputeManagerInclusionNotProven(disputeId);
        }

        _close(d, disputeId, DisputeState.Rejected, 0);

        _payBond(agent, d.bond);
    }

    // ------------------------------------------------------------------------------------------------------------
    // Voted challenges
    // ------------------------------------------------------------------------------------------------------------

    /// @inheritdoc IDisputeManager
    function challenge(
        IReceiptRegistry.Receipt calldata receipt,
        bytes calldata signature,
        DisputeKind kind,
        bytes32 evidenceHash
    ) external returns (uint256 disputeId) {
        if (!_isVoted(kind)) revert DisputeManagerInvalidKind(kind);
        bytes32 receiptHash = _receipts.receiptStructHash(receipt);
        _checkDisputableEpoch(receipt.agent, receipt.epoch, false);
        bytes32 key = _disputeKey(kind, receipt.agent, bytes32(0), receipt.epoch, receiptHash);
        _checkNotDisputed(key);
        _checkSignature(receipt, signature);
        Parameters storage params = _parameters;
        uint96 bond = params.challengeBond;

        Dispute storage d;
        (disputeId, d) = _record(key, kind, receipt, receiptHash);
        d.deadline = SafeCast.toUint48(block.timestamp + params.votingPeriod);
        // Votes count stake as of the end of the previous block: nothing staked from now on weighs.
        d.snapshotBlock = SafeCast.toUint48(block.number - 1);
        // The agent is never refunded out of its own slash.
        if (receipt.payer != receipt.agent) {
            d.payer = receipt.payer;
            d.refund = SafeCast.toUint96(Math.min(receipt.price, type(uint96).max));
        }
        d.bond = bond;
        _emitOpened(disputeId, evidenceHash);

        _token.safeTransferFrom(msg.sender, address(this), bond);
    }

    /// @inheritdoc IDisputeManager
    function vote(uint256 disputeId, bool uphold) external {
        Dispute storage d = _validateState(disputeId, _OPEN_BITMAP);
        if (!_isVoted(d.kind)) revert DisputeManagerWrongKind(disputeId, d.kind);
        uint256 deadline = d.deadline;
        if (block.timestamp > deadline) revert DisputeManagerDeadlinePassed(disputeId, deadline);
        address agent = d.agent;
        if (msg.sender == agent || msg.sender == d.challenger || _staking.operatorOfSigner(msg.sender) == agent) {
            revert DisputeManagerPartyCannotVote(disputeId, msg.sender);
        }
        if (_hasVoted[disputeId][msg.sender]) revert DisputeManagerAlreadyVoted(disputeId, msg.sender);
        uint256 snapshotBlock = d.snapshotBlock;
        uint256 weight = _staking.activeStakeAt(msg.sender, IAgentStaking.Role.Validator, snapshotBlock);
        if (weight == 0) revert DisputeManagerNoVotingWeight(disputeId, msg.sender, snapshotBlock);

        _hasVoted[disputeId][msg.sender] = true;
        if (uphold) {
            d.upholdWeight = SafeCast.toUint128(d.upholdWeight + weight);
        } else {
            d.rejectWeight = SafeCast.toUint128(d.rejectWeight + weight);
        }
        emit Voted(disputeId, msg.sender, uphold, weight);
    }

    /// @inheritdoc IDisputeManager
    function resolve(uint256 disputeId) external returns (DisputeState state) {
        Dispute storage d = _validateState(disputeId, _OPEN_BITMAP);
        uint256 deadline = d.deadline;
        if (block.timestamp <= deadline) revert DisputeManagerDeadlineNotPassed(disputeId, deadline);
        address agent = d.agent;
        uint256 bond = d.bond;
        bool withheld = d.kind == DisputeKind.Withholding;

        if (!withheld && !_isUpheld(d)) {
            _close(d, disputeId, DisputeState.Rejected, 0);
            _payBond(agent, bond);
            return DisputeState.Rejected;
        }

        Parameters storage params = _parameters;
        address challenger = d.challenger;
        IAgentStaking.SlashPayout[] memory payouts;
        uint256 amount;
        if (withheld) {
            amount = _slashAmount(agent, params.withholdingSlashBps);
            payouts = _payouts(challenger, amount * params.proverRewardBps / _BPS, address(0), 0);
        } else {
            amount = _slashAmount(agent, params.outputSlashBps);
            payouts = _payouts(challenger, amount * params.challengerRewardBps / _BPS, d.payer, d.refund);
        }
        _close(d, disputeId, DisputeState.Upheld, amount);

        _slash(agent, amount, payouts);
        _payBond(challenger, bond);
        return DisputeState.Upheld;
    }

    // ------------------------------------------------------------------------------------------------------------
    // Administration
    // ------------------------------------------------------------------------------------------------------------

    /// @inheritdoc IDisputeManager
    function setParameters(Parameters calldata parameters_) external onlyOwner {
        _setParameters(parameters_);
    }

    // ------------------------------------------------------------------------------------------------------------
    // Views
    // ------------------------------------------------------------------------------------------------------------

    /// @inheritdoc ISlashingAuthority
    function minUnbondingPeriod() external view returns (uint256) {
        Parameters storage params = _parameters;
        return _minUnbondingPeriod(params.challengeWindow, params.responseWindow, params.votingPeriod);
    }

    /// @inheritdoc IDisputeManager
    function staking() external view returns (IAgentStaking) {
        return _staking;
    }

    /// @inheritdoc IDisputeManager
    function receiptRegistry() external view returns (IReceiptRegistry) {
        return _receipts;
    }

    /// @inheritdoc IDisputeManager
    function token() external view returns (IERC20) {
        return _token;
    }

    /// @inheritdoc IDisputeManager
    function parameters() external view returns (Parameters memory) {
        return _parameters;
    }

    /// @inheritdoc IDisputeManager
    function parameterBounds(Parameter parameter) public pure returns (uint256 min, uint256 max) {
        if (parameter == Parameter.ChallengeWindow) return (_MIN_WINDOW, _MAX_CHALLENGE_WINDOW);
        if (parameter == Parameter.ResponseWindow) return (_MIN_WINDOW, _MAX_RESPONSE_WINDOW);
        if (parameter == Parameter.VotingPeriod) return (_MIN_WINDOW, _MAX_VOTING_PERIOD);
        if (parameter == Parameter.QuorumBps) return (_MIN_QUORUM_BPS, _BPS);
        if (parameter == Parameter.ProverRewardBps || parameter == Parameter.ChallengerRewardBps) {
            return (0, _MAX_REWARD_BPS);
        }
        if (parameter == Parameter.ChallengeBond) return (_MIN_CHALLENGE_BOND, _MAX_BOND);
        if (parameter == Parameter.InclusionBond) return (0, _MAX_BOND);
        // EquivocationSlashBps, WithholdingSlashBps, OutputSlashBps
        return (_MIN_SLASH_BPS, _BPS);
    }

    /// @inheritdoc IDisputeManager
    function challengeWindow() external view returns (uint256) {
        return _parameters.challengeWindow;
    }

    /// @inheritdoc IDisputeManager
    function dispute(uint256 disputeId) external view returns (Dispute memory) {
        return _disputes[disputeId];
    }

    /// @inheritdoc IDisputeManager
    function disputeCount() external view returns (uint256) {
        return _disputeCount;
    }

    /// @inheritdoc IDisputeManager
    function disputeIdOf(DisputeKind kind, IReceiptRegistry.Receipt calldata receipt)
        external
        view
        returns (uint256 disputeId)
    {
        bytes32 receiptHash = _receipts.receiptStructHash(receipt);
        return _disputeOfKey[_disputeKey(kind, receipt.agent, receipt.requestId, receipt.epoch, receiptHash)];
    }

    /// @inheritdoc IDisputeManager
    function openDisputeCount(address agent, uint64 epoch) external view returns (uint256) {
        return _openDisputes[agent][epoch];
    }

    /// @inheritdoc IDisputeManager
    function hasVoted(uint256 disputeId, address voter) external view returns (bool) {
        return _hasVoted[disputeId][voter];
    }

    // ------------------------------------------------------------------------------------------------------------
    // Internal
    // ------------------------------------------------------------------------------------------------------------

    /// @dev Records a dispute of `kind` about `receipt` (struct hash `receiptHash`) by the caller under a new id and
    /// marks `key` as disputed by it. Equivocation is upheld at once; other kinds open and count against the epoch.
    function _record(bytes32 key, DisputeKind kind, IReceiptRegistry.Receipt calldata receipt, bytes32 receiptHash)
        private
        returns (uint256 disputeId, Dispute storage d)
    {
        disputeId = ++_disputeCount;
        _disputeOfKey[key] = disputeId;
        d = _disputes[disputeId];
        d.agent = receipt.agent;
        d.kind = kind;
        d.epoch = receipt.epoch;
        d.challenger = msg.sender;
        d.receiptHash = receiptHash;
        d.seq = receipt.seq;
        if (kind == DisputeKind.Equivocation) {
            d.state = DisputeState.Upheld;
        } else {
            d.state = DisputeState.Open;
            ++_openDisputes[receipt.agent][receipt.epoch];
        }
    }

    /// @dev Emits {DisputeOpened} for the dispute just recorded under `disputeId`.
    function _emitOpened(uint256 disputeId, bytes32 evidenceHash) private {
        Dispute storage d = _disputes[disputeId];
        emit DisputeOpened(
            disputeId, d.kind, d.agent, d.challenger, d.epoch, d.receiptHash, evidenceHash, d.bond, d.deadline
        );
    }

    /// @dev Ends open dispute `d` in the final `state`, having slashed `slashed`.
    function _close(Dispute storage d, uint256 disputeId, DisputeState state, uint256 slashed) private {
        d.state = state;
        // The dispute was open, so it is among the epoch's open disputes: the count is at least one.
        --_openDisputes[d.agent][d.epoch];
        emit DisputeResolved(disputeId, state, slashed);
    }

    /// @dev Whether voted challenge `d` is upheld: the votes cast reach the quorum of the stake that could vote and
    /// uphold outweighs reject. Stake of the agent and of the challenger, which cannot vote, is left out of the base.
    function _isUpheld(Dispute storage d) private view returns (bool) {
        uint256 upholdWeight = d.upholdWeight;
        uint256 rejectWeight = d.rejectWeight;
        if (upholdWeight <= rejectWeight) return false;
        uint256 snapshotBlock = d.snapshotBlock;
        address agent = d.agent;
        address challenger = d.challenger;
        IAgentStaking.Role role = IAgentStaking.Role.Validator;
        // The total includes the stakes of both parties, so the subtractions cannot underflow.
        uint256 eligible =
            _staking.totalActiveStakeAt(role, snapshotBlock) - _staking.activeStakeAt(agent, role, snapshotBlock);
        if (challenger != agent) eligible -= _staking.activeStakeAt(challenger, role, snapshotBlock);
        return (upholdWeight + rejectWeight) * _BPS >= eligible * _parameters.quorumBps;
    }

    /// @dev `bps` of what a slash of `agent`'s Agent stake can reach now; never more than that stake. As the staking
    /// contract slashes exactly its slashable stake (active, then entries not yet unlocked), a slash of this amount
    /// in the same transaction takes all of it, so events can report it before the call.
    function _slashAmount(address agent, uint256 bps) private view returns (uint256) {
        return _staking.slashableStake(agent, IAgentStaking.Role.Agent) * bps / _BPS;
    }

    /// @dev Slashes `amount` of `agent`'s Agent stake, paying `payouts` first; skips the call when there is nothing.
    function _slash(address agent, uint256 amount, IAgentStaking.SlashPayout[] memory payouts) private {
        if (amount != 0) _staking.slash(agent, IAgentStaking.Role.Agent, amount, payouts);
    }

    /// @dev The payouts of a slash: a reward to `rewarded`, then (when `payer` is set) a refund to `payer`. The
    /// staking contract caps each by what is left of the slash.
    function _payouts(address rewarded, uint256 reward, address payer, uint256 refund)
        private
        pure
        returns (IAgentStaking.SlashPayout[] memory payouts)
    {
        payouts = new IAgentStaking.SlashPayout[](payer == address(0) ? 1 : 2);
        payouts[0] = IAgentStaking.SlashPayout({recipient: rewarded, amount: reward});
        if (payer != address(0)) payouts[1] = IAgentStaking.SlashPayout({recipient: payer, amount: refund});
    }

    /// @dev Pays a held bond out.
    function _payBond(address to, uint256 bond) private {
        if (bond != 0) _token.safeTransfer(to, bond);
    }

    /// @dev The struct hashes of two receipts that equivocate: same agent and request, different content.
    function _equivocationHashes(IReceiptRegistry.Receipt calldata receiptA, IReceiptRegistry.Receipt calldata receiptB)
        private
        view
        returns (bytes32 hashA, bytes32 hashB)
    {
        if (receiptB.agent != receiptA.agent || receiptB.requestId != receiptA.requestId) {
            revert DisputeManagerNotEquivocation(receiptA.agent, receiptA.requestId, receiptB.agent, receiptB.requestId);
        }
        hashA = _receipts.receiptStructHash(receiptA);
        hashB = _receipts.receiptStructHash(receiptB);
        if (hashA == hashB) revert DisputeManagerIdenticalReceipts(hashA);
    }

    /// @dev Reverts with {DisputeManagerInvalidSigner} unless `signature` over `receipt` recovers to a signer bound to
    /// the receipt's agent. ECDSA rejects malformed and high-`s` signatures.
    function _checkSignature(IReceiptRegistry.Receipt calldata receipt, bytes calldata signature) private view {
        address signer = ECDSA.recoverCalldata(_receipts.receiptDigest(receipt), signature);
        address operator = _staking.operatorOfSigner(signer);
        if (operator == address(0) || operator != receipt.agent) {
            revert DisputeManagerInvalidSigner(signer, receipt.agent);
        }
    }

    /// @dev Reverts unless disputes on `agent`'s `epoch` may be opened now: the epoch is committed (or skipped, when
    /// `allowSkipped`) and its challenge deadline has not passed.
    function _checkDisputableEpoch(address agent, uint64 epoch, bool allowSkipped) private view {
        (IReceiptRegistry.EpochStatus status, uint256 deadline) = _receipts.epochStatus(agent, epoch);
        if (
            status == IReceiptRegistry.EpochStatus.Pending
                || (status == IReceiptRegistry.EpochStatus.Skipped && !allowSkipped)
        ) {
            revert DisputeManagerEpochNotDisputable(agent, epoch, status);
        }
        if (block.timestamp > deadline) revert DisputeManagerChallengeWindowClosed(agent, epoch, deadline);
    }

    /// @dev Reverts with {DisputeManagerAlreadyDisputed} if the fault under `key` was disputed before.
    function _checkNotDisputed(bytes32 key) private view {
        uint256 existing = _disputeOfKey[key];
        if (existing != 0) revert DisputeManagerAlreadyDisputed(existing);
    }

    /// @dev Returns dispute `disputeId`, reverting with {DisputeManagerUnexpectedState} unless its state is one of
    /// those set in `allowedStates` (bit i set = `DisputeState(i)` allowed), as Governor's `_validateStateBitmap`.
    function _validateState(uint256 disputeId, bytes32 allowedStates) private view returns (Dispute storage d) {
        d = _disputes[disputeId];
        DisputeState current = d.state;
        if (bytes32(uint256(1) << uint8(current)) & allowedStates == bytes32(0)) {
            revert DisputeManagerUnexpectedState(disputeId, current, allowedStates);
        }
    }

    /// @dev Validates every field of `parameters_` and the unbonding period they need, then stores them.
    function _setParameters(Parameters memory parameters_) private {
        _checkBounds(Parameter.ChallengeWindow, parameters_.challengeWindow);
        _checkBounds(Parameter.ResponseWindow, parameters_.responseWindow);
        _checkBounds(Parameter.VotingPeriod, parameters_.votingPeriod);
        _checkBounds(Parameter.QuorumBps, parameters_.quorumBps);
        _checkBounds(Parameter.EquivocationSlashBps, parameters_.equivocationSlashBps);
        _checkBounds(Parameter.WithholdingSlashBps, parameters_.withholdingSlashBps);
        _checkBounds(Parameter.OutputSlashBps, parameters_.outputSlashBps);
        _checkBounds(Parameter.ProverRewardBps, parameters_.proverRewardBps);
        _checkBounds(Parameter.ChallengerRewardBps, parameters_.challengerRewardBps);
        _checkBounds(Parameter.ChallengeBond, parameters_.challengeBond);
        _checkBounds(Parameter.InclusionBond, parameters_.inclusionBond);
        uint256 required =
            _minUnbondingPeriod(parameters_.challengeWindow, parameters_.responseWindow, parameters_.votingPeriod);
        uint256 unbondingPeriod = _staking.unbondingPeriod();
        if (unbondingPeriod < required) revert DisputeManagerUnbondingPeriodTooShort(required, unbondingPeriod);

        _parameters = parameters_;
        emit ParametersSet(parameters_);
    }

    /// @dev Reverts with {DisputeManagerInvalidParameter} if `value` lies outside the bounds of `parameter`.
    function _checkBounds(Parameter parameter, uint256 value) private pure {
        (uint256 min, uint256 max) = parameterBounds(parameter);
        if (value < min || value > max) revert DisputeManagerInvalidParameter(parameter, value, min, max);
    }

    /// @dev A dispute opened at the very end of an epoch's challenge window must be decided before stake that was
    /// unbonding at the commit unlocks; the sum also covers an inclusion challenge followed by a vote.
    function _minUnbondingPeriod(uint256 challengeWindow_, uint256 responseWindow, uint256 votingPeriod)
        private
        pure
        returns (uint256)
    {
        return challengeWindow_ + responseWindow + votingPeriod;
    }

    /// @dev Whether `kind` is decided by a vote of validators.
    function _isVoted(DisputeKind kind) private pure returns (bool) {
        return kind == DisputeKind.Output || kind == DisputeKind.Attribution || kind == DisputeKind.Totals;
    }

    /// @dev The key under which a fault is disputed at most once: (agent, requestId) for equivocation, (agent,
    /// epoch) for Totals, the receipt for the other kinds.
    function _disputeKey(DisputeKind kind, address agent, bytes32 requestId, uint64 epoch, bytes32 receiptHash)
        private
        pure
        returns (bytes32)
    {
        if (kind == DisputeKind.Equivocation) return keccak256(abi.encode(kind, agent, requestId));
        if (kind == DisputeKind.Totals) return keccak256(abi.encode(kind, agent, epoch));
        return keccak256(abi.encode(kind, receiptHash));
    }
}
