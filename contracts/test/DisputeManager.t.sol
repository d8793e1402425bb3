// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {AgentStaking} from "../src/AgentStaking.sol";
import {DisputeManager} from "../src/DisputeManager.sol";
import {ReceiptRegistry} from "../src/ReceiptRegistry.sol";
import {IAgentStaking} from "../src/interfaces/IAgentStaking.sol";
import {IDisputeManager} from "../src/interfaces/IDisputeManager.sol";
import {IReceiptRegistry} from "../src/interfaces/IReceiptRegistry.sol";
import {ProtocolFixture} from "./utils/ProtocolFixture.sol";

contract DisputeManagerTest is ProtocolFixture {
    IDisputeManager.DisputeKind internal constant EQUIVOCATION = IDisputeManager.DisputeKind.Equivocation;
    IDisputeManager.DisputeKind internal constant WITHHOLDING = IDisputeManager.DisputeKind.Withholding;
    IDisputeManager.DisputeKind internal constant OUTPUT = IDisputeManager.DisputeKind.Output;
    IDisputeManager.DisputeKind internal constant ATTRIBUTION = IDisputeManager.DisputeKind.Attribution;
    IDisputeManager.DisputeKind internal constant TOTALS = IDisputeManager.DisputeKind.Totals;

    IDisputeManager.DisputeState internal constant NONE = IDisputeManager.DisputeState.None;
    IDisputeManager.DisputeState internal constant OPEN = IDisputeManager.DisputeState.Open;
    IDisputeManager.DisputeState internal constant UPHELD = IDisputeManager.DisputeState.Upheld;
    IDisputeManager.DisputeState internal constant REJECTED = IDisputeManager.DisputeState.Rejected;

    bytes32 internal constant OPEN_BITMAP = bytes32(uint256(1) << 1);
    bytes32 internal constant EVIDENCE = keccak256("evidence");
    uint256 internal constant RECEIPTS_IN_EPOCH = 4;

    uint256 internal constant V1_STAKE = 5000 ether;
    uint256 internal constant V2_STAKE = 3000 ether;
    uint256 internal constant V3_STAKE = 2000 ether;

    /// @dev secp256k1 group order, to build a high-`s` twin of a signature.
    uint256 internal constant SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;

    AgentKeys internal alice;
    AgentKeys internal bob;
    address internal payer;
    address internal challenger;
    address internal v1;
    address internal v2;
    address internal v3;
    address internal contributor1;
    uint256 internal epoch1Deadline;

    address[] internal _holders;

    function setUp() public {
        _deployProtocol();
        alice = _agent("alice", AGENT_STAKE);
        bob = _agent("bob", AGENT_STAKE);
        payer = _actor("payer");
        challenger = _actor("challenger");
        v1 = _validator("v1", V1_STAKE);
        v2 = _validator("v2", V2_STAKE);
        v3 = _validator("v3", V3_STAKE);
        (contributor1,) = makeAccount("contributor1");
        _nextBlock();
        _commit(alice.operator, _epoch1());
        epoch1Deadline = block.timestamp + CHALLENGE_WINDOW;
        _nextBlock();

        address[13] memory holders = [
            address(this),
            owner,
            treasury,
            alice.operator,
            bob.operator,
            payer,
            challenger,
            v1,
            v2,
            v3,
            address(staking),
            address(receipts),
            address(disputes)
        ];
        for (uint256 i = 0; i < holders.length; ++i) {
            _holders.push(holders[i]);
        }
    }

    // --------------------------------------------------------------------------------------------------------------
    // Deployment and parameters
    // --------------------------------------------------------------------------------------------------------------

    function test_constructor_setsState() public view {
        vm.assertEq(address(disputes.staking()), address(staking), "staking");
        vm.assertEq(address(disputes.receiptRegistry()), address(receipts), "registry");
        vm.assertEq(address(disputes.token()), address(token), "token");
        vm.assertEq(disputes.owner(), owner, "owner");
        vm.assertEq(disputes.challengeWindow(), CHALLENGE_WINDOW, "challenge window");
        vm.assertEq(disputes.minUnbondingPeriod(), CHALLENGE_WINDOW + RESPONSE_WINDOW + VOTING_PERIOD, "min unbonding");
        vm.assertEq(disputes.disputeCount(), 0, "count");
        vm.assertEq(keccak256(abi.encode(disputes.parameters())), keccak256(abi.encode(_defaultParameters())));
        vm.assertEq(staking.disputeManager(), address(disputes), "staking's dispute manager");
    }

    function test_constructor_whenZeroAddress_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(IDisputeManager.DisputeManagerZeroAddress.selector));
        new DisputeManager(IAgentStaking(address(0)), receipts, owner, _defaultParameters());
        vm.expectRevert(abi.encodeWithSelector(IDisputeManager.DisputeManagerZeroAddress.selector));
        new DisputeManager(staking, IReceiptRegistry(address(0)), owner, _defaultParameters());
    }

    function test_constructor_whenRegistryUsesOtherStaking_reverts() public {
        AgentStaking other =
            new AgentStaking(token, owner, treasury, UNBONDING_PERIOD, MIN_AGENT_STAKE, MIN_VALIDATOR_STAKE);
        vm.expectRevert(
            abi.encodeWithSelector(
                IDisputeManager.DisputeManagerStakingMismatch.selector, address(other), address(staking)
            )
        );
        new DisputeManager(other, receipts, owner, _defaultParameters());
    }

    function test_constructor_whenUnbondingTooShort_reverts() public {
        AgentStaking short = new AgentStaking(token, owner, treasury, 2 days, MIN_AGENT_STAKE, MIN_VALIDATOR_STAKE);
        ReceiptRegistry registry = new ReceiptRegistry(short, owner, ATTRIBUTION_BPS);
        vm.expectRevert(
            abi.encodeWithSelector(
                IDisputeManager.DisputeManagerUnbondingPeriodTooShort.selector,
                CHALLENGE_WINDOW + RESPONSE_WINDOW + VOTING_PERIOD,
                2 days
            )
        );
        new DisputeManager(short, registry, owner, _defaultParameters());
    }

    function test_setParameters_updatesAndEmits() public {
        IDisputeManager.Parameters memory p = _defaultParameters();
        p.challengeWindow = 2 days;
        p.quorumBps = 10_000;
        p.inclusionBond = 0;
        vm.expectEmit(address(disputes));
        emit IDisputeManager.ParametersSet(p);
        vm.prank(owner);
        disputes.setParameters(p);
        vm.assertEq(keccak256(abi.encode(disputes.parameters())), keccak256(abi.encode(p)), "stored");
        vm.assertEq(disputes.minUnbondingPeriod(), 2 days + RESPONSE_WINDOW + VOTING_PERIOD, "min unbonding");
    }

    function test_setParameters_whenNotOwner_reverts() public {
        IDisputeManager.Parameters memory p = _defaultParameters();
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, challenger));
        vm.prank(challenger);
        disputes.setParameters(p);
    }

    function test_setParameters_whenOutOfBounds_reverts() public {
        for (uint256 i = 0; i <= uint256(type(IDisputeManager.Parameter).max); ++i) {
            IDisputeManager.Parameter parameter = IDisputeManager.Parameter(i);
            (uint256 min, uint256 max) = disputes.parameterBounds(parameter);
            _expectInvalidParameter(parameter, max + 1, min, max);
            if (min != 0) _expectInvalidParameter(parameter, min - 1, min, max);
        }
    }

    function test_parameterBounds_areDocumentedValues() public view {
        _assertBounds(IDisputeManager.Parameter.ChallengeWindow, 1 hours, 30 days);
        _assertBounds(IDisputeManager.Parameter.ResponseWindow, 1 hours, 7 days);
        _assertBounds(IDisputeManager.Parameter.VotingPeriod, 1 hours, 14 days);
        _assertBounds(IDisputeManager.Parameter.QuorumBps, 1000, 10_000);
        _assertBounds(IDisputeManager.Parameter.EquivocationSlashBps, 100, 10_000);
        _assertBounds(IDisputeManager.Parameter.WithholdingSlashBps, 100, 10_000);
        _assertBounds(IDisputeManager.Parameter.OutputSlashBps, 100, 10_000);
        _assertBounds(IDisputeManager.Parameter.ProverRewardBps, 0, 5000);
        _assertBounds(IDisputeManager.Parameter.ChallengerRewardBps, 0, 5000);
        _assertBounds(IDisputeManager.Parameter.ChallengeBond, 1 ether, 1_000_000 ether);
        _assertBounds(IDisputeManager.Parameter.InclusionBond, 0, 1_000_000 ether);
    }

    function test_setParameters_whenUnbondingTooShort_reverts() public {
        IDisputeManager.Parameters memory p = _defaultParameters();
        p.challengeWindow = 30 days;
        vm.expectRevert(
            abi.encodeWithSelector(
                IDisputeManager.DisputeManagerUnbondingPeriodTooShort.selector,
                30 days + RESPONSE_WINDOW + VOTING_PERIOD,
                UNBONDING_PERIOD
            )
        );
        vm.prank(owner);
        disputes.setParameters(p);
    }

    function test_stakingUnbondingPeriod_cannotUndercutDisputeWindows() public {
        uint256 required = disputes.minUnbondingPeriod();
        vm.expectRevert(
            abi.encodeWithSelector(
                IAgentStaking.StakingInvalidUnbondingPeriod.selector, required - 1, required, 365 days
            )
        );
        vm.prank(owner);
        staking.setUnbondingPeriod(required - 1);
    }

    // --------------------------------------------------------------------------------------------------------------
    // Equivocation
    // --------------------------------------------------------------------------------------------------------------

    function test_proveEquivocation_slashesAgentAndRewardsProver() public {
        (IReceiptRegistry.Receipt memory a, IReceiptRegistry.Receipt memory b) = _equivocatingPair();
        bytes memory sigA = _sign(alice.signerKey, a);
        bytes memory sigB = _sign(alice.signerKey, b);
        uint256 slash = AGENT_STAKE * EQUIVOCATION_SLASH_BPS / 10_000;
        uint256 reward = slash * PROVER_REWARD_BPS / 10_000;
        uint256 challengerBalance = token.balanceOf(challenger);

        vm.expectEmit(address(disputes));
        emit IDisputeManager.EquivocationProven(1, alice.operator, a.requestId, challenger, _hash(a), _hash(b), slash);
        vm.prank(challenger);
        uint256 disputeId = disputes.proveEquivocation(a, sigA, b, sigB);
        vm.snapshotGasLastCall("proveEquivocation");

        vm.assertEq(disputeId, 1, "id");
        vm.assertEq(staking.slashableStake(alice.operator, AGENT), AGENT_STAKE - slash, "stake");
        vm.assertEq(token.balanceOf(challenger), challengerBalance + reward, "prover reward");
        vm.assertEq(token.balanceOf(treasury), slash - reward, "treasury");
        IDisputeManager.Dispute memory d = disputes.dispute(disputeId);
        vm.assertEq(uint256(d.kind), uint256(EQUIVOCATION), "kind");
        vm.assertEq(uint256(d.state), uint256(UPHELD), "state");
        vm.assertEq(d.agent, alice.operator, "agent");
        vm.assertEq(d.challenger, challenger, "prover");
        vm.assertEq(d.receiptHash, _hash(a), "receipt");
        vm.assertEq(disputes.disputeIdOf(EQUIVOCATION, b), disputeId, "keyed by request");
        vm.assertEq(disputes.openDisputeCount(alice.operator, 1), 0, "never open");
        _assertConserved();
    }

    function test_proveEquivocation_acrossRotatedSigners_slashes() public {
        (IReceiptRegistry.Receipt memory a, IReceiptRegistry.Receipt memory b) = _equivocatingPair();
        (address newSigner, uint256 newKey) = makeAccount("alice-signer-2");
        vm.prank(alice.operator);
        staking.updateAgent(newSigner, MODEL_ID, PRICE, ENDPOINT);

        bytes memory sigA = _sign(alice.signerKey, a);
        bytes memory sigB = _sign(newKey, b);
        disputes.proveEquivocation(a, sigA, b, sigB);
        vm.assertEq(
            staking.slashableStake(alice.operator, AGENT),
            AGENT_STAKE - AGENT_STAKE * EQUIVOCATION_SLASH_BPS / 10_000,
            "slashed"
        );
    }

    function test_proveEquivocation_whenAgentHasNoStakeLeft_recordsWithoutSlash() public {
        vm.prank(alice.operator);
        staking.requestUnstake(AGENT, AGENT_STAKE);
        _skip(UNBONDING_PERIOD);
        vm.prank(alice.operator);
        staking.withdraw(AGENT);

        (IReceiptRegistry.Receipt memory a, IReceiptRegistry.Receipt memory b) = _equivocatingPair();
        bytes memory sigA = _sign(alice.signerKey, a);
        bytes memory sigB = _sign(alice.signerKey, b);
        vm.expectEmit(address(disputes));
        emit IDisputeManager.EquivocationProven(1, alice.operator, a.requestId, address(this), _hash(a), _hash(b), 0);
        disputes.proveEquivocation(a, sigA, b, sigB);
        vm.assertEq(uint256(disputes.dispute(1).state), uint256(UPHELD), "recorded");
        _assertConserved();
    }

    function test_proveEquivocation_whenAgentsDiffer_reverts() public {
        (IReceiptRegistry.Receipt memory a, IReceiptRegistry.Receipt memory b) = _equivocatingPair();
        b.agent = bob.operator;
        bytes memory sigA = _sign(alice.signerKey, a);
        bytes memory sigB = _sign(bob.signerKey, b);
        vm.expectRevert(
            abi.encodeWithSelector(
                IDisputeManager.DisputeManagerNotEquivocation.selector,
                alice.operator,
                a.requestId,
                bob.operator,
                b.requestId
            )
        );
        disputes.proveEquivocation(a, sigA, b, sigB);
    }

    function test_proveEquivocation_whenRequestsDiffer_reverts() public {
        (IReceiptRegistry.Receipt memory a, IReceiptRegistry.Receipt memory b) = _equivocatingPair();
        b.requestId = keccak256("another request");
        bytes memory sigA = _sign(alice.signerKey, a);
        bytes memory sigB = _sign(alice.signerKey, b);
        vm.expectRevert(
            abi.encodeWithSelector(
                IDisputeManager.DisputeManagerNotEquivocation.selector,
                alice.operator,
                a.requestId,
                alice.operator,
                b.requestId
            )
        );
        disputes.proveEquivocation(a, sigA, b, sigB);
    }

    function test_proveEquivocation_whenSameReceipt_reverts() public {
        (IReceiptRegistry.Receipt memory a,) = _equivocatingPair();
        bytes memory sigA = _sign(alice.signerKey, a);
        vm.expectRevert(abi.encodeWithSelector(IDisputeManager.DisputeManagerIdenticalReceipts.selector, _hash(a)));
        disputes.proveEquivocation(a, sigA, a, sigA);
    }

    function test_proveEquivocation_twiceForOneRequest_reverts() public {
        (IReceiptRegistry.Receipt memory a, IReceiptRegistry.Receipt memory b) = _equivocatingPair();
        IReceiptRegistry.Receipt memory c = _receipt(alice.operator, payer, 1, 0, keccak256("third answer"));
        bytes memory sigA = _sign(alice.signerKey, a);
        bytes memory sigB = _sign(alice.signerKey, b);
        bytes memory sigC = _sign(alice.signerKey, c);
        disputes.proveEquivocation(a, sigA, b, sigB);

        vm.expectRevert(abi.encodeWithSelector(IDisputeManager.DisputeManagerAlreadyDisputed.selector, 1));
        disputes.proveEquivocation(a, sigA, c, sigC);
    }

    function test_proveEquivocation_whenSignerUnbound_reverts() public {
        (IReceiptRegistry.Receipt memory a, IReceiptRegistry.Receipt memory b) = _equivocatingPair();
        (address stranger, uint256 strangerKey) = makeAccount("stranger");
        bytes memory sigA = _sign(alice.signerKey, a);
        bytes memory sigB = _sign(strangerKey, b);
        vm.expectRevert(
            abi.encodeWithSelector(IDisputeManager.DisputeManagerInvalidSigner.selector, stranger, alice.operator)
        );
        disputes.proveEquivocation(a, sigA, b, sigB);
    }

    function test_proveEquivocation_whenSignedByAnotherAgentsSigner_reverts() public {
        (IReceiptRegistry.Receipt memory a, IReceiptRegistry.Receipt memory b) = _equivocatingPair();
        bytes memory sigA = _sign(bob.signerKey, a);
        bytes memory sigB = _sign(alice.signerKey, b);
        vm.expectRevert(
            abi.encodeWithSelector(IDisputeManager.DisputeManagerInvalidSigner.selector, bob.signer, alice.operator)
        );
        disputes.proveEquivocation(a, sigA, b, sigB);
    }

    function test_proveEquivocation_whenSignatureHasHighS_reverts() public {
        (IReceiptRegistry.Receipt memory a, IReceiptRegistry.Receipt memory b) = _equivocatingPair();
        bytes memory sigA = _sign(alice.signerKey, a);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(alice.signerKey, receipts.receiptDigest(b));
        bytes32 highS = bytes32(SECP256K1_N - uint256(s));
        bytes memory twin = abi.encodePacked(r, highS, v == 27 ? uint8(28) : uint8(27));
        vm.expectRevert(abi.encodeWithSelector(ECDSA.ECDSAInvalidSignatureS.selector, highS));
        disputes.proveEquivocation(a, sigA, b, twin);
    }

    // --------------------------------------------------------------------------------------------------------------
    // Withholding: challengeInclusion, proveInclusion, resolve
    // --------------------------------------------------------------------------------------------------------------

    function test_challengeInclusion_opensDisputeAndPullsBond() public {
        IReceiptRegistry.Receipt memory r = _aliceReceipt(1, 7);
        bytes memory sig = _sign(alice.signerKey, r);
        uint256 deadline = block.timestamp + RESPONSE_WINDOW;

        vm.expectEmit(address(disputes));
        emit IDisputeManager.DisputeOpened(
            1, WITHHOLDING, alice.operator, challenger, 1, _hash(r), bytes32(0), INCLUSION_BOND, deadline
        );
        vm.prank(challenger);
        uint256 disputeId = disputes.challengeInclusion(r, sig);
        vm.snapshotGasLastCall("challengeInclusion");

        IDisputeManager.Dispute memory d = disputes.dispute(disputeId);
        vm.assertEq(uint256(d.state), uint256(OPEN), "open");
        vm.assertEq(uint256(d.kind), uint256(WITHHOLDING), "kind");
        vm.assertEq(d.deadline, deadline, "deadline");
        vm.assertEq(d.bond, INCLUSION_BOND, "bond");
        vm.assertEq(d.seq, 7, "seq");
        vm.assertEq(d.epoch, 1, "epoch");
        vm.assertEq(token.balanceOf(address(disputes)), INCLUSION_BOND, "bond held");
        vm.assertEq(disputes.openDisputeCount(alice.operator, 1), 1, "open count");
        vm.assertEq(disputes.disputeIdOf(WITHHOLDING, r), disputeId, "lookup");
    }

    function test_proveInclusion_clearsAgentAndPaysItTheBond() public {
        EpochData memory data = _epoch1();
        uint256 disputeId = _challengeInclusion(challenger, data.receipts[2]);
        uint256 agentBalance = token.balanceOf(alice.operator);

        vm.expectEmit(address(disputes));
        emit IDisputeManager.DisputeResolved(disputeId, REJECTED, 0);
        vm.prank(alice.operator);
        disputes.proveInclusion(disputeId, _receiptProof(data, 2));
        vm.snapshotGasLastCall("proveInclusion");

        vm.assertEq(uint256(disputes.dispute(disputeId).state), uint256(REJECTED), "rejected");
        vm.assertEq(token.balanceOf(alice.operator), agentBalance + INCLUSION_BOND, "bond to agent");
        vm.assertEq(disputes.openDisputeCount(alice.operator, 1), 0, "closed");
        vm.assertEq(staking.slashableStake(alice.operator, AGENT), AGENT_STAKE, "not slashed");
        _assertConserved();
    }

    function test_resolve_whenInclusionNotProven_slashesAndReturnsBond() public {
        uint256 disputeId = _challengeInclusion(challenger, _aliceReceipt(1, 7));
        uint256 challengerBalance = token.balanceOf(challenger);
        uint256 slash = AGENT_STAKE * WITHHOLDING_SLASH_BPS / 10_000;
        uint256 reward = slash * PROVER_REWARD_BPS / 10_000;
        vm.warp(block.timestamp + RESPONSE_WINDOW + 1);

        vm.expectEmit(address(disputes));
        emit IDisputeManager.DisputeResolved(disputeId, UPHELD, slash);
        IDisputeManager.DisputeState state = disputes.resolve(disputeId);
        vm.snapshotGasLastCall("resolve_withholding");

        vm.assertEq(uint256(state), uint256(UPHELD), "upheld");
        vm.assertEq(staking.slashableStake(alice.operator, AGENT), AGENT_STAKE - slash, "slashed");
        vm.assertEq(token.balanceOf(challenger), challengerBalance + INCLUSION_BOND + reward, "bond and reward");
        vm.assertEq(token.balanceOf(treasury), slash - reward, "treasury");
        vm.assertEq(token.balanceOf(address(disputes)), 0, "no bond held");
        _assertConserved();
    }

    function test_challengeInclusion_ofSkippedEpoch_isUpheld() public {
        _commitEpoch(alice, payer, 3, 1, _addresses(contributor1), _amounts(1 ether));
        IReceiptRegistry.Receipt memory r = _aliceReceipt(2, 0);
        uint256 disputeId = _challengeInclusion(challenger, r);

        vm.expectRevert(abi.encodeWithSelector(IDisputeManager.DisputeManagerInclusionNotProven.selector, disputeId));
        vm.prank(alice.operator);
        disputes.proveInclusion(disputeId, new bytes32[](0));

        vm.warp(block.timestamp + RESPONSE_WINDOW + 1);
        vm.assertEq(uint256(disputes.resolve(disputeId)), uint256(UPHELD), "upheld");
    }

    function test_challengeInclusion_withZeroBond_pullsNothing() public {
        IDisputeManager.Parameters memory p = _defaultParameters();
        p.inclusionBond = 0;
        vm.prank(owner);
        disputes.setParameters(p);
        EpochData memory data = _epoch1();
        uint256 disputeId = _challengeInclusion(challenger, data.receipts[0]);
        vm.assertEq(token.balanceOf(address(disputes)), 0, "no bond");
        disputes.proveInclusion(disputeId, _receiptProof(data, 0));
        vm.assertEq(uint256(disputes.dispute(disputeId).state), uint256(REJECTED), "rejected");
    }

    function test_challengeInclusion_whenEpochPending_reverts() public {
        IReceiptRegistry.Receipt memory r = _aliceReceipt(5, 0);
        bytes memory sig = _sign(alice.signerKey, r);
        vm.expectRevert(
            abi.encodeWithSelector(
                IDisputeManager.DisputeManagerEpochNotDisputable.selector,
                alice.operator,
                uint64(5),
                IReceiptRegistry.EpochStatus.Pending
            )
        );
        disputes.challengeInclusion(r, sig);
    }

    function test_challengeInclusion_afterChallengeWindow_reverts() public {
        IReceiptRegistry.Receipt memory r = _aliceReceipt(1, 0);
        bytes memory sig = _sign(alice.signerKey, r);
        vm.warp(epoch1Deadline + 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                IDisputeManager.DisputeManagerChallengeWindowClosed.selector, alice.operator, uint64(1), epoch1Deadline
            )
        );
        disputes.challengeInclusion(r, sig);
    }

    function test_challengeInclusion_twice_reverts() public {
        IReceiptRegistry.Receipt memory r = _aliceReceipt(1, 7);
        uint256 disputeId = _challengeInclusion(challenger, r);
        bytes memory sig = _sign(alice.signerKey, r);
        vm.expectRevert(abi.encodeWithSelector(IDisputeManager.DisputeManagerAlreadyDisputed.selector, disputeId));
        vm.prank(payer);
        disputes.challengeInclusion(r, sig);
    }

    function test_challengeInclusion_whenSignerInvalid_reverts() public {
        IReceiptRegistry.Receipt memory r = _aliceReceipt(1, 7);
        bytes memory sig = _sign(bob.signerKey, r);
        vm.expectRevert(
            abi.encodeWithSelector(IDisputeManager.DisputeManagerInvalidSigner.selector, bob.signer, alice.operator)
        );
        disputes.challengeInclusion(r, sig);
    }

    function test_proveInclusion_afterResponseWindow_reverts() public {
        EpochData memory data = _epoch1();
        uint256 disputeId = _challengeInclusion(challenger, data.receipts[1]);
        uint256 deadline = block.timestamp + RESPONSE_WINDOW;
        vm.warp(deadline + 1);
        vm.expectRevert(
            abi.encodeWithSelector(IDisputeManager.DisputeManagerDeadlinePassed.selector, disputeId, deadline)
        );
        disputes.proveInclusion(disputeId, _receiptProof(data, 1));
    }

    function test_proveInclusion_withWrongProof_reverts() public {
        EpochData memory data = _epoch1();
        uint256 disputeId = _challengeInclusion(challenger, data.receipts[1]);
        vm.expectRevert(abi.encodeWithSelector(IDisputeManager.DisputeManagerInclusionNotProven.selector, disputeId));
        disputes.proveInclusion(disputeId, _receiptProof(data, 2));
    }

    function test_proveInclusion_onVotedChallenge_reverts() public {
        uint256 disputeId = _challenge(challenger, _aliceReceipt(1, 0), OUTPUT);
        vm.expectRevert(abi.encodeWithSelector(IDisputeManager.DisputeManagerWrongKind.selector, disputeId, OUTPUT));
        disputes.proveInclusion(disputeId, new bytes32[](0));
    }

    function test_proveInclusion_onUnknownDispute_reverts() public {
        vm.expectRevert(
            abi.encodeWithSelector(IDisputeManager.DisputeManagerUnexpectedState.selector, 99, NONE, OPEN_BITMAP)
        );
        disputes.proveInclusion(99, new bytes32[](0));
    }

    function test_resolve_beforeResponseDeadline_reverts() public {
        uint256 disputeId = _challengeInclusion(challenger, _aliceReceipt(1, 7));
        uint256 deadline = block.timestamp + RESPONSE_WINDOW;
        vm.warp(deadline);
        vm.expectRevert(
            abi.encodeWithSelector(IDisputeManager.DisputeManagerDeadlineNotPassed.selector, disputeId, deadline)
        );
        disputes.resolve(disputeId);
    }

    function test_resolve_twice_reverts() public {
        uint256 disputeId = _challengeInclusion(challenger, _aliceReceipt(1, 7));
        vm.warp(block.timestamp + RESPONSE_WINDOW + 1);
        disputes.resolve(disputeId);
        vm.expectRevert(
            abi.encodeWithSelector(
                IDisputeManager.DisputeManagerUnexpectedState.selector, disputeId, UPHELD, OPEN_BITMAP
            )
        );
        disputes.resolve(disputeId);
    }

    // --------------------------------------------------------------------------------------------------------------
    // Voted challenges: challenge, vote, resolve
    // --------------------------------------------------------------------------------------------------------------

    function test_challenge_opensDisputeWithSnapshot() public {
        IReceiptRegistry.Receipt memory r = _aliceReceipt(1, 1);
        bytes memory sig = _sign(alice.signerKey, r);
        uint256 deadline = block.timestamp + VOTING_PERIOD;

        vm.expectEmit(address(disputes));
        emit IDisputeManager.DisputeOpened(
            1, OUTPUT, alice.operator, challenger, 1, _hash(r), EVIDENCE, CHALLENGE_BOND, deadline
        );
        vm.prank(challenger);
        uint256 disputeId = disputes.challenge(r, sig, OUTPUT, EVIDENCE);
        vm.snapshotGasLastCall("challenge");

        IDisputeManager.Dispute memory d = disputes.dispute(disputeId);
        vm.assertEq(uint256(d.state), uint256(OPEN), "open");
        vm.assertEq(d.snapshotBlock, block.number - 1, "snapshot");
        vm.assertEq(d.deadline, deadline, "deadline");
        vm.assertEq(d.payer, payer, "payer");
        vm.assertEq(d.refund, PRICE, "refund");
        vm.assertEq(d.bond, CHALLENGE_BOND, "bond");
        vm.assertEq(token.balanceOf(address(disputes)), CHALLENGE_BOND, "bond held");
        vm.assertEq(disputes.openDisputeCount(alice.operator, 1), 1, "open count");
    }

    function test_vote_countsStakeAtSnapshot() public {
        uint256 disputeId = _challenge(challenger, _aliceReceipt(1, 1), OUTPUT);
        vm.expectEmit(address(disputes));
        emit IDisputeManager.Voted(disputeId, v1, true, V1_STAKE);
        vm.prank(v1);
        disputes.vote(disputeId, true);
        vm.snapshotGasLastCall("vote");

        _vote(v2, disputeId, false);
        IDisputeManager.Dispute memory d = disputes.dispute(disputeId);
        vm.assertEq(d.upholdWeight, V1_STAKE, "uphold");
        vm.assertEq(d.rejectWeight, V2_STAKE, "reject");
        vm.assertTrue(disputes.hasVoted(disputeId, v1), "v1 voted");
        vm.assertFalse(disputes.hasVoted(disputeId, v3), "v3 did not");
    }

    function test_lifecycle_output_upheld() public {
        _assertVotedLifecycle(OUTPUT, true);
    }

    function test_lifecycle_output_rejected() public {
        _assertVotedLifecycle(OUTPUT, false);
    }

    function test_lifecycle_attribution_upheld() public {
        _assertVotedLifecycle(ATTRIBUTION, true);
    }

    function test_lifecycle_attribution_rejected() public {
        _assertVotedLifecycle(ATTRIBUTION, false);
    }

    function test_lifecycle_totals_upheld() public {
        _assertVotedLifecycle(TOTALS, true);
    }

    function test_lifecycle_totals_rejected() public {
        _assertVotedLifecycle(TOTALS, false);
    }

    function test_resolve_withoutQuorum_rejects() public {
        uint256 disputeId = _challenge(challenger, _aliceReceipt(1, 1), OUTPUT);
        _vote(v3, disputeId, true); // 2_000 of 10_000: below the 50% quorum
        _skip(VOTING_PERIOD + 1);
        vm.assertEq(uint256(disputes.resolve(disputeId)), uint256(REJECTED), "rejected");
        vm.assertEq(staking.slashableStake(alice.operator, AGENT), AGENT_STAKE, "not slashed");
    }

    function test_resolve_onTie_rejects() public {
        uint256 disputeId = _challenge(challenger, _aliceReceipt(1, 1), OUTPUT);
        _vote(v1, disputeId, true);
        _vote(v2, disputeId, false);
        _vote(v3, disputeId, false);
        _skip(VOTING_PERIOD + 1);
        vm.assertEq(uint256(disputes.resolve(disputeId)), uint256(REJECTED), "rejected");
    }

    function test_resolve_quorumLeavesOutChallengerStake() public {
        // v1 (5_000) challenges; v2's 3_000 is 60% of the 5_000 that may vote.
        uint256 disputeId = _challenge(v1, _aliceReceipt(1, 1), OUTPUT);
        _vote(v2, disputeId, true);
        _skip(VOTING_PERIOD + 1);
        vm.assertEq(uint256(disputes.resolve(disputeId)), uint256(UPHELD), "upheld");
    }

    function test_resolve_quorumLeavesOutAgentValidatorStake() public {
        vm.prank(alice.operator);
        staking.stake(VALIDATOR, 10_000 ether);
        _nextBlock();
        // 5_000 of the 10_000 that may vote (alice's 10_000 may not) is exactly the 50% quorum.
        uint256 disputeId = _challenge(challenger, _aliceReceipt(1, 1), OUTPUT);
        _vote(v2, disputeId, true);
        _vote(v3, disputeId, true);
        _skip(VOTING_PERIOD + 1);
        vm.assertEq(uint256(disputes.resolve(disputeId)), uint256(UPHELD), "upheld");
    }

    function test_resolve_whenPayerIsAgent_refundsNobody() public {
        IReceiptRegistry.Receipt memory r = _receipt(alice.operator, alice.operator, 1, 1, bytes32(0));
        uint256 disputeId = _challenge(challenger, r, OUTPUT);
        vm.assertEq(disputes.dispute(disputeId).payer, address(0), "no payer");
        _vote(v1, disputeId, true);
        _skip(VOTING_PERIOD + 1);
        uint256 agentBalance = token.balanceOf(alice.operator);
        disputes.resolve(disputeId);

        uint256 slash = AGENT_STAKE * OUTPUT_SLASH_BPS / 10_000;
        uint256 reward = slash * CHALLENGER_REWARD_BPS / 10_000;
        vm.assertEq(token.balanceOf(alice.operator), agentBalance, "agent not refunded");
        vm.assertEq(token.balanceOf(treasury), slash - reward, "treasury");
        _assertConserved();
    }

    function test_resolve_refundIsCappedByTheSlash() public {
        IReceiptRegistry.Receipt memory r = _aliceReceipt(1, 1);
        r.price = type(uint256).max;
        uint256 disputeId = _challenge(challenger, r, OUTPUT);
        vm.assertEq(disputes.dispute(disputeId).refund, type(uint96).max, "refund capped in storage");
        _vote(v1, disputeId, true);
        _skip(VOTING_PERIOD + 1);
        uint256 payerBalance = token.balanceOf(payer);
        disputes.resolve(disputeId);

        uint256 slash = AGENT_STAKE * OUTPUT_SLASH_BPS / 10_000;
        uint256 reward = slash * CHALLENGER_REWARD_BPS / 10_000;
        vm.assertEq(token.balanceOf(payer), payerBalance + slash - reward, "payer gets the rest");
        vm.assertEq(token.balanceOf(treasury), 0, "treasury gets nothing");
        _assertConserved();
    }

    function test_resolve_slashNeverExceedsSlashableStake() public {
        IDisputeManager.Parameters memory p = _defaultParameters();
        p.outputSlashBps = 10_000;
        vm.prank(owner);
        disputes.setParameters(p);
        vm.prank(alice.operator);
        staking.requestUnstake(AGENT, 4000 ether);
        _nextBlock();

        uint256 first = _challenge(challenger, _aliceReceipt(1, 0), OUTPUT);
        uint256 second = _challenge(challenger, _aliceReceipt(1, 1), OUTPUT);
        _vote(v1, first, true);
        _vote(v1, second, true);
        _skip(VOTING_PERIOD + 1);
        uint256 stakingBalance = token.balanceOf(address(staking));

        vm.expectEmit(address(disputes));
        emit IDisputeManager.DisputeResolved(first, UPHELD, AGENT_STAKE);
        disputes.resolve(first);
        vm.assertEq(staking.slashableStake(alice.operator, AGENT), 0, "active and unbonding taken");
        vm.assertEq(staking.unbondingStake(alice.operator, AGENT), 0, "unbonding taken");
        vm.assertEq(token.balanceOf(address(staking)), stakingBalance - AGENT_STAKE, "no more than the stake");

        vm.expectEmit(address(disputes));
        emit IDisputeManager.DisputeResolved(second, UPHELD, 0);
        disputes.resolve(second);
        vm.assertEq(token.balanceOf(address(staking)), stakingBalance - AGENT_STAKE, "nothing more");
        _assertConserved();
    }

    function test_resolve_afterUnbondingUnlocked_slashesOnlyLockedStake() public {
        vm.prank(alice.operator);
        staking.requestUnstake(AGENT, 4000 ether);
        uint256 disputeId = _challenge(challenger, _aliceReceipt(1, 0), OUTPUT);
        _vote(v1, disputeId, true);
        _skip(UNBONDING_PERIOD + 1);

        uint256 slash = (AGENT_STAKE - 4000 ether) * OUTPUT_SLASH_BPS / 10_000;
        vm.expectEmit(address(disputes));
        emit IDisputeManager.DisputeResolved(disputeId, UPHELD, slash);
        disputes.resolve(disputeId);
        vm.assertEq(staking.unbondingStake(alice.operator, AGENT), 4000 ether, "unlocked stake untouched");
    }

    function test_vote_withStakeMovedInAfterOpening_doesNotCount() public {
        uint256 disputeId = _challenge(challenger, _aliceReceipt(1, 1), OUTPUT);
        uint256 snapshotBlock = block.number - 1;
        address newcomer = _validator("newcomer", 50_000 ether);
        vm.prank(v1);
        staking.stake(VALIDATOR, 50_000 ether);
        _nextBlock();

        vm.expectRevert(
            abi.encodeWithSelector(
                IDisputeManager.DisputeManagerNoVotingWeight.selector, disputeId, newcomer, snapshotBlock
            )
        );
        vm.prank(newcomer);
        disputes.vote(disputeId, false);

        vm.expectEmit(address(disputes));
        emit IDisputeManager.Voted(disputeId, v1, false, V1_STAKE);
        vm.prank(v1);
        disputes.vote(disputeId, false);
    }

    function test_vote_byAgent_reverts() public {
        vm.prank(alice.operator);
        staking.stake(VALIDATOR, MIN_VALIDATOR_STAKE);
        _nextBlock();
        uint256 disputeId = _challenge(challenger, _aliceReceipt(1, 1), OUTPUT);
        vm.expectRevert(
            abi.encodeWithSelector(IDisputeManager.DisputeManagerPartyCannotVote.selector, disputeId, alice.operator)
        );
        vm.prank(alice.operator);
        disputes.vote(disputeId, false);
    }

    function test_vote_byAgentSigner_reverts() public {
        _fund(alice.signer, MIN_VALIDATOR_STAKE);
        vm.startPrank(alice.signer);
        token.approve(address(staking), MIN_VALIDATOR_STAKE);
        staking.stake(VALIDATOR, MIN_VALIDATOR_STAKE);
        vm.stopPrank();
        _holders.push(alice.signer);
        _nextBlock();
        uint256 disputeId = _challenge(challenger, _aliceReceipt(1, 1), OUTPUT);
        vm.expectRevert(
            abi.encodeWithSelector(IDisputeManager.DisputeManagerPartyCannotVote.selector, disputeId, alice.signer)
        );
        vm.prank(alice.signer);
        disputes.vote(disputeId, false);
    }

    function test_vote_byChallenger_reverts() public {
        uint256 disputeId = _challenge(v1, _aliceReceipt(1, 1), OUTPUT);
        vm.expectRevert(abi.encodeWithSelector(IDisputeManager.DisputeManagerPartyCannotVote.selector, disputeId, v1));
        vm.prank(v1);
        disputes.vote(disputeId, true);
    }

    function test_vote_twice_reverts() public {
        uint256 disputeId = _challenge(challenger, _aliceReceipt(1, 1), OUTPUT);
        _vote(v1, disputeId, true);
        vm.expectRevert(abi.encodeWithSelector(IDisputeManager.DisputeManagerAlreadyVoted.selector, disputeId, v1));
        vm.prank(v1);
        disputes.vote(disputeId, false);
    }

    function test_vote_afterVotingPeriod_reverts() public {
        uint256 disputeId = _challenge(challenger, _aliceReceipt(1, 1), OUTPUT);
        uint256 deadline = block.timestamp + VOTING_PERIOD;
        vm.warp(deadline + 1);
        vm.expectRevert(
            abi.encodeWithSelector(IDisputeManager.DisputeManagerDeadlinePassed.selector, disputeId, deadline)
        );
        vm.prank(v1);
        disputes.vote(disputeId, true);
    }

    function test_vote_onInclusionChallenge_reverts() public {
        uint256 disputeId = _challengeInclusion(challenger, _aliceReceipt(1, 7));
        vm.expectRevert(
            abi.encodeWithSelector(IDisputeManager.DisputeManagerWrongKind.selector, disputeId, WITHHOLDING)
        );
        vm.prank(v1);
        disputes.vote(disputeId, true);
    }

    function test_vote_onResolvedDispute_reverts() public {
        uint256 disputeId = _challenge(challenger, _aliceReceipt(1, 1), OUTPUT);
        _skip(VOTING_PERIOD + 1);
        disputes.resolve(disputeId);
        vm.expectRevert(
            abi.encodeWithSelector(
                IDisputeManager.DisputeManagerUnexpectedState.selector, disputeId, REJECTED, OPEN_BITMAP
            )
        );
        vm.prank(v1);
        disputes.vote(disputeId, true);
    }

    function test_resolve_beforeVotingDeadline_reverts() public {
        uint256 disputeId = _challenge(challenger, _aliceReceipt(1, 1), OUTPUT);
        uint256 deadline = block.timestamp + VOTING_PERIOD;
        vm.warp(deadline);
        vm.expectRevert(
            abi.encodeWithSelector(IDisputeManager.DisputeManagerDeadlineNotPassed.selector, disputeId, deadline)
        );
        disputes.resolve(disputeId);
    }

    function test_challenge_withObjectiveKind_reverts() public {
        IReceiptRegistry.Receipt memory r = _aliceReceipt(1, 1);
        bytes memory sig = _sign(alice.signerKey, r);
        vm.expectRevert(abi.encodeWithSelector(IDisputeManager.DisputeManagerInvalidKind.selector, EQUIVOCATION));
        disputes.challenge(r, sig, EQUIVOCATION, EVIDENCE);
        vm.expectRevert(abi.encodeWithSelector(IDisputeManager.DisputeManagerInvalidKind.selector, WITHHOLDING));
        disputes.challenge(r, sig, WITHHOLDING, EVIDENCE);
    }

    function test_challenge_ofSkippedEpoch_reverts() public {
        _commitEpoch(alice, payer, 3, 1, _addresses(contributor1), _amounts(1 ether));
        IReceiptRegistry.Receipt memory r = _aliceReceipt(2, 0);
        bytes memory sig = _sign(alice.signerKey, r);
        vm.expectRevert(
            abi.encodeWithSelector(
                IDisputeManager.DisputeManagerEpochNotDisputable.selector,
                alice.operator,
                uint64(2),
                IReceiptRegistry.EpochStatus.Skipped
            )
        );
        disputes.challenge(r, sig, OUTPUT, EVIDENCE);
    }

    function test_challenge_afterChallengeWindow_reverts() public {
        IReceiptRegistry.Receipt memory r = _aliceReceipt(1, 1);
        bytes memory sig = _sign(alice.signerKey, r);
        vm.warp(epoch1Deadline + 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                IDisputeManager.DisputeManagerChallengeWindowClosed.selector, alice.operator, uint64(1), epoch1Deadline
            )
        );
        disputes.challenge(r, sig, OUTPUT, EVIDENCE);
    }

    function test_challenge_sameReceiptAndKindTwice_reverts() public {
        IReceiptRegistry.Receipt memory r = _aliceReceipt(1, 1);
        uint256 disputeId = _challenge(challenger, r, OUTPUT);
        bytes memory sig = _sign(alice.signerKey, r);
        vm.expectRevert(abi.encodeWithSelector(IDisputeManager.DisputeManagerAlreadyDisputed.selector, disputeId));
        vm.prank(payer);
        disputes.challenge(r, sig, OUTPUT, EVIDENCE);

        // Another kind of fault of the same receipt is another dispute.
        vm.assertEq(_challenge(payer, r, ATTRIBUTION), disputeId + 1, "attribution");
        vm.assertEq(disputes.openDisputeCount(alice.operator, 1), 2, "two open");
    }

    function test_challenge_totalsOncePerEpoch_reverts() public {
        uint256 disputeId = _challenge(challenger, _aliceReceipt(1, 0), TOTALS);
        IReceiptRegistry.Receipt memory other = _aliceReceipt(1, 3);
        bytes memory sig = _sign(alice.signerKey, other);
        vm.assertEq(disputes.disputeIdOf(TOTALS, other), disputeId, "keyed by epoch");
        vm.expectRevert(abi.encodeWithSelector(IDisputeManager.DisputeManagerAlreadyDisputed.selector, disputeId));
        vm.prank(payer);
        disputes.challenge(other, sig, TOTALS, EVIDENCE);
    }

    function test_disputeIdOf_whenUndisputed_isZero() public view {
        IReceiptRegistry.Receipt memory r = _aliceReceipt(1, 0);
        for (uint256 kind = 0; kind <= uint256(TOTALS); ++kind) {
            vm.assertEq(disputes.disputeIdOf(IDisputeManager.DisputeKind(kind), r), 0, "none");
        }
    }

    function test_dispute_whenUnknown_isEmpty() public view {
        IDisputeManager.Dispute memory d = disputes.dispute(42);
        vm.assertEq(uint256(d.state), uint256(NONE), "none");
        vm.assertEq(d.agent, address(0), "agent");
    }

    // --------------------------------------------------------------------------------------------------------------
    // Helpers
    // --------------------------------------------------------------------------------------------------------------

    /// @dev Runs a voted challenge of `kind` to its end: v1 and v2 (80% of validator stake) vote `upheld`.
    function _assertVotedLifecycle(IDisputeManager.DisputeKind kind, bool upheld) internal {
        IReceiptRegistry.Receipt memory r = _aliceReceipt(1, 1);
        uint256 challengerBalance = token.balanceOf(challenger);
        uint256 agentBalance = token.balanceOf(alice.operator);
        uint256 payerBalance = token.balanceOf(payer);
        uint256 disputeId = _challenge(challenger, r, kind);
        vm.assertEq(token.balanceOf(challenger), challengerBalance - CHALLENGE_BOND, "bond pulled");

        _vote(v1, disputeId, upheld);
        _vote(v2, disputeId, upheld);
        _vote(v3, disputeId, !upheld);
        _skip(VOTING_PERIOD + 1);

        uint256 slash = upheld ? AGENT_STAKE * OUTPUT_SLASH_BPS / 10_000 : 0;
        uint256 reward = slash * CHALLENGER_REWARD_BPS / 10_000;
        vm.expectEmit(address(disputes));
        emit IDisputeManager.DisputeResolved(disputeId, upheld ? UPHELD : REJECTED, slash);
        IDisputeManager.DisputeState state = disputes.resolve(disputeId);
        if (kind == OUTPUT) vm.snapshotGasLastCall(upheld ? "resolve_upheld" : "resolve_rejected");

        vm.assertEq(uint256(state), uint256(upheld ? UPHELD : REJECTED), "state");
        vm.assertEq(uint256(disputes.dispute(disputeId).state), uint256(state), "stored state");
        vm.assertEq(disputes.openDisputeCount(alice.operator, 1), 0, "closed");
        vm.assertEq(token.balanceOf(address(disputes)), 0, "no bond held");
        vm.assertEq(staking.slashableStake(alice.operator, AGENT), AGENT_STAKE - slash, "stake");
        if (upheld) {
            vm.assertEq(token.balanceOf(challenger), challengerBalance + reward, "bond back plus reward");
            vm.assertEq(token.balanceOf(payer), payerBalance + PRICE, "payer refunded");
            vm.assertEq(token.balanceOf(treasury), slash - reward - PRICE, "treasury");
            vm.assertEq(token.balanceOf(alice.operator), agentBalance, "agent");
        } else {
            vm.assertEq(token.balanceOf(challenger), challengerBalance - CHALLENGE_BOND, "bond lost");
            vm.assertEq(token.balanceOf(alice.operator), agentBalance + CHALLENGE_BOND, "bond to agent");
            vm.assertEq(token.balanceOf(payer), payerBalance, "payer");
            vm.assertEq(token.balanceOf(treasury), 0, "treasury");
        }
        _assertConserved();

        // A resolved dispute never changes again.
        vm.expectRevert(
            abi.encodeWithSelector(
                IDisputeManager.DisputeManagerUnexpectedState.selector, disputeId, state, OPEN_BITMAP
            )
        );
        disputes.resolve(disputeId);
    }

    function _epoch1() internal view returns (EpochData memory) {
        return _epochData(alice.operator, payer, 1, RECEIPTS_IN_EPOCH, _addresses(contributor1), _amounts(1 ether));
    }

    function _aliceReceipt(uint64 epoch, uint64 seq) internal view returns (IReceiptRegistry.Receipt memory) {
        return _receipt(alice.operator, payer, epoch, seq, bytes32(0));
    }

    /// @dev Two receipts of alice for the same request with different outputs.
    function _equivocatingPair()
        internal
        view
        returns (IReceiptRegistry.Receipt memory a, IReceiptRegistry.Receipt memory b)
    {
        a = _receipt(alice.operator, payer, 1, 0, bytes32(0));
        b = _receipt(alice.operator, payer, 1, 0, keccak256("another answer"));
    }

    function _challenge(address from, IReceiptRegistry.Receipt memory r, IDisputeManager.DisputeKind kind)
        internal
        returns (uint256)
    {
        bytes memory sig = _sign(alice.signerKey, r);
        vm.prank(from);
        return disputes.challenge(r, sig, kind, EVIDENCE);
    }

    function _challengeInclusion(address from, IReceiptRegistry.Receipt memory r) internal returns (uint256) {
        bytes memory sig = _sign(alice.signerKey, r);
        vm.prank(from);
        return disputes.challengeInclusion(r, sig);
    }

    function _vote(address voter, uint256 disputeId, bool uphold) internal {
        vm.prank(voter);
        disputes.vote(disputeId, uphold);
    }

    function _hash(IReceiptRegistry.Receipt memory r) internal view returns (bytes32) {
        return receipts.receiptStructHash(r);
    }

    function _expectInvalidParameter(IDisputeManager.Parameter parameter, uint256 value, uint256 min, uint256 max)
        internal
    {
        IDisputeManager.Parameters memory p = _defaultParameters();
        if (parameter == IDisputeManager.Parameter.ChallengeWindow) {
            p.challengeWindow = SafeCast.toUint64(value);
        } else if (parameter == IDisputeManager.Parameter.ResponseWindow) {
            p.responseWindow = SafeCast.toUint64(value);
        } else if (parameter == IDisputeManager.Parameter.VotingPeriod) {
            p.votingPeriod = SafeCast.toUint64(value);
        } else if (parameter == IDisputeManager.Parameter.QuorumBps) {
            p.quorumBps = SafeCast.toUint16(value);
        } else if (parameter == IDisputeManager.Parameter.EquivocationSlashBps) {
            p.equivocationSlashBps = SafeCast.toUint16(value);
        } else if (parameter == IDisputeManager.Parameter.WithholdingSlashBps) {
            p.withholdingSlashBps = SafeCast.toUint16(value);
        } else if (parameter == IDisputeManager.Parameter.OutputSlashBps) {
            p.outputSlashBps = SafeCast.toUint16(value);
        } else if (parameter == IDisputeManager.Parameter.ProverRewardBps) {
            p.proverRewardBps = SafeCast.toUint16(value);
        } else if (parameter == IDisputeManager.Parameter.ChallengerRewardBps) {
            p.challengerRewardBps = SafeCast.toUint16(value);
        } else if (parameter == IDisputeManager.Parameter.ChallengeBond) {
            p.challengeBond = SafeCast.toUint96(value);
        } else {
            p.inclusionBond = SafeCast.toUint96(value);
        }
        vm.expectRevert(
            abi.encodeWithSelector(IDisputeManager.DisputeManagerInvalidParameter.selector, parameter, value, min, max)
        );
        vm.prank(owner);
        disputes.setParameters(p);
    }

    function _assertBounds(IDisputeManager.Parameter parameter, uint256 expectedMin, uint256 expectedMax)
        internal
        view
    {
        (uint256 min, uint256 max) = disputes.parameterBounds(parameter);
        vm.assertEq(min, expectedMin, "min");
        vm.assertEq(max, expectedMax, "max");
    }

    /// @dev Every OPEN is held by one of the known holders: nothing was minted, burnt or sent elsewhere.
    function _assertConserved() internal view {
        uint256 total = 0;
        for (uint256 i = 0; i < _holders.length; ++i) {
            total += token.balanceOf(_holders[i]);
        }
        vm.assertEq(total, token.totalSupply(), "OPEN conserved");
    }
}
