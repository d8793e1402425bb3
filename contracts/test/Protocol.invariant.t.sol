// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {AgentStaking} from "../src/AgentStaking.sol";
import {DisputeManager} from "../src/DisputeManager.sol";
import {OpenToken} from "../src/OpenToken.sol";
import {ReceiptRegistry} from "../src/ReceiptRegistry.sol";
import {IAgentStaking} from "../src/interfaces/IAgentStaking.sol";
import {IDisputeManager} from "../src/interfaces/IDisputeManager.sol";
import {IReceiptRegistry} from "../src/interfaces/IReceiptRegistry.sol";
import {ProtocolFixture, TestMerkle} from "./utils/ProtocolFixture.sol";
import {Test} from "./utils/Test.sol";

/// @notice Drives token, staking, receipt registry and dispute manager with three agents, three validators, three
/// challengers (who are also the payers) and three contributors, and keeps ghost books of what should hold.
contract ProtocolHandler is Test {
    using SafeERC20 for IERC20;

    struct Agent {
        address operator;
        uint256 signerKey;
    }

    /// @dev Which open disputes an action looks for.
    enum Sort {
        Any,
        Withholding,
        Voted
    }

    /// @dev A committed epoch: receipts 0..count-1 with salt zero, and reward `amounts[i]` for `contributors[i]`.
    struct EpochRecord {
        address agent;
        uint64 epoch;
        uint64 count;
        uint256[3] amounts;
    }

    uint256 internal constant ACTORS = 3;
    uint256 internal constant PRICE = 1 ether;
    uint256 internal constant ACTOR_FUNDS = 1_000_000 ether;
    IAgentStaking.Role internal constant AGENT = IAgentStaking.Role.Agent;
    IAgentStaking.Role internal constant VALIDATOR = IAgentStaking.Role.Validator;

    OpenToken public immutable token;
    AgentStaking public immutable staking;
    ReceiptRegistry public immutable receipts;
    DisputeManager public immutable disputes;

    Agent[ACTORS] internal _agents;
    address[ACTORS] internal _validators;
    address[ACTORS] internal _challengers;
    address[ACTORS] internal _contributors;
    address[] internal _holders;
    address[] internal _stakers;

    EpochRecord[] internal _epochs;
    mapping(address agent => mapping(uint64 epoch => uint256 indexPlusOne)) internal _epochIndex;

    // Ghost books.
    mapping(address agent => mapping(uint64 epoch => mapping(address contributor => uint256 payments))) public payments;
    uint256 public doublePayments;
    uint256 public slashesBeyondStake;
    /// @notice Broken expectations seen inside actions. Counted rather than asserted: a failing assertion in a
    /// handler would only revert the call, which the runner tolerates.
    uint256 public violations;
    mapping(address operator => mapping(IAgentStaking.Role role => uint256 amount)) public deposited;
    mapping(address operator => mapping(IAgentStaking.Role role => uint256 amount)) public withdrawn;
    mapping(address operator => mapping(IAgentStaking.Role role => uint256 amount)) public slashed;
    uint256[] internal _finalDisputes;
    mapping(uint256 disputeId => bytes32 record) public finalRecord;
    /// @notice How many calls of each action went through, to see that the run reaches every path.
    mapping(string action => uint256 count) public successes;

    constructor(OpenToken token_, AgentStaking staking_, ReceiptRegistry receipts_, DisputeManager disputes_) {
        token = token_;
        staking = staking_;
        receipts = receipts_;
        disputes = disputes_;
    }

    /// @notice Creates, funds and stakes the actors out of this contract's OPEN.
    function setUpActors() external {
        string[ACTORS] memory digits = ["0", "1", "2"];
        for (uint256 i = 0; i < ACTORS; ++i) {
            string memory n = digits[i];
            (address operator,) = makeAccount(string.concat("agent", n));
            (address signer, uint256 signerKey) = makeAccount(string.concat("agent-signer", n));
            _agents[i] = Agent(operator, signerKey);
            _validators[i] = _newActor(string.concat("validator", n));
            _challengers[i] = _newActor(string.concat("challenger", n));
            (_contributors[i],) = makeAccount(string.concat("contributor", n));
            _holders.push(_contributors[i]);
            _holders.push(signer);
            _fundAndApprove(operator);
            vm.startPrank(operator);
            staking.registerAgent(signer, keccak256("model"), PRICE, "https://agent.example");
            staking.stake(AGENT, 10_000 ether);
            vm.stopPrank();
            deposited[operator][AGENT] += 10_000 ether;
            _stakers.push(operator);

            uint256 validatorStake = (ACTORS - i) * 2000 ether;
            vm.prank(_validators[i]);
            staking.stake(VALIDATOR, validatorStake);
            deposited[_validators[i]][VALIDATOR] += validatorStake;
            _stakers.push(_validators[i]);
        }
        vm.roll(vm.getBlockNumber() + 1);
        vm.warp(vm.getBlockTimestamp() + 12);
    }

    // ------------------------------------------------------------------------------------------------------------
    // Actions
    // ------------------------------------------------------------------------------------------------------------

    function commitEpoch(uint256 agentSeed, uint256 countSeed, uint256 a0, uint256 a1, uint256 a2, bool skip) external {
        Agent memory agent = _agents[agentSeed % ACTORS];
        if (!staking.isActiveAgent(agent.operator)) return;
        EpochRecord memory rec;
        rec.agent = agent.operator;
        rec.epoch = receipts.latestEpoch(agent.operator) + (skip ? 2 : 1);
        rec.count = uint64(bound(countSeed, 1, 4));
        rec.amounts = [bound(a0, 0, 3 ether), bound(a1, 0, 3 ether), bound(a2, 0, 3 ether)];
        uint256 fees = rec.count * PRICE;
        uint256 required = fees * receipts.attributionBps() / 10_000;
        uint256 total = rec.amounts[0] + rec.amounts[1] + rec.amounts[2];
        if (total < required) {
            rec.amounts[0] += required - total;
            total = required;
        }
        bytes32 receiptsRoot = TestMerkle.root(_receiptLeaves(rec));
        bytes32 rewardsRoot = TestMerkle.root(_rewardLeaves(rec));

        vm.prank(agent.operator);
        receipts.commitEpoch(rec.epoch, receiptsRoot, rec.count, fees, rewardsRoot, total);
        _epochs.push(rec);
        _epochIndex[rec.agent][rec.epoch] = _epochs.length;
        ++successes["commitEpoch"];
    }

    function claimReward(uint256 epochSeed, uint256 contributorSeed, bool wait) external {
        if (_epochs.length == 0) return;
        EpochRecord memory rec = _epochs[epochSeed % _epochs.length];
        if (wait) _waitPast(receipts.epochCommitment(rec.agent, rec.epoch).challengeDeadline);
        uint256 c = contributorSeed % ACTORS;
        address contributor = _contributors[c];
        bytes32[] memory proof = TestMerkle.proof(_rewardLeaves(rec), c);
        uint256 balance = token.balanceOf(contributor);
        try receipts.claimReward(rec.agent, rec.epoch, contributor, rec.amounts[c], proof) {
            if (token.balanceOf(contributor) != balance + rec.amounts[c]) ++violations;
            _recordPayment(rec, contributor);
            ++successes["claimReward"];
        } catch {}
    }

    function claimRewards(uint256 contributorSeed, uint256 startSeed, uint256 sizeSeed, bool wait) external {
        uint256 length = _epochs.length;
        if (length == 0) return;
        if (wait) _waitPast(receipts.epochCommitment(_epochs[0].agent, _epochs[0].epoch).challengeDeadline);
        uint256 c = contributorSeed % ACTORS;
        address contributor = _contributors[c];
        // Consecutive records, so no epoch is claimed twice in one batch.
        uint256 size = bound(sizeSeed, 1, length < 3 ? length : 3);
        IReceiptRegistry.RewardClaim[] memory claims = new IReceiptRegistry.RewardClaim[](size);
        EpochRecord[] memory recs = new EpochRecord[](size);
        for (uint256 i = 0; i < size; ++i) {
            recs[i] = _epochs[(startSeed + i) % length];
            claims[i] = IReceiptRegistry.RewardClaim(
                recs[i].agent, recs[i].epoch, recs[i].amounts[c], TestMerkle.proof(_rewardLeaves(recs[i]), c)
            );
        }
        uint256 balance = token.balanceOf(contributor);
        try receipts.claimRewards(contributor, claims) returns (uint256 total) {
            uint256 expected = 0;
            for (uint256 i = 0; i < size; ++i) {
                _recordPayment(recs[i], contributor);
                expected += recs[i].amounts[c];
            }
            if (total != expected || token.balanceOf(contributor) != balance + expected) ++violations;
            ++successes["claimRewards"];
        } catch {}
    }

    function proveEquivocation(uint256 epochSeed, uint256 seqSeed, uint256 proverSeed, bytes32 salt) external {
        if (_epochs.length == 0 || salt == bytes32(0)) return;
        EpochRecord memory rec = _recentEpoch(epochSeed);
        uint64 seq = uint64(bound(seqSeed, 0, rec.count));
        IReceiptRegistry.Receipt memory a = _receipt(rec.agent, rec.epoch, seq, bytes32(0));
        IReceiptRegistry.Receipt memory b = _receipt(rec.agent, rec.epoch, seq, salt);
        bytes memory sigA = _sign(rec.agent, a);
        bytes memory sigB = _sign(rec.agent, b);
        (uint256 slashable, uint256 stakingBalance) = _beforeSlash(rec.agent);
        vm.prank(_challengers[proverSeed % ACTORS]);
        try disputes.proveEquivocation(a, sigA, b, sigB) returns (uint256 disputeId) {
            _afterSlash(rec.agent, slashable, stakingBalance);
            _recordFinal(disputeId);
            ++successes["proveEquivocation"];
        } catch {}
    }

    function challengeInclusion(uint256 epochSeed, uint256 seqSeed, uint256 challengerSeed, bool previousEpoch)
        external
    {
        if (_epochs.length == 0) return;
        EpochRecord memory rec = _recentEpoch(epochSeed);
        // Seqs at and past `count` were signed but left out of the tree; the epoch below may have been skipped.
        uint64 epoch = previousEpoch ? rec.epoch - 1 : rec.epoch;
        IReceiptRegistry.Receipt memory r = _receipt(rec.agent, epoch, uint64(bound(seqSeed, 0, rec.count + 1)), 0);
        bytes memory sig = _sign(rec.agent, r);
        vm.prank(_challengers[challengerSeed % ACTORS]);
        try disputes.challengeInclusion(r, sig) {
            ++successes["challengeInclusion"];
        } catch {}
    }

    function proveInclusion(uint256 disputeSeed) external {
        uint256 disputeId = _pickOpenDispute(disputeSeed, Sort.Withholding);
        if (disputeId == 0) return;
        IDisputeManager.Dispute memory d = disputes.dispute(disputeId);
        if (d.kind != IDisputeManager.DisputeKind.Withholding) return;
        uint256 indexPlusOne = _epochIndex[d.agent][d.epoch];
        bytes32[] memory proof;
        if (indexPlusOne != 0 && d.seq < _epochs[indexPlusOne - 1].count) {
            proof = TestMerkle.proof(_receiptLeaves(_epochs[indexPlusOne - 1]), d.seq);
        }
        vm.prank(d.agent);
        try disputes.proveInclusion(disputeId, proof) {
            _recordFinal(disputeId);
            ++successes["proveInclusion"];
        } catch {}
    }

    function challenge(uint256 epochSeed, uint256 seqSeed, uint256 kindSeed, uint256 challengerSeed) external {
        if (_epochs.length == 0) return;
        EpochRecord memory rec = _recentEpoch(epochSeed);
        IReceiptRegistry.Receipt memory r = _receipt(rec.agent, rec.epoch, uint64(bound(seqSeed, 0, rec.count)), 0);
        bytes memory sig = _sign(rec.agent, r);
        IDisputeManager.DisputeKind kind = IDisputeManager.DisputeKind(2 + kindSeed % 3);
        // Validators challenge too, so that the challenger's stake is left out of some quorums.
        address challenger = challengerSeed % 2 == 0
            ? _challengers[(challengerSeed / 2) % ACTORS]
            : _validators[(challengerSeed / 2) % ACTORS];
        vm.prank(challenger);
        try disputes.challenge(r, sig, kind, keccak256("evidence")) {
            ++successes["challenge"];
        } catch {}
    }

    function vote(uint256 disputeSeed, uint256 voterSeed, bool uphold) external {
        uint256 disputeId = _pickOpenDispute(disputeSeed, Sort.Voted);
        if (disputeId == 0) return;
        // Agents try to vote too; they must be refused on their own cases.
        address voter =
            voterSeed % 4 == 3 ? _agents[(voterSeed / 4) % ACTORS].operator : _validators[(voterSeed / 4) % ACTORS];
        vm.prank(voter);
        try disputes.vote(disputeId, uphold) {
            if (voter == disputes.dispute(disputeId).agent) ++violations;
            ++successes["vote"];
        } catch {}
    }

    function resolve(uint256 disputeSeed, bool wait) external {
        uint256 disputeId = _pickOpenDispute(disputeSeed, Sort.Any);
        if (disputeId == 0) return;
        if (wait) _waitPast(disputes.dispute(disputeId).deadline);
        address agent = disputes.dispute(disputeId).agent;
        (uint256 slashable, uint256 stakingBalance) = _beforeSlash(agent);
        try disputes.resolve(disputeId) returns (IDisputeManager.DisputeState state) {
            _afterSlash(agent, slashable, stakingBalance);
            _recordFinal(disputeId);
            if (state == IDisputeManager.DisputeState.Upheld) ++successes["resolveUpheld"];
            else ++successes["resolveRejected"];
        } catch {}
    }

    function stake(uint256 actorSeed, uint256 amount) external {
        (address operator, IAgentStaking.Role role) = _staker(actorSeed);
        amount = bound(amount, 1000 ether, 5000 ether);
        vm.prank(operator);
        try staking.stake(role, amount) {
            deposited[operator][role] += amount;
            ++successes["stake"];
        } catch {}
    }

    function requestUnstake(uint256 actorSeed, uint256 amount) external {
        (address operator, IAgentStaking.Role role) = _staker(actorSeed);
        uint256 active = staking.activeStake(operator, role);
        if (active == 0) return;
        amount = bound(amount, 1, active);
        vm.prank(operator);
        try staking.requestUnstake(role, amount) {
            ++successes["requestUnstake"];
        } catch {}
    }

    function withdraw(uint256 actorSeed, bool wait) external {
        (address operator, IAgentStaking.Role role) = _staker(actorSeed);
        IAgentStaking.Unbonding[] memory entries = staking.unbondings(operator, role);
        if (wait && entries.length != 0) _waitPast(entries[0].unlockTime);
        vm.prank(operator);
        try staking.withdraw(role) returns (uint256 amount) {
            withdrawn[operator][role] += amount;
            ++successes["withdraw"];
        } catch {}
    }

    function warp(uint256 seconds_) external {
        seconds_ = bound(seconds_, 1, 1 days);
        vm.warp(vm.getBlockTimestamp() + seconds_);
        vm.roll(vm.getBlockNumber() + seconds_ / 12 + 1);
    }

    // ------------------------------------------------------------------------------------------------------------
    // Views for the invariants
    // ------------------------------------------------------------------------------------------------------------

    function holders() external view returns (address[] memory) {
        return _holders;
    }

    function stakers() external view returns (address[] memory) {
        return _stakers;
    }

    function finalDisputes() external view returns (uint256[] memory) {
        return _finalDisputes;
    }

    function epochCount() external view returns (uint256) {
        return _epochs.length;
    }

    function epochAt(uint256 index) external view returns (address agent, uint64 epoch) {
        return (_epochs[index].agent, _epochs[index].epoch);
    }

    function contributors() external view returns (address[ACTORS] memory) {
        return _contributors;
    }

    // ------------------------------------------------------------------------------------------------------------
    // Internal
    // ------------------------------------------------------------------------------------------------------------

    function _newActor(string memory name) internal returns (address account) {
        (account,) = makeAccount(name);
        _fundAndApprove(account);
    }

    function _fundAndApprove(address account) internal {
        IERC20(address(token)).safeTransfer(account, ACTOR_FUNDS);
        _holders.push(account);
        vm.startPrank(account);
        token.approve(address(staking), type(uint256).max);
        token.approve(address(receipts), type(uint256).max);
        token.approve(address(disputes), type(uint256).max);
        vm.stopPrank();
    }

    function _staker(uint256 seed) internal view returns (address operator, IAgentStaking.Role role) {
        uint256 i = (seed / 2) % ACTORS;
        return seed % 2 == 0 ? (_agents[i].operator, AGENT) : (_validators[i], VALIDATOR);
    }

    /// @dev One of the four latest epochs, which are the likeliest to be open to disputes.
    function _recentEpoch(uint256 seed) internal view returns (EpochRecord memory) {
        uint256 length = _epochs.length;
        uint256 window = length < 4 ? length : 4;
        return _epochs[length - 1 - seed % window];
    }

    /// @dev Moves time (and blocks) to just after `deadline`, if it is still ahead.
    function _waitPast(uint256 deadline) internal {
        uint256 nowTime = vm.getBlockTimestamp();
        if (deadline < nowTime) return;
        vm.warp(deadline + 1);
        vm.roll(vm.getBlockNumber() + (deadline + 1 - nowTime) / 12 + 1);
    }

    /// @dev One of the (up to four) latest open disputes of the wanted sort, by `seed`; zero when there is none.
    /// Looks at the sixteen latest disputes only, to keep actions cheap.
    function _pickOpenDispute(uint256 seed, Sort sort) internal view returns (uint256) {
        uint256[4] memory found;
        uint256 n = 0;
        uint256 count = disputes.disputeCount();
        for (uint256 id = count; id > 0 && id + 16 > count && n < 4; --id) {
            IDisputeManager.Dispute memory d = disputes.dispute(id);
            if (d.state != IDisputeManager.DisputeState.Open) continue;
            bool withholding = d.kind == IDisputeManager.DisputeKind.Withholding;
            if (sort == Sort.Any || (sort == Sort.Withholding) == withholding) found[n++] = id;
        }
        return n == 0 ? 0 : found[seed % n];
    }

    function _recordPayment(EpochRecord memory rec, address contributor) internal {
        if (++payments[rec.agent][rec.epoch][contributor] > 1) ++doublePayments;
    }

    function _beforeSlash(address agent) internal view returns (uint256 slashable, uint256 stakingBalance) {
        return (staking.slashableStake(agent, AGENT), token.balanceOf(address(staking)));
    }

    /// @dev Whatever left the staking contract during a dispute call was slashed from `agent`: it must not exceed
    /// what was slashable, and the agent's slashable stake must drop by exactly that much.
    function _afterSlash(address agent, uint256 slashableBefore, uint256 stakingBalanceBefore) internal {
        uint256 taken = stakingBalanceBefore - token.balanceOf(address(staking));
        if (taken > slashableBefore) {
            ++slashesBeyondStake;
            return;
        }
        if (staking.slashableStake(agent, AGENT) != slashableBefore - taken) ++violations;
        slashed[agent][AGENT] += taken;
    }

    function _recordFinal(uint256 disputeId) internal {
        IDisputeManager.Dispute memory d = disputes.dispute(disputeId);
        if (d.state != IDisputeManager.DisputeState.Upheld && d.state != IDisputeManager.DisputeState.Rejected) {
            ++violations;
        }
        if (finalRecord[disputeId] == bytes32(0)) _finalDisputes.push(disputeId);
        finalRecord[disputeId] = keccak256(abi.encode(d));
    }

    function _receipt(address agent, uint64 epoch, uint64 seq, bytes32 salt)
        internal
        view
        returns (IReceiptRegistry.Receipt memory)
    {
        return IReceiptRegistry.Receipt({
            agent: agent,
            requestId: keccak256(abi.encode("request", agent, epoch, seq)),
            requestHash: keccak256(abi.encode("request body", agent, epoch, seq)),
            outputHash: keccak256(abi.encode("output", agent, epoch, seq, salt)),
            modelId: keccak256("model"),
            engineHash: keccak256("engine"),
            attributionHash: keccak256(abi.encode("attribution", agent, epoch, seq)),
            payer: _challengers[seq % ACTORS],
            price: PRICE,
            epoch: epoch,
            seq: seq
        });
    }

    function _sign(address agent, IReceiptRegistry.Receipt memory r) internal view returns (bytes memory) {
        uint256 key;
        for (uint256 i = 0; i < ACTORS; ++i) {
            if (_agents[i].operator == agent) key = _agents[i].signerKey;
        }
        (uint8 v, bytes32 rr, bytes32 s) = vm.sign(key, receipts.receiptDigest(r));
        return abi.encodePacked(rr, s, v);
    }

    function _receiptLeaves(EpochRecord memory rec) internal view returns (bytes32[] memory leaves) {
        leaves = new bytes32[](rec.count);
        for (uint64 i = 0; i < rec.count; ++i) {
            leaves[i] = receipts.receiptLeaf(_receipt(rec.agent, rec.epoch, i, bytes32(0)));
        }
    }

    function _rewardLeaves(EpochRecord memory rec) internal view returns (bytes32[] memory leaves) {
        leaves = new bytes32[](ACTORS);
        for (uint256 i = 0; i < ACTORS; ++i) {
            leaves[i] = TestMerkle.rewardLeaf(_contributors[i], rec.amounts[i]);
        }
    }
}

contract ProtocolInvariantTest is ProtocolFixture {
    ProtocolHandler internal handler;

    function setUp() public {
        _deployProtocol();
        handler = new ProtocolHandler(token, staking, receipts, disputes);
        _fund(address(handler), 20_000_000 ether);
        handler.setUpActors();

        bytes4[] memory selectors = new bytes4[](13);
        selectors[0] = ProtocolHandler.commitEpoch.selector;
        selectors[1] = ProtocolHandler.claimReward.selector;
        selectors[2] = ProtocolHandler.claimRewards.selector;
        selectors[3] = ProtocolHandler.proveEquivocation.selector;
        selectors[4] = ProtocolHandler.challengeInclusion.selector;
        selectors[5] = ProtocolHandler.proveInclusion.selector;
        selectors[6] = ProtocolHandler.challenge.selector;
        selectors[7] = ProtocolHandler.vote.selector;
        selectors[8] = ProtocolHandler.resolve.selector;
        selectors[9] = ProtocolHandler.stake.selector;
        selectors[10] = ProtocolHandler.requestUnstake.selector;
        selectors[11] = ProtocolHandler.withdraw.selector;
        selectors[12] = ProtocolHandler.warp.selector;
        targetContract(address(handler));
        targetSelector(FuzzSelector({addr: address(handler), selectors: selectors}));
    }

    /// @notice No OPEN is minted, burnt or lost: every token is with a known holder.
    function invariant_totalOpenIsConserved() public view {
        vm.assertEq(handler.violations(), 0, "expectation broken inside an action");
        address[] memory list = handler.holders();
        uint256 total = token.balanceOf(address(this)) + token.balanceOf(address(handler)) + token.balanceOf(owner)
            + token.balanceOf(treasury) + token.balanceOf(address(staking)) + token.balanceOf(address(receipts))
            + token.balanceOf(address(disputes));
        for (uint256 i = 0; i < list.length; ++i) {
            total += token.balanceOf(list[i]);
        }
        vm.assertEq(total, token.TOTAL_SUPPLY(), "OPEN conserved");
        vm.assertEq(token.totalSupply(), token.TOTAL_SUPPLY(), "fixed supply");
    }

    /// @notice A contributor is paid at most once per (agent, epoch), and the registry holds exactly what is funded
    /// and not yet claimed.
    function invariant_contributorNeverPaidTwice() public view {
        vm.assertEq(handler.doublePayments(), 0, "double payment");
        address[3] memory contributors = handler.contributors();
        uint256 unclaimed = 0;
        for (uint256 i = 0; i < handler.epochCount(); ++i) {
            (address agent, uint64 epoch) = handler.epochAt(i);
            IReceiptRegistry.EpochCommitment memory c = receipts.epochCommitment(agent, epoch);
            vm.assertLe(c.rewardsClaimed, c.rewardsTotal, "claims within funding");
            unclaimed += c.rewardsTotal - c.rewardsClaimed;
            for (uint256 j = 0; j < contributors.length; ++j) {
                uint256 paid = handler.payments(agent, epoch, contributors[j]);
                vm.assertLe(paid, 1, "paid at most once");
                vm.assertEq(paid == 1, receipts.isClaimed(agent, epoch, contributors[j]), "claimed flag");
            }
        }
        vm.assertEq(token.balanceOf(address(receipts)), unclaimed, "registry holds the unclaimed rewards");
    }

    /// @notice Slashing never takes more than the slashable stake, and every operator's stake is what it put in,
    /// less what it withdrew and what was slashed.
    function invariant_slashingNeverExceedsStake() public view {
        vm.assertEq(handler.slashesBeyondStake(), 0, "slash beyond stake");
        address[] memory list = handler.stakers();
        uint256 held = 0;
        for (uint256 i = 0; i < list.length; ++i) {
            for (uint256 r = 0; r < 2; ++r) {
                IAgentStaking.Role role = IAgentStaking.Role(r);
                uint256 stakeNow = staking.activeStake(list[i], role) + staking.unbondingStake(list[i], role);
                uint256 slashedSoFar = handler.slashed(list[i], role);
                uint256 net = handler.deposited(list[i], role) - handler.withdrawn(list[i], role);
                vm.assertLe(slashedSoFar, net, "slashed within what was staked");
                vm.assertEq(stakeNow, net - slashedSoFar, "stake books");
                held += stakeNow;
            }
        }
        vm.assertEq(token.balanceOf(address(staking)), held, "staking holds exactly the stakes");
    }

    /// @notice A resolved dispute never changes again; open disputes hold exactly the bonds and the open counts.
    function invariant_resolvedDisputesNeverChange() public view {
        uint256[] memory finals = handler.finalDisputes();
        for (uint256 i = 0; i < finals.length; ++i) {
            vm.assertEq(
                keccak256(abi.encode(disputes.dispute(finals[i]))), handler.finalRecord(finals[i]), "final dispute"
            );
        }
        uint256 bonds = 0;
        uint256 open = 0;
        for (uint256 id = 1; id <= disputes.disputeCount(); ++id) {
            IDisputeManager.Dispute memory d = disputes.dispute(id);
            if (d.state == IDisputeManager.DisputeState.Open) {
                bonds += d.bond;
                ++open;
            } else {
                vm.assertTrue(handler.finalRecord(id) != bytes32(0), "every final dispute was seen becoming final");
            }
        }
        vm.assertEq(token.balanceOf(address(disputes)), bonds, "bonds held");
        uint256 counted = 0;
        for (uint256 i = 0; i < handler.epochCount(); ++i) {
            (address agent, uint64 epoch) = handler.epochAt(i);
            counted += disputes.openDisputeCount(agent, epoch);
            counted += _skippedOpenCount(agent, epoch - 1);
        }
        vm.assertEq(counted, open, "open counts");
    }

    /// @notice The handler's actions can all succeed: a scripted walk through every path, so that the invariants
    /// above are not checked against a run that only ever reverts.
    function test_handler_reachesEveryPath() public {
        handler.commitEpoch(0, 3, 1 ether, 1 ether, 1 ether, false); // agent0, epoch 1 (record 0)
        handler.commitEpoch(1, 2, 1 ether, 0, 2 ether, true); // agent1, epoch 2; epoch 1 skipped (record 1)
        handler.warp(12);

        // Actions on disputes pick among the latest open ones of their sort; seed 0 is the latest.
        handler.challenge(1, 0, 0, 0); // dispute 1: Output on agent0's receipt 0, by challenger0
        handler.vote(0, 0, true); // validator0 upholds
        handler.vote(0, 4, true); // validator1 upholds
        handler.vote(0, 3, true); // agent0 may not vote on its own case: refused
        handler.challengeInclusion(1, 3, 1, false); // dispute 2: agent0's withheld receipt 3
        handler.challengeInclusion(0, 0, 2, true); // dispute 3: agent1's receipt of skipped epoch 1
        handler.challengeInclusion(1, 1, 0, false); // dispute 4: agent0's included receipt 1
        handler.proveInclusion(0); // dispute 4 answered
        handler.challenge(1, 2, 1, 1); // dispute 5: Attribution on agent0's receipt 2, by validator0
        handler.vote(0, 4, false); // validator1 rejects
        handler.vote(0, 8, false); // validator2 rejects
        handler.proveEquivocation(0, 0, 0, keccak256("other answer")); // dispute 6: agent1 equivocates
        handler.resolve(0, true); // dispute 5 rejected
        handler.resolve(0, true); // dispute 3 upheld: a skipped epoch's receipt is never proven

        handler.claimReward(1, 0, true); // agent1's epoch 2: no open dispute
        handler.claimRewards(1, 1, 1, true);
        handler.claimReward(1, 0, true); // a second claim is refused

        handler.stake(1, 1000 ether);
        handler.requestUnstake(1, 500 ether);
        handler.withdraw(1, true);

        string[13] memory actions = [
            "commitEpoch",
            "claimReward",
            "claimRewards",
            "proveEquivocation",
            "challengeInclusion",
            "proveInclusion",
            "challenge",
            "vote",
            "resolveUpheld",
            "resolveRejected",
            "stake",
            "requestUnstake",
            "withdraw"
        ];
        for (uint256 i = 0; i < actions.length; ++i) {
            vm.assertGt(handler.successes(actions[i]), 0, actions[i]);
        }
        vm.assertEq(handler.successes("vote"), 4, "the agent's vote was refused");
        vm.assertEq(handler.successes("proveEquivocation"), 1, "equivocation");
        vm.assertEq(handler.successes("claimReward"), 1, "the second claim was refused");
        invariant_totalOpenIsConserved();
        invariant_contributorNeverPaidTwice();
        invariant_slashingNeverExceedsStake();
        invariant_resolvedDisputesNeverChange();
    }

    /// @dev Open disputes on a skipped epoch `epoch` of `agent` (zero when it was committed: counted elsewhere).
    function _skippedOpenCount(address agent, uint64 epoch) internal view returns (uint256) {
        (IReceiptRegistry.EpochStatus status,) = receipts.epochStatus(agent, epoch);
        return status == IReceiptRegistry.EpochStatus.Skipped ? disputes.openDisputeCount(agent, epoch) : 0;
    }
}
