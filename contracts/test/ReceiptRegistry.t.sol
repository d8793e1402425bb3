// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {DisputeManager} from "../src/DisputeManager.sol";
import {ReceiptRegistry} from "../src/ReceiptRegistry.sol";
import {IAgentStaking} from "../src/interfaces/IAgentStaking.sol";
import {IDisputeManager} from "../src/interfaces/IDisputeManager.sol";
import {IReceiptRegistry} from "../src/interfaces/IReceiptRegistry.sol";
import {ProtocolFixture, TestMerkle} from "./utils/ProtocolFixture.sol";

contract ReceiptRegistryTest is ProtocolFixture {
    /// @dev A batch of claims, wrapped so helpers can return it alongside other data.
    struct RewardClaimInput {
        IReceiptRegistry.RewardClaim[] claims;
    }

    AgentKeys internal alice;
    address internal payer;
    address internal contributor1;
    address internal contributor2;

    function setUp() public {
        _deployProtocol();
        alice = _agent("alice", AGENT_STAKE);
        payer = _actor("payer");
        (contributor1,) = makeAccount("contributor1");
        (contributor2,) = makeAccount("contributor2");
        _nextBlock();
    }

    // --------------------------------------------------------------------------------------------------------------
    // Deployment and administration
    // --------------------------------------------------------------------------------------------------------------

    function test_constructor_setsState() public view {
        vm.assertEq(address(receipts.token()), address(token), "token");
        vm.assertEq(address(receipts.staking()), address(staking), "staking");
        vm.assertEq(receipts.disputeManager(), address(disputes), "dispute manager");
        vm.assertEq(receipts.attributionBps(), ATTRIBUTION_BPS, "attribution");
        vm.assertEq(receipts.owner(), owner, "owner");
        vm.assertEq(receipts.MAX_ATTRIBUTION_BPS(), 10_000, "max attribution");
        (, string memory name, string memory version, uint256 chainId, address verifyingContract,,) =
            receipts.eip712Domain();
        vm.assertEq(name, "ReceiptRegistry");
        vm.assertEq(version, "1");
        vm.assertEq(chainId, block.chainid, "chain id");
        vm.assertEq(verifyingContract, address(receipts), "verifying contract");
    }

    function test_constructor_whenStakingZero_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(IReceiptRegistry.ReceiptRegistryZeroAddress.selector));
        new ReceiptRegistry(IAgentStaking(address(0)), owner, ATTRIBUTION_BPS);
    }

    function test_constructor_whenAttributionTooHigh_reverts() public {
        vm.expectRevert(
            abi.encodeWithSelector(IReceiptRegistry.ReceiptRegistryInvalidAttributionBps.selector, 10_001, 10_000)
        );
        new ReceiptRegistry(staking, owner, 10_001);
    }

    function test_setAttributionBps_updatesAndEmits() public {
        vm.expectEmit(address(receipts));
        emit IReceiptRegistry.AttributionBpsSet(10_000);
        vm.prank(owner);
        receipts.setAttributionBps(10_000);
        vm.assertEq(receipts.attributionBps(), 10_000, "attribution");
    }

    function test_setAttributionBps_whenTooHigh_reverts() public {
        vm.expectRevert(
            abi.encodeWithSelector(IReceiptRegistry.ReceiptRegistryInvalidAttributionBps.selector, 10_001, 10_000)
        );
        vm.prank(owner);
        receipts.setAttributionBps(10_001);
    }

    function test_setAttributionBps_whenNotOwner_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, payer));
        vm.prank(payer);
        receipts.setAttributionBps(0);
    }

    function test_setDisputeManager_setsOnceAndEmits() public {
        ReceiptRegistry fresh = new ReceiptRegistry(staking, owner, ATTRIBUTION_BPS);
        IDisputeManager dm = _disputeManagerFor(fresh);
        vm.expectEmit(address(fresh));
        emit IReceiptRegistry.DisputeManagerSet(address(dm));
        vm.prank(owner);
        fresh.setDisputeManager(address(dm));
        vm.assertEq(fresh.disputeManager(), address(dm), "dispute manager");
    }

    function test_setDisputeManager_whenAlreadySet_reverts() public {
        vm.expectRevert(
            abi.encodeWithSelector(IReceiptRegistry.ReceiptRegistryDisputeManagerAlreadySet.selector, address(disputes))
        );
        vm.prank(owner);
        receipts.setDisputeManager(address(disputes));
    }

    function test_setDisputeManager_whenZero_reverts() public {
        ReceiptRegistry fresh = new ReceiptRegistry(staking, owner, ATTRIBUTION_BPS);
        vm.expectRevert(abi.encodeWithSelector(IReceiptRegistry.ReceiptRegistryZeroAddress.selector));
        vm.prank(owner);
        fresh.setDisputeManager(address(0));
    }

    function test_setDisputeManager_whenServingAnotherRegistry_reverts() public {
        ReceiptRegistry fresh = new ReceiptRegistry(staking, owner, ATTRIBUTION_BPS);
        vm.expectRevert(
            abi.encodeWithSelector(
                IReceiptRegistry.ReceiptRegistryDisputeManagerMismatch.selector, address(disputes), address(receipts)
            )
        );
        vm.prank(owner);
        fresh.setDisputeManager(address(disputes));
    }

    function test_setDisputeManager_whenNotOwner_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, payer));
        vm.prank(payer);
        receipts.setDisputeManager(address(disputes));
    }

    // --------------------------------------------------------------------------------------------------------------
    // Receipt hashing
    // --------------------------------------------------------------------------------------------------------------

    function test_receiptStructHash_isEip712Encoding() public view {
        IReceiptRegistry.Receipt memory r = _receipt(alice.operator, payer, 7, 3, keccak256("x"));
        bytes32 typeHash = keccak256(
            "Receipt(address agent,bytes32 requestId,bytes32 requestHash,bytes32 outputHash,bytes32 modelId,bytes32 engineHash,bytes32 attributionHash,address payer,uint256 price,uint64 epoch,uint64 seq)"
        );
        bytes memory head = abi.encode(typeHash, r.agent, r.requestId, r.requestHash, r.outputHash, r.modelId);
        bytes memory tail =
            abi.encode(r.engineHash, r.attributionHash, r.payer, r.price, uint256(r.epoch), uint256(r.seq));
        bytes32 expected = keccak256(bytes.concat(head, tail));
        vm.assertEq(receipts.receiptStructHash(r), expected, "struct hash");
        vm.assertEq(receipts.RECEIPT_TYPEHASH(), typeHash, "type hash");
    }

    function test_receiptDigest_usesTheRegistryDomain() public view {
        IReceiptRegistry.Receipt memory r = _receipt(alice.operator, payer, 7, 3, keccak256("x"));
        bytes32 domainSeparator = keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256("ReceiptRegistry"),
                keccak256("1"),
                block.chainid,
                address(receipts)
            )
        );
        bytes32 expected = keccak256(abi.encodePacked(hex"1901", domainSeparator, receipts.receiptStructHash(r)));
        vm.assertEq(receipts.receiptDigest(r), expected, "digest");
    }

    function test_leaves_areDoubleHashed() public view {
        IReceiptRegistry.Receipt memory r = _receipt(alice.operator, payer, 7, 3, keccak256("x"));
        bytes32 structHash = receipts.receiptStructHash(r);
        vm.assertEq(receipts.receiptLeaf(r), keccak256(bytes.concat(keccak256(abi.encode(structHash)))), "receipt leaf");
        vm.assertEq(
            receipts.rewardLeaf(contributor1, 5 ether),
            keccak256(bytes.concat(keccak256(abi.encode(contributor1, uint256(5 ether))))),
            "reward leaf"
        );
    }

    // --------------------------------------------------------------------------------------------------------------
    // commitEpoch
    // --------------------------------------------------------------------------------------------------------------

    function test_commitEpoch_storesCommitmentAndPullsRewards() public {
        EpochData memory data = _epochData(
            alice.operator, payer, 1, 10, _addresses(contributor1, contributor2), _amounts(1 ether, 2 ether)
        );
        bytes32 receiptsRoot = TestMerkle.root(data.receiptLeaves);
        bytes32 rewardsRoot = TestMerkle.root(data.rewardLeaves);
        uint256 agentBalance = token.balanceOf(alice.operator);
        uint256 deadline = block.timestamp + CHALLENGE_WINDOW;

        vm.expectEmit(address(receipts));
        emit IReceiptRegistry.EpochCommitted(
            alice.operator, 1, receiptsRoot, 10, 10 ether, rewardsRoot, 3 ether, deadline
        );
        vm.prank(alice.operator);
        receipts.commitEpoch(1, receiptsRoot, 10, 10 ether, rewardsRoot, 3 ether);
        vm.snapshotGasLastCall("commitEpoch");

        IReceiptRegistry.EpochCommitment memory c = receipts.epochCommitment(alice.operator, 1);
        vm.assertEq(c.receiptsRoot, receiptsRoot, "receipts root");
        vm.assertEq(c.rewardsRoot, rewardsRoot, "rewards root");
        vm.assertEq(c.receiptCount, 10, "count");
        vm.assertEq(c.committedAt, block.timestamp, "committed at");
        vm.assertEq(c.challengeDeadline, deadline, "deadline");
        vm.assertEq(c.feeTotal, 10 ether, "fees");
        vm.assertEq(c.rewardsTotal, 3 ether, "rewards");
        vm.assertEq(c.rewardsClaimed, 0, "claimed");
        vm.assertEq(receipts.latestEpoch(alice.operator), 1, "latest");
        vm.assertEq(token.balanceOf(address(receipts)), 3 ether, "registry balance");
        vm.assertEq(token.balanceOf(alice.operator), agentBalance - 3 ether, "agent balance");
    }

    function test_commitEpoch_withoutRewards_pullsNothing() public {
        vm.prank(owner);
        receipts.setAttributionBps(0);
        EpochData memory data = _epochData(alice.operator, payer, 1, 1, new address[](0), new uint256[](0));
        _commit(alice.operator, data);
        vm.assertEq(token.balanceOf(address(receipts)), 0, "registry balance");
        vm.assertEq(receipts.epochCommitment(alice.operator, 1).rewardsRoot, bytes32(0), "no rewards root");
    }

    function test_commitEpoch_whenDisputeManagerNotSet_reverts() public {
        ReceiptRegistry fresh = new ReceiptRegistry(staking, owner, ATTRIBUTION_BPS);
        vm.expectRevert(abi.encodeWithSelector(IReceiptRegistry.ReceiptRegistryDisputeManagerNotSet.selector));
        vm.prank(alice.operator);
        fresh.commitEpoch(1, bytes32(uint256(1)), 1, 0, bytes32(0), 0);
    }

    function test_commitEpoch_whenNotActiveAgent_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(IReceiptRegistry.ReceiptRegistryNotActiveAgent.selector, payer));
        vm.prank(payer);
        receipts.commitEpoch(1, bytes32(uint256(1)), 1, 0, bytes32(0), 0);
    }

    function test_commitEpoch_whenAgentUnstaked_reverts() public {
        vm.prank(alice.operator);
        staking.requestUnstake(AGENT, AGENT_STAKE);
        vm.expectRevert(abi.encodeWithSelector(IReceiptRegistry.ReceiptRegistryNotActiveAgent.selector, alice.operator));
        vm.prank(alice.operator);
        receipts.commitEpoch(1, bytes32(uint256(1)), 1, 0, bytes32(0), 0);
    }

    function test_commitEpoch_whenEpochZero_reverts() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IReceiptRegistry.ReceiptRegistryEpochNotIncreasing.selector, alice.operator, uint64(0), uint64(0)
            )
        );
        vm.prank(alice.operator);
        receipts.commitEpoch(0, bytes32(uint256(1)), 1, 0, bytes32(0), 0);
    }

    function test_commitEpoch_whenEpochNotIncreasing_reverts() public {
        _commitEpoch(alice, payer, 5, 1, _addresses(contributor1), _amounts(1 ether));
        for (uint64 epoch = 4; epoch <= 5; ++epoch) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    IReceiptRegistry.ReceiptRegistryEpochNotIncreasing.selector, alice.operator, epoch, uint64(5)
                )
            );
            vm.prank(alice.operator);
            receipts.commitEpoch(epoch, bytes32(uint256(1)), 1, 0, bytes32(0), 0);
        }
    }

    function test_commitEpoch_whenEmpty_reverts() public {
        vm.expectRevert(
            abi.encodeWithSelector(IReceiptRegistry.ReceiptRegistryEmptyEpoch.selector, alice.operator, uint64(1))
        );
        vm.prank(alice.operator);
        receipts.commitEpoch(1, bytes32(0), 1, 0, bytes32(0), 0);

        vm.expectRevert(
            abi.encodeWithSelector(IReceiptRegistry.ReceiptRegistryEmptyEpoch.selector, alice.operator, uint64(1))
        );
        vm.prank(alice.operator);
        receipts.commitEpoch(1, bytes32(uint256(1)), 0, 0, bytes32(0), 0);
    }

    function test_commitEpoch_whenRewardsWithoutRoot_reverts() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IReceiptRegistry.ReceiptRegistryMissingRewardsRoot.selector, alice.operator, uint64(1), 1 ether
            )
        );
        vm.prank(alice.operator);
        receipts.commitEpoch(1, bytes32(uint256(1)), 1, 1 ether, bytes32(0), 1 ether);
    }

    function test_commitEpoch_whenRewardsBelowShare_reverts() public {
        // 20% of 10 OPEN of fees is 2 OPEN.
        vm.expectRevert(
            abi.encodeWithSelector(IReceiptRegistry.ReceiptRegistryInsufficientRewards.selector, 2 ether - 1, 2 ether)
        );
        vm.prank(alice.operator);
        receipts.commitEpoch(1, bytes32(uint256(1)), 10, 10 ether, bytes32(uint256(2)), 2 ether - 1);
    }

    function test_commitEpoch_whenFeesOverflowStorage_reverts() public {
        uint256 fees = uint256(type(uint96).max) + 1;
        vm.expectRevert(abi.encodeWithSelector(SafeCast.SafeCastOverflowedUintDowncast.selector, 96, fees));
        vm.prank(alice.operator);
        receipts.commitEpoch(1, bytes32(uint256(1)), 1, fees, bytes32(uint256(2)), 1);
    }

    function testFuzz_commitEpoch_requiresAttributionShare(uint96 feeTotal, uint256 rewardsTotal) public {
        rewardsTotal = bound(rewardsTotal, 1, ACTOR_FUNDS - AGENT_STAKE);
        uint256 required = uint256(feeTotal) * ATTRIBUTION_BPS / 10_000;
        if (rewardsTotal < required) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    IReceiptRegistry.ReceiptRegistryInsufficientRewards.selector, rewardsTotal, required
                )
            );
        }
        vm.prank(alice.operator);
        receipts.commitEpoch(1, bytes32(uint256(1)), 1, feeTotal, bytes32(uint256(2)), rewardsTotal);
        if (rewardsTotal >= required) {
            vm.assertEq(token.balanceOf(address(receipts)), rewardsTotal, "funded");
        }
    }

    // --------------------------------------------------------------------------------------------------------------
    // epochStatus and verifyInclusion
    // --------------------------------------------------------------------------------------------------------------

    function test_epochStatus_reportsPendingCommittedAndSkipped() public {
        _assertStatus(1, IReceiptRegistry.EpochStatus.Pending, 0);
        _commitEpoch(alice, payer, 2, 1, _addresses(contributor1), _amounts(1 ether));
        uint256 deadline2 = block.timestamp + CHALLENGE_WINDOW;
        _assertStatus(1, IReceiptRegistry.EpochStatus.Skipped, deadline2);
        _assertStatus(2, IReceiptRegistry.EpochStatus.Committed, deadline2);
        _assertStatus(3, IReceiptRegistry.EpochStatus.Pending, 0);

        _skip(2 hours);
        _commitEpoch(alice, payer, 4, 1, _addresses(contributor1), _amounts(1 ether));
        uint256 deadline4 = block.timestamp + CHALLENGE_WINDOW;
        // A skipped epoch follows the latest commit's deadline; a committed one keeps its own.
        _assertStatus(0, IReceiptRegistry.EpochStatus.Skipped, deadline4);
        _assertStatus(1, IReceiptRegistry.EpochStatus.Skipped, deadline4);
        _assertStatus(2, IReceiptRegistry.EpochStatus.Committed, deadline2);
        _assertStatus(3, IReceiptRegistry.EpochStatus.Skipped, deadline4);
        _assertStatus(4, IReceiptRegistry.EpochStatus.Committed, deadline4);
    }

    function test_verifyInclusion_acceptsOnlyCommittedLeavesWithinCount() public {
        EpochData memory data = _commitEpoch(alice, payer, 1, 5, _addresses(contributor1), _amounts(1 ether));
        for (uint256 i = 0; i < 5; ++i) {
            vm.assertTrue(_verify(data.receipts[i], _receiptProof(data, i)), "included");
        }
        // Right proof, wrong leaf.
        vm.assertFalse(_verify(data.receipts[0], _receiptProof(data, 1)), "wrong proof");
        // A receipt whose seq lies beyond the committed count never counts, even if it were in the tree.
        IReceiptRegistry.Receipt memory beyond = _receipt(alice.operator, payer, 1, 5, bytes32(0));
        vm.assertFalse(_verify(beyond, _receiptProof(data, 0)), "beyond count");
        // Another epoch's commitment does not cover it.
        IReceiptRegistry.Receipt memory other = _receipt(alice.operator, payer, 2, 0, bytes32(0));
        vm.assertFalse(_verify(other, new bytes32[](0)), "uncommitted epoch");
    }

    // --------------------------------------------------------------------------------------------------------------
    // claimReward and claimRewards
    // --------------------------------------------------------------------------------------------------------------

    function test_claimReward_paysContributorOnceWindowPassed() public {
        EpochData memory data =
            _commitEpoch(alice, payer, 1, 10, _addresses(contributor1, contributor2), _amounts(1 ether, 2 ether));
        _skip(CHALLENGE_WINDOW + 1);

        vm.expectEmit(address(receipts));
        emit IReceiptRegistry.RewardClaimed(alice.operator, 1, contributor2, 2 ether);
        // Anyone may send the claim; the contributor is paid.
        vm.prank(payer);
        receipts.claimReward(alice.operator, 1, contributor2, 2 ether, _rewardProof(data, 1));
        vm.snapshotGasLastCall("claimReward");

        vm.assertEq(token.balanceOf(contributor2), 2 ether, "paid");
        vm.assertTrue(receipts.isClaimed(alice.operator, 1, contributor2), "claimed");
        vm.assertFalse(receipts.isClaimed(alice.operator, 1, contributor1), "other not claimed");
        vm.assertEq(receipts.epochCommitment(alice.operator, 1).rewardsClaimed, 2 ether, "claimed total");
        vm.assertEq(token.balanceOf(address(receipts)), 1 ether, "rest held");
    }

    function test_claimReward_whenEpochNotCommitted_reverts() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IReceiptRegistry.ReceiptRegistryEpochNotCommitted.selector, alice.operator, uint64(1)
            )
        );
        receipts.claimReward(alice.operator, 1, contributor1, 1 ether, new bytes32[](0));
    }

    function test_claimReward_beforeWindowPassed_reverts() public {
        EpochData memory data = _commitEpoch(alice, payer, 1, 1, _addresses(contributor1), _amounts(1 ether));
        uint256 deadline = block.timestamp + CHALLENGE_WINDOW;
        bytes memory expected = abi.encodeWithSelector(
            IReceiptRegistry.ReceiptRegistryChallengeWindowOpen.selector, alice.operator, uint64(1), deadline
        );
        vm.expectRevert(expected);
        receipts.claimReward(alice.operator, 1, contributor1, 1 ether, _rewardProof(data, 0));

        // Still closed at the deadline itself: disputes may be opened up to and including it.
        vm.warp(deadline);
        vm.expectRevert(expected);
        receipts.claimReward(alice.operator, 1, contributor1, 1 ether, _rewardProof(data, 0));

        vm.warp(deadline + 1);
        receipts.claimReward(alice.operator, 1, contributor1, 1 ether, _rewardProof(data, 0));
        vm.assertEq(token.balanceOf(contributor1), 1 ether, "paid after the deadline");
    }

    function test_claimReward_whileDisputed_revertsUntilResolved() public {
        EpochData memory data = _commitEpoch(alice, payer, 1, 2, _addresses(contributor1), _amounts(1 ether));
        _nextBlock();
        bytes memory signature = _sign(alice.signerKey, data.receipts[0]);
        vm.prank(payer);
        uint256 disputeId =
            disputes.challenge(data.receipts[0], signature, IDisputeManager.DisputeKind.Output, bytes32(0));
        _skip(CHALLENGE_WINDOW + 1);

        vm.expectRevert(
            abi.encodeWithSelector(
                IReceiptRegistry.ReceiptRegistryEpochDisputed.selector, alice.operator, uint64(1), uint256(1)
            )
        );
        receipts.claimReward(alice.operator, 1, contributor1, 1 ether, _rewardProof(data, 0));

        _skip(VOTING_PERIOD);
        disputes.resolve(disputeId);
        receipts.claimReward(alice.operator, 1, contributor1, 1 ether, _rewardProof(data, 0));
        vm.assertEq(token.balanceOf(contributor1), 1 ether, "paid once the dispute is resolved");
    }

    function test_claimReward_twice_reverts() public {
        EpochData memory data = _commitEpoch(alice, payer, 1, 1, _addresses(contributor1), _amounts(1 ether));
        _skip(CHALLENGE_WINDOW + 1);
        receipts.claimReward(alice.operator, 1, contributor1, 1 ether, _rewardProof(data, 0));

        vm.expectRevert(
            abi.encodeWithSelector(
                IReceiptRegistry.ReceiptRegistryAlreadyClaimed.selector, alice.operator, uint64(1), contributor1
            )
        );
        receipts.claimReward(alice.operator, 1, contributor1, 1 ether, _rewardProof(data, 0));
    }

    function test_claimReward_withWrongAmountOrProof_reverts() public {
        EpochData memory data =
            _commitEpoch(alice, payer, 1, 1, _addresses(contributor1, contributor2), _amounts(1 ether, 2 ether));
        _skip(CHALLENGE_WINDOW + 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                IReceiptRegistry.ReceiptRegistryInvalidProof.selector, alice.operator, uint64(1), contributor1, 2 ether
            )
        );
        receipts.claimReward(alice.operator, 1, contributor1, 2 ether, _rewardProof(data, 0));

        vm.expectRevert(
            abi.encodeWithSelector(
                IReceiptRegistry.ReceiptRegistryInvalidProof.selector, alice.operator, uint64(1), contributor1, 1 ether
            )
        );
        receipts.claimReward(alice.operator, 1, contributor1, 1 ether, _rewardProof(data, 1));
    }

    function test_claimReward_whenTreeExceedsFunding_reverts() public {
        // The agent funds 4 OPEN (at least the 20% of 10 OPEN of fees) but its tree promises 3 + 3.
        EpochData memory data = _epochData(
            alice.operator, payer, 1, 10, _addresses(contributor1, contributor2), _amounts(3 ether, 3 ether)
        );
        vm.prank(alice.operator);
        receipts.commitEpoch(
            1, TestMerkle.root(data.receiptLeaves), 10, 10 ether, TestMerkle.root(data.rewardLeaves), 4 ether
        );
        _skip(CHALLENGE_WINDOW + 1);
        receipts.claimReward(alice.operator, 1, contributor1, 3 ether, _rewardProof(data, 0));

        vm.expectRevert(
            abi.encodeWithSelector(
                IReceiptRegistry.ReceiptRegistryRewardsExhausted.selector, alice.operator, uint64(1), 3 ether, 1 ether
            )
        );
        receipts.claimReward(alice.operator, 1, contributor2, 3 ether, _rewardProof(data, 1));
    }

    function test_claimRewards_paysTenEpochsInOneTransfer() public {
        RewardClaimInput memory input = _commitTenEpochs();
        _skip(CHALLENGE_WINDOW + 1);

        vm.prank(contributor1);
        uint256 total = receipts.claimRewards(contributor1, input.claims);
        vm.snapshotGasLastCall("claimRewards_10");

        vm.assertEq(total, 55 ether, "total");
        vm.assertEq(token.balanceOf(contributor1), 55 ether, "paid");
        for (uint64 epoch = 1; epoch <= 10; ++epoch) {
            vm.assertTrue(receipts.isClaimed(alice.operator, epoch, contributor1), "claimed");
        }
    }

    function test_claimRewards_acrossAgents() public {
        AgentKeys memory bob = _agent("bob", AGENT_STAKE);
        EpochData memory a = _commitEpoch(alice, payer, 3, 1, _addresses(contributor1), _amounts(1 ether));
        EpochData memory b = _commitEpoch(bob, payer, 9, 1, _addresses(contributor1), _amounts(2 ether));
        _skip(CHALLENGE_WINDOW + 1);

        IReceiptRegistry.RewardClaim[] memory claims = new IReceiptRegistry.RewardClaim[](2);
        claims[0] = IReceiptRegistry.RewardClaim(alice.operator, 3, 1 ether, _rewardProof(a, 0));
        claims[1] = IReceiptRegistry.RewardClaim(bob.operator, 9, 2 ether, _rewardProof(b, 0));
        vm.assertEq(receipts.claimRewards(contributor1, claims), 3 ether, "total");
        vm.assertEq(token.balanceOf(contributor1), 3 ether, "paid");
    }

    function test_claimRewards_whenOneClaimIsBad_revertsWholeBatch() public {
        RewardClaimInput memory input = _commitTenEpochs();
        _skip(CHALLENGE_WINDOW + 1);
        input.claims[7].amount += 1;

        vm.expectRevert(
            abi.encodeWithSelector(
                IReceiptRegistry.ReceiptRegistryInvalidProof.selector,
                alice.operator,
                uint64(8),
                contributor1,
                8 ether + 1
            )
        );
        receipts.claimRewards(contributor1, input.claims);
        vm.assertEq(token.balanceOf(contributor1), 0, "nothing paid");
        vm.assertFalse(receipts.isClaimed(alice.operator, 1, contributor1), "nothing recorded");
    }

    function test_claimRewards_whenSameEpochTwice_reverts() public {
        RewardClaimInput memory input = _commitTenEpochs();
        _skip(CHALLENGE_WINDOW + 1);
        input.claims[9] = input.claims[0];

        vm.expectRevert(
            abi.encodeWithSelector(
                IReceiptRegistry.ReceiptRegistryAlreadyClaimed.selector, alice.operator, uint64(1), contributor1
            )
        );
        receipts.claimRewards(contributor1, input.claims);
    }

    function test_claimRewards_whenOneEpochStillInWindow_reverts() public {
        RewardClaimInput memory input = _commitTenEpochs();
        _skip(CHALLENGE_WINDOW + 1);
        EpochData memory late = _commitEpoch(alice, payer, 11, 1, _addresses(contributor1), _amounts(1 ether));
        IReceiptRegistry.RewardClaim[] memory claims = new IReceiptRegistry.RewardClaim[](2);
        claims[0] = input.claims[0];
        claims[1] = IReceiptRegistry.RewardClaim(alice.operator, 11, 1 ether, _rewardProof(late, 0));

        vm.expectRevert(
            abi.encodeWithSelector(
                IReceiptRegistry.ReceiptRegistryChallengeWindowOpen.selector,
                alice.operator,
                uint64(11),
                block.timestamp + CHALLENGE_WINDOW
            )
        );
        receipts.claimRewards(contributor1, claims);
    }

    function test_claimRewards_empty_paysNothing() public {
        vm.assertEq(receipts.claimRewards(contributor1, new IReceiptRegistry.RewardClaim[](0)), 0, "total");
    }

    // --------------------------------------------------------------------------------------------------------------
    // Helpers
    // --------------------------------------------------------------------------------------------------------------

    /// @dev Commits epochs 1..10 of alice, each paying contributor1 `epoch` OPEN (and contributor2 1 OPEN), and
    /// returns contributor1's claims of all ten.
    function _commitTenEpochs() internal returns (RewardClaimInput memory input) {
        input.claims = new IReceiptRegistry.RewardClaim[](10);
        for (uint64 epoch = 1; epoch <= 10; ++epoch) {
            EpochData memory data = _commitEpoch(
                alice, payer, epoch, 4, _addresses(contributor1, contributor2), _amounts(epoch * 1 ether, 1 ether)
            );
            input.claims[epoch - 1] =
                IReceiptRegistry.RewardClaim(alice.operator, epoch, epoch * 1 ether, _rewardProof(data, 0));
        }
    }

    function _assertStatus(uint64 epoch, IReceiptRegistry.EpochStatus expected, uint256 expectedDeadline)
        internal
        view
    {
        (IReceiptRegistry.EpochStatus status, uint256 deadline) = receipts.epochStatus(alice.operator, epoch);
        vm.assertEq(uint256(status), uint256(expected), "status");
        vm.assertEq(deadline, expectedDeadline, "deadline");
    }

    function _verify(IReceiptRegistry.Receipt memory r, bytes32[] memory proof) internal view returns (bool) {
        return receipts.verifyInclusion(r.agent, r.epoch, r.seq, receipts.receiptStructHash(r), proof);
    }

    function _disputeManagerFor(ReceiptRegistry registry) internal returns (IDisputeManager) {
        return new DisputeManager(staking, registry, owner, _defaultParameters());
    }
}
