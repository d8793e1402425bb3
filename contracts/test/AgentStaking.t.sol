// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {AgentStaking} from "../src/AgentStaking.sol";
import {OpenToken} from "../src/OpenToken.sol";
import {IAgentStaking} from "../src/interfaces/IAgentStaking.sol";
import {StakingDisputeManagerMock} from "./mocks/StakingDisputeManagerMock.sol";
import {Test} from "./utils/Test.sol";

contract AgentStakingTest is Test {
    uint256 internal constant UNBONDING_PERIOD = 7 days;
    uint256 internal constant DM_MIN_UNBONDING = 3 days;
    uint256 internal constant MIN_AGENT_STAKE = 1000 ether;
    uint256 internal constant MIN_VALIDATOR_STAKE = 10_000 ether;
    uint256 internal constant ACTOR_FUNDS = 1_000_000 ether;
    uint256 internal constant START_TIME = 1_700_000_000;
    uint256 internal constant START_BLOCK = 1000;

    IAgentStaking.Role internal constant AGENT = IAgentStaking.Role.Agent;
    IAgentStaking.Role internal constant VALIDATOR = IAgentStaking.Role.Validator;

    bytes32 internal constant MODEL_ID = keccak256("tiny-llama weights");
    uint256 internal constant PRICE = 0.01 ether;
    string internal constant ENDPOINT = "https://agent.example/api";

    OpenToken internal token;
    AgentStaking internal staking;
    StakingDisputeManagerMock internal dm;

    address internal owner;
    address internal treasury;
    address internal alice;
    address internal bob;
    address internal carol;
    address internal aliceSigner;
    address internal aliceSigner2;

    function setUp() public {
        vm.warp(START_TIME);
        vm.roll(START_BLOCK);
        (owner,) = makeAccount("owner");
        (treasury,) = makeAccount("treasury");
        (alice,) = makeAccount("alice");
        (bob,) = makeAccount("bob");
        (carol,) = makeAccount("carol");
        (aliceSigner,) = makeAccount("aliceSigner");
        (aliceSigner2,) = makeAccount("aliceSigner2");

        token = new OpenToken(address(this));
        staking = _deploy();
        dm = new StakingDisputeManagerMock(DM_MIN_UNBONDING);
        vm.prank(owner);
        staking.setDisputeManager(address(dm));

        address[3] memory actors = [alice, bob, carol];
        for (uint256 i = 0; i < actors.length; ++i) {
            vm.assertTrue(token.transfer(actors[i], ACTOR_FUNDS), "funding");
            vm.prank(actors[i]);
            token.approve(address(staking), type(uint256).max);
        }
    }

    // --------------------------------------------------------------------------------------------------------------
    // Constructor and ERC-6372
    // --------------------------------------------------------------------------------------------------------------

    function test_constructor_setsParameters() public {
        AgentStaking fresh = _deploy();
        vm.assertEq(address(fresh.token()), address(token), "token");
        vm.assertEq(fresh.owner(), owner, "owner");
        vm.assertEq(fresh.treasury(), treasury, "treasury");
        vm.assertEq(fresh.unbondingPeriod(), UNBONDING_PERIOD, "unbonding period");
        vm.assertEq(fresh.minimumStake(AGENT), MIN_AGENT_STAKE, "agent minimum");
        vm.assertEq(fresh.minimumStake(VALIDATOR), MIN_VALIDATOR_STAKE, "validator minimum");
        vm.assertEq(fresh.disputeManager(), address(0), "dispute manager");
        vm.assertEq(fresh.MIN_UNBONDING_PERIOD(), 1 hours, "MIN_UNBONDING_PERIOD");
        vm.assertEq(fresh.MAX_UNBONDING_PERIOD(), 365 days, "MAX_UNBONDING_PERIOD");
        vm.assertEq(fresh.MAX_UNBONDINGS(), 32, "MAX_UNBONDINGS");
        vm.assertEq(fresh.MAX_ENDPOINT_LENGTH(), 256, "MAX_ENDPOINT_LENGTH");
    }

    function test_constructor_emitsParameterEvents() public {
        vm.expectEmit();
        emit IAgentStaking.TreasurySet(treasury);
        vm.expectEmit();
        emit IAgentStaking.UnbondingPeriodSet(UNBONDING_PERIOD);
        vm.expectEmit();
        emit IAgentStaking.MinimumStakeSet(AGENT, MIN_AGENT_STAKE);
        vm.expectEmit();
        emit IAgentStaking.MinimumStakeSet(VALIDATOR, MIN_VALIDATOR_STAKE);
        _deploy();
    }

    function test_constructor_revertsWhen_tokenIsZero() public {
        vm.expectRevert(IAgentStaking.StakingZeroAddress.selector);
        new AgentStaking(IERC20(address(0)), owner, treasury, UNBONDING_PERIOD, MIN_AGENT_STAKE, MIN_VALIDATOR_STAKE);
    }

    function test_constructor_revertsWhen_ownerIsZero() public {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableInvalidOwner.selector, address(0)));
        new AgentStaking(token, address(0), treasury, UNBONDING_PERIOD, MIN_AGENT_STAKE, MIN_VALIDATOR_STAKE);
    }

    function test_constructor_revertsWhen_treasuryIsZero() public {
        vm.expectRevert(IAgentStaking.StakingZeroAddress.selector);
        new AgentStaking(token, owner, address(0), UNBONDING_PERIOD, MIN_AGENT_STAKE, MIN_VALIDATOR_STAKE);
    }

    function test_constructor_revertsWhen_unbondingPeriodTooShort() public {
        vm.expectRevert(
            abi.encodeWithSelector(IAgentStaking.StakingInvalidUnbondingPeriod.selector, 1 hours - 1, 1 hours, 365 days)
        );
        new AgentStaking(token, owner, treasury, 1 hours - 1, MIN_AGENT_STAKE, MIN_VALIDATOR_STAKE);
    }

    function test_constructor_revertsWhen_unbondingPeriodTooLong() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IAgentStaking.StakingInvalidUnbondingPeriod.selector, 365 days + 1, 1 hours, 365 days
            )
        );
        new AgentStaking(token, owner, treasury, 365 days + 1, MIN_AGENT_STAKE, MIN_VALIDATOR_STAKE);
    }

    function test_clock_isBlockNumber() public {
        vm.assertEq(staking.clock(), START_BLOCK, "clock");
        vm.roll(START_BLOCK + 5);
        vm.assertEq(staking.clock(), START_BLOCK + 5, "clock after roll");
        vm.assertEq(staking.CLOCK_MODE(), "mode=blocknumber&from=default");
    }

    // --------------------------------------------------------------------------------------------------------------
    // stake
    // --------------------------------------------------------------------------------------------------------------

    function test_stake_movesTokensAndUpdatesStake() public {
        vm.expectEmit(address(staking));
        emit IAgentStaking.Staked(alice, AGENT, 1500 ether, 1500 ether);
        vm.prank(alice);
        staking.stake(AGENT, 1500 ether);
        vm.snapshotGasLastCall("stake");

        vm.assertEq(staking.activeStake(alice, AGENT), 1500 ether, "active stake");
        vm.assertEq(staking.totalActiveStake(AGENT), 1500 ether, "total active stake");
        vm.assertEq(staking.slashableStake(alice, AGENT), 1500 ether, "slashable stake");
        vm.assertEq(token.balanceOf(address(staking)), 1500 ether, "staking balance");
        vm.assertEq(token.balanceOf(alice), ACTOR_FUNDS - 1500 ether, "alice balance");
    }

    function test_stake_topUp_addsToActiveStake() public {
        _stake(alice, AGENT, MIN_AGENT_STAKE);
        // Once at the minimum, any top-up is fine.
        vm.expectEmit(address(staking));
        emit IAgentStaking.Staked(alice, AGENT, 1, MIN_AGENT_STAKE + 1);
        _stake(alice, AGENT, 1);
        vm.assertEq(staking.activeStake(alice, AGENT), MIN_AGENT_STAKE + 1, "active stake");
    }

    function test_stake_rolesAreIndependent() public {
        _stake(alice, AGENT, MIN_AGENT_STAKE);
        _stake(alice, VALIDATOR, MIN_VALIDATOR_STAKE);
        _stake(bob, VALIDATOR, MIN_VALIDATOR_STAKE * 2);
        vm.assertEq(staking.activeStake(alice, AGENT), MIN_AGENT_STAKE, "alice agent");
        vm.assertEq(staking.activeStake(alice, VALIDATOR), MIN_VALIDATOR_STAKE, "alice validator");
        vm.assertEq(staking.totalActiveStake(AGENT), MIN_AGENT_STAKE, "total agent");
        vm.assertEq(staking.totalActiveStake(VALIDATOR), MIN_VALIDATOR_STAKE * 3, "total validator");
    }

    function test_stake_revertsWhen_amountIsZero() public {
        vm.expectRevert(IAgentStaking.StakingZeroAmount.selector);
        vm.prank(alice);
        staking.stake(AGENT, 0);
    }

    function test_stake_revertsWhen_belowMinimum() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IAgentStaking.StakingInsufficientStake.selector, alice, MIN_AGENT_STAKE - 1, MIN_AGENT_STAKE
            )
        );
        vm.prank(alice);
        staking.stake(AGENT, MIN_AGENT_STAKE - 1);
    }

    function test_stake_revertsWhen_topUpStaysBelowRaisedMinimum() public {
        _stake(alice, AGENT, MIN_AGENT_STAKE);
        vm.prank(owner);
        staking.setMinimumStake(AGENT, 3 * MIN_AGENT_STAKE);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAgentStaking.StakingInsufficientStake.selector, alice, 2 * MIN_AGENT_STAKE, 3 * MIN_AGENT_STAKE
            )
        );
        _stake(alice, AGENT, MIN_AGENT_STAKE);
    }

    function test_stake_revertsWhen_allowanceMissing() public {
        (address dave,) = makeAccount("dave");
        vm.assertTrue(token.transfer(dave, MIN_AGENT_STAKE), "funding");
        vm.expectRevert(
            abi.encodeWithSelector(
                IERC20Errors.ERC20InsufficientAllowance.selector, address(staking), 0, MIN_AGENT_STAKE
            )
        );
        vm.prank(dave);
        staking.stake(AGENT, MIN_AGENT_STAKE);
    }

    // --------------------------------------------------------------------------------------------------------------
    // requestUnstake
    // --------------------------------------------------------------------------------------------------------------

    function test_requestUnstake_opensUnbondingEntry() public {
        _stake(alice, AGENT, 5000 ether);
        uint256 unlockTime = block.timestamp + UNBONDING_PERIOD;

        vm.expectEmit(address(staking));
        emit IAgentStaking.UnstakeRequested(alice, AGENT, 1000 ether, unlockTime);
        vm.prank(alice);
        staking.requestUnstake(AGENT, 1000 ether);
        vm.snapshotGasLastCall("requestUnstake");

        IAgentStaking.Unbonding[] memory entries = staking.unbondings(alice, AGENT);
        vm.assertEq(entries.length, 1, "entries");
        vm.assertEq(entries[0].amount, 1000 ether, "entry amount");
        vm.assertEq(entries[0].unlockTime, unlockTime, "entry unlock time");
        vm.assertEq(staking.activeStake(alice, AGENT), 4000 ether, "active stake");
        vm.assertEq(staking.unbondingStake(alice, AGENT), 1000 ether, "unbonding stake");
        vm.assertEq(staking.slashableStake(alice, AGENT), 5000 ether, "slashable stake");
        vm.assertEq(staking.totalActiveStake(AGENT), 4000 ether, "total active stake");
        vm.assertEq(token.balanceOf(address(staking)), 5000 ether, "tokens stay");
    }

    function test_requestUnstake_wholeStake_isAllowed() public {
        _stake(alice, AGENT, 5000 ether);
        _requestUnstake(alice, AGENT, 5000 ether);
        vm.assertEq(staking.activeStake(alice, AGENT), 0, "active stake");
        vm.assertEq(staking.unbondingStake(alice, AGENT), 5000 ether, "unbonding stake");
    }

    function test_requestUnstake_keepsUnlockTimeWhenPeriodChanges() public {
        _stake(alice, AGENT, 5000 ether);
        _requestUnstake(alice, AGENT, 1000 ether);
        vm.prank(owner);
        staking.setUnbondingPeriod(30 days);
        _requestUnstake(alice, AGENT, 1000 ether);

        IAgentStaking.Unbonding[] memory entries = staking.unbondings(alice, AGENT);
        vm.assertEq(entries[0].unlockTime, block.timestamp + UNBONDING_PERIOD, "old period");
        vm.assertEq(entries[1].unlockTime, block.timestamp + 30 days, "new period");
    }

    function test_requestUnstake_revertsWhen_amountIsZero() public {
        _stake(alice, AGENT, 5000 ether);
        vm.expectRevert(IAgentStaking.StakingZeroAmount.selector);
        _requestUnstake(alice, AGENT, 0);
    }

    function test_requestUnstake_revertsWhen_exceedsActiveStake() public {
        _stake(alice, AGENT, 5000 ether);
        vm.expectRevert(
            abi.encodeWithSelector(IAgentStaking.StakingUnstakeExceedsStake.selector, alice, 5000 ether + 1, 5000 ether)
        );
        _requestUnstake(alice, AGENT, 5000 ether + 1);
    }

    function test_requestUnstake_revertsWhen_remainderBelowMinimum() public {
        _stake(alice, AGENT, 5000 ether);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAgentStaking.StakingInsufficientStake.selector, alice, MIN_AGENT_STAKE - 1, MIN_AGENT_STAKE
            )
        );
        _requestUnstake(alice, AGENT, 5000 ether - MIN_AGENT_STAKE + 1);
    }

    function test_requestUnstake_revertsWhen_tooManyUnbondings() public {
        _stake(alice, AGENT, 5000 ether);
        for (uint256 i = 0; i < staking.MAX_UNBONDINGS(); ++i) {
            _requestUnstake(alice, AGENT, 1 ether);
        }
        vm.expectRevert(abi.encodeWithSelector(IAgentStaking.StakingTooManyUnbondings.selector, alice, 32));
        _requestUnstake(alice, AGENT, 1 ether);

        // Withdrawing unlocked entries frees their places.
        vm.warp(block.timestamp + UNBONDING_PERIOD);
        _withdraw(alice, AGENT);
        _requestUnstake(alice, AGENT, 1 ether);
        vm.assertEq(staking.unbondings(alice, AGENT).length, 1, "entries");
    }

    // --------------------------------------------------------------------------------------------------------------
    // withdraw
    // --------------------------------------------------------------------------------------------------------------

    function test_withdraw_afterUnlock_paysAndRemovesEntries() public {
        _stake(alice, AGENT, 5000 ether);
        _requestUnstake(alice, AGENT, 1000 ether);
        _requestUnstake(alice, AGENT, 500 ether);
        vm.warp(block.timestamp + UNBONDING_PERIOD);

        vm.expectEmit(address(staking));
        emit IAgentStaking.Withdrawn(alice, AGENT, 1500 ether);
        vm.prank(alice);
        uint256 paid = staking.withdraw(AGENT);
        vm.snapshotGasLastCall("withdraw");

        vm.assertEq(paid, 1500 ether, "paid");
        vm.assertEq(token.balanceOf(alice), ACTOR_FUNDS - 3500 ether, "alice balance");
        vm.assertEq(token.balanceOf(address(staking)), 3500 ether, "staking balance");
        vm.assertEq(staking.unbondings(alice, AGENT).length, 0, "entries");
        vm.assertEq(staking.unbondingStake(alice, AGENT), 0, "unbonding stake");
        vm.assertEq(staking.activeStake(alice, AGENT), 3500 ether, "active stake");
    }

    function test_withdraw_paysOnlyUnlockedEntries() public {
        _stake(alice, AGENT, 5000 ether);
        _requestUnstake(alice, AGENT, 1000 ether);
        vm.warp(block.timestamp + 1 days);
        _requestUnstake(alice, AGENT, 400 ether);
        _requestUnstake(alice, AGENT, 200 ether);
        vm.warp(block.timestamp + UNBONDING_PERIOD - 1 days);

        vm.assertEq(_withdraw(alice, AGENT), 1000 ether, "first entry only");
        IAgentStaking.Unbonding[] memory entries = staking.unbondings(alice, AGENT);
        vm.assertEq(entries.length, 2, "entries left");
        vm.assertEq(staking.unbondingStake(alice, AGENT), 600 ether, "unbonding left");

        vm.warp(block.timestamp + 1 days);
        vm.assertEq(_withdraw(alice, AGENT), 600 ether, "the rest");
        vm.assertEq(token.balanceOf(alice), ACTOR_FUNDS - 3400 ether, "alice balance");
    }

    function test_withdraw_revertsWhen_beforeUnlock() public {
        _stake(alice, AGENT, 5000 ether);
        _requestUnstake(alice, AGENT, 1000 ether);
        vm.warp(block.timestamp + UNBONDING_PERIOD - 1);
        vm.expectRevert(abi.encodeWithSelector(IAgentStaking.StakingNothingToWithdraw.selector, alice));
        _withdraw(alice, AGENT);

        vm.warp(block.timestamp + 1);
        vm.assertEq(_withdraw(alice, AGENT), 1000 ether, "paid at the unlock time");
    }

    function test_withdraw_revertsWhen_nothingUnbonding() public {
        vm.expectRevert(abi.encodeWithSelector(IAgentStaking.StakingNothingToWithdraw.selector, alice));
        _withdraw(alice, AGENT);
    }

    function test_withdraw_revertsWhen_otherRoleUnlocked() public {
        _stake(alice, VALIDATOR, MIN_VALIDATOR_STAKE);
        _requestUnstake(alice, VALIDATOR, MIN_VALIDATOR_STAKE);
        vm.warp(block.timestamp + UNBONDING_PERIOD);
        vm.expectRevert(abi.encodeWithSelector(IAgentStaking.StakingNothingToWithdraw.selector, alice));
        _withdraw(alice, AGENT);
        vm.assertEq(_withdraw(alice, VALIDATOR), MIN_VALIDATOR_STAKE, "validator stake");
    }

    // --------------------------------------------------------------------------------------------------------------
    // Agent registration
    // --------------------------------------------------------------------------------------------------------------

    function test_registerAgent_storesInfoAndBindsSigner() public {
        vm.expectEmit(address(staking));
        emit IAgentStaking.AgentRegistered(alice, aliceSigner, MODEL_ID, PRICE, ENDPOINT);
        vm.prank(alice);
        staking.registerAgent(aliceSigner, MODEL_ID, PRICE, ENDPOINT);
        vm.snapshotGasLastCall("registerAgent");

        IAgentStaking.AgentInfo memory info = staking.agentInfo(alice);
        vm.assertEq(info.signer, aliceSigner, "signer");
        vm.assertEq(info.modelId, MODEL_ID, "model");
        vm.assertEq(info.price, PRICE, "price");
        vm.assertEq(info.endpoint, ENDPOINT);
        vm.assertEq(staking.operatorOfSigner(aliceSigner), alice, "binding");
    }

    function test_registerAgent_acceptsEndpointOfMaxLength() public {
        string memory endpoint = string(_bytesOfLength(256));
        _register(alice, aliceSigner, endpoint);
        vm.assertEq(staking.agentInfo(alice).endpoint, endpoint);
    }

    function test_registerAgent_revertsWhen_alreadyRegistered() public {
        _register(alice, aliceSigner, ENDPOINT);
        vm.expectRevert(abi.encodeWithSelector(IAgentStaking.StakingAgentAlreadyRegistered.selector, alice));
        _register(alice, aliceSigner2, ENDPOINT);
    }

    function test_registerAgent_revertsWhen_signerIsZero() public {
        vm.expectRevert(abi.encodeWithSelector(IAgentStaking.StakingInvalidSigner.selector, address(0)));
        _register(alice, address(0), ENDPOINT);
    }

    function test_registerAgent_revertsWhen_signerIsOperator() public {
        vm.expectRevert(abi.encodeWithSelector(IAgentStaking.StakingInvalidSigner.selector, alice));
        _register(alice, alice, ENDPOINT);
    }

    function test_registerAgent_revertsWhen_signerBoundToAnotherOperator() public {
        _register(alice, aliceSigner, ENDPOINT);
        vm.expectRevert(abi.encodeWithSelector(IAgentStaking.StakingSignerTaken.selector, aliceSigner, alice));
        _register(bob, aliceSigner, ENDPOINT);
    }

    function test_registerAgent_revertsWhen_endpointEmpty() public {
        vm.expectRevert(abi.encodeWithSelector(IAgentStaking.StakingInvalidEndpoint.selector, 0, 256));
        _register(alice, aliceSigner, "");
    }

    function test_registerAgent_revertsWhen_endpointTooLong() public {
        vm.expectRevert(abi.encodeWithSelector(IAgentStaking.StakingInvalidEndpoint.selector, 257, 256));
        _register(alice, aliceSigner, string(_bytesOfLength(257)));
    }

    function test_updateAgent_changesInfo() public {
        _register(alice, aliceSigner, ENDPOINT);
        bytes32 newModel = keccak256("other weights");

        vm.expectEmit(address(staking));
        emit IAgentStaking.AgentUpdated(alice, aliceSigner, newModel, 2 * PRICE, "https://new.example");
        vm.prank(alice);
        staking.updateAgent(aliceSigner, newModel, 2 * PRICE, "https://new.example");

        IAgentStaking.AgentInfo memory info = staking.agentInfo(alice);
        vm.assertEq(info.signer, aliceSigner, "same signer reused");
        vm.assertEq(info.modelId, newModel, "model");
        vm.assertEq(info.price, 2 * PRICE, "price");
        vm.assertEq(info.endpoint, "https://new.example");
    }

    function test_updateAgent_rotatesSigner_keepsOldBinding() public {
        _register(alice, aliceSigner, ENDPOINT);
        _update(alice, aliceSigner2, ENDPOINT);

        vm.assertEq(staking.agentInfo(alice).signer, aliceSigner2, "new signer");
        vm.assertEq(staking.operatorOfSigner(aliceSigner2), alice, "new binding");
        vm.assertEq(staking.operatorOfSigner(aliceSigner), alice, "old binding kept");

        // The rotated-out key stays alice's: nobody else can take it, alice can rotate back to it.
        vm.expectRevert(abi.encodeWithSelector(IAgentStaking.StakingSignerTaken.selector, aliceSigner, alice));
        _register(bob, aliceSigner, ENDPOINT);
        _update(alice, aliceSigner, ENDPOINT);
        vm.assertEq(staking.agentInfo(alice).signer, aliceSigner, "rotated back");
    }

    function test_updateAgent_revertsWhen_notRegistered() public {
        vm.expectRevert(abi.encodeWithSelector(IAgentStaking.StakingAgentNotRegistered.selector, alice));
        _update(alice, aliceSigner, ENDPOINT);
    }

    function test_updateAgent_revertsWhen_signerInvalid() public {
        _register(alice, aliceSigner, ENDPOINT);
        vm.expectRevert(abi.encodeWithSelector(IAgentStaking.StakingInvalidSigner.selector, alice));
        _update(alice, alice, ENDPOINT);
        vm.expectRevert(abi.encodeWithSelector(IAgentStaking.StakingInvalidSigner.selector, address(0)));
        _update(alice, address(0), ENDPOINT);
    }

    function test_updateAgent_revertsWhen_signerBoundToAnotherOperator() public {
        _register(alice, aliceSigner, ENDPOINT);
        (address bobSigner,) = makeAccount("bobSigner");
        _register(bob, bobSigner, ENDPOINT);
        vm.expectRevert(abi.encodeWithSelector(IAgentStaking.StakingSignerTaken.selector, bobSigner, bob));
        _update(alice, bobSigner, ENDPOINT);
    }

    function test_updateAgent_revertsWhen_endpointInvalid() public {
        _register(alice, aliceSigner, ENDPOINT);
        vm.expectRevert(abi.encodeWithSelector(IAgentStaking.StakingInvalidEndpoint.selector, 0, 256));
        _update(alice, aliceSigner, "");
    }

    function test_isActiveAgent_needsRegistrationAndMinimumStake() public {
        vm.assertFalse(staking.isActiveAgent(alice), "neither");
        _stake(alice, AGENT, MIN_AGENT_STAKE);
        vm.assertFalse(staking.isActiveAgent(alice), "staked, not registered");
        _register(alice, aliceSigner, ENDPOINT);
        vm.assertTrue(staking.isActiveAgent(alice), "staked and registered");

        vm.prank(owner);
        staking.setMinimumStake(AGENT, MIN_AGENT_STAKE + 1);
        vm.assertFalse(staking.isActiveAgent(alice), "below a raised minimum");

        (address bobSigner,) = makeAccount("bobSigner");
        _register(bob, bobSigner, ENDPOINT);
        vm.assertFalse(staking.isActiveAgent(bob), "registered, not staked");
    }

    function test_isActiveAgent_falseWithoutStakeEvenWhenMinimumIsZero() public {
        vm.prank(owner);
        staking.setMinimumStake(AGENT, 0);
        _register(alice, aliceSigner, ENDPOINT);
        vm.assertFalse(staking.isActiveAgent(alice), "no stake");
        _stake(alice, AGENT, 1);
        vm.assertTrue(staking.isActiveAgent(alice), "any stake");
    }

    function test_isActiveValidator_needsMinimumValidatorStake() public {
        _stake(alice, AGENT, MIN_VALIDATOR_STAKE);
        vm.assertFalse(staking.isActiveValidator(alice), "agent stake does not count");
        _stake(alice, VALIDATOR, MIN_VALIDATOR_STAKE);
        vm.assertTrue(staking.isActiveValidator(alice), "validator");
        _requestUnstake(alice, VALIDATOR, MIN_VALIDATOR_STAKE);
        vm.assertFalse(staking.isActiveValidator(alice), "unbonding stake does not count");
    }

    // --------------------------------------------------------------------------------------------------------------
    // slash
    // --------------------------------------------------------------------------------------------------------------

    function test_slash_fromActiveStake_paysTreasury() public {
        _stake(alice, AGENT, 5000 ether);

        vm.expectEmit(address(staking));
        emit IAgentStaking.Slashed(alice, AGENT, 2000 ether, 2000 ether, 2000 ether);
        uint256 slashed = _slash(alice, AGENT, 2000 ether, new IAgentStaking.SlashPayout[](0));

        vm.assertEq(slashed, 2000 ether, "slashed");
        vm.assertEq(staking.activeStake(alice, AGENT), 3000 ether, "active stake");
        vm.assertEq(staking.totalActiveStake(AGENT), 3000 ether, "total active stake");
        vm.assertEq(token.balanceOf(treasury), 2000 ether, "treasury");
        vm.assertEq(token.balanceOf(address(staking)), 3000 ether, "staking balance");
    }

    function test_slash_whenUnbonding_reducesQueuedStake() public {
        _stake(alice, AGENT, 5000 ether);
        _requestUnstake(alice, AGENT, 1000 ether); // entry A, unlocked below
        vm.warp(block.timestamp + UNBONDING_PERIOD);
        _requestUnstake(alice, AGENT, 2000 ether); // entry B, locked for another period
        vm.assertEq(staking.slashableStake(alice, AGENT), 4000 ether, "A is no longer slashable");

        vm.expectEmit(address(staking));
        emit IAgentStaking.Slashed(alice, AGENT, 3000 ether, 2000 ether, 3000 ether);
        uint256 slashed = _slash(alice, AGENT, 3000 ether, new IAgentStaking.SlashPayout[](0));

        vm.assertEq(slashed, 3000 ether, "slashed");
        vm.assertEq(staking.activeStake(alice, AGENT), 0, "active stake taken first");
        vm.assertEq(staking.unbondingStake(alice, AGENT), 2000 ether, "B reduced by 1000, A untouched");
        vm.assertEq(staking.slashableStake(alice, AGENT), 1000 ether, "what is left of B");
        IAgentStaking.Unbonding[] memory entries = staking.unbondings(alice, AGENT);
        vm.assertEq(entries.length, 2, "both entries remain");
        vm.assertEq(entries[0].amount, 1000 ether, "A untouched");
        vm.assertEq(entries[1].amount, 1000 ether, "B reduced");

        vm.assertEq(_withdraw(alice, AGENT), 1000 ether, "A is paid in full");
        vm.warp(block.timestamp + UNBONDING_PERIOD);
        vm.assertEq(_withdraw(alice, AGENT), 1000 ether, "what is left of B");
        vm.assertEq(token.balanceOf(address(staking)), 0, "staking empty");
    }

    function test_slash_removesEntriesTakenInFull() public {
        _stake(alice, AGENT, 5000 ether);
        _requestUnstake(alice, AGENT, 1000 ether);
        _requestUnstake(alice, AGENT, 4000 ether);
        uint256 slashed = _slash(alice, AGENT, 4500 ether, new IAgentStaking.SlashPayout[](0));

        vm.assertEq(slashed, 4500 ether, "slashed");
        IAgentStaking.Unbonding[] memory entries = staking.unbondings(alice, AGENT);
        vm.assertEq(entries.length, 1, "emptied entry removed");
        vm.assertEq(entries[0].amount, 500 ether, "remaining entry");
    }

    function test_slash_cappedAtSlashableStake() public {
        _stake(alice, AGENT, 5000 ether);
        _requestUnstake(alice, AGENT, 1000 ether);

        vm.expectEmit(address(staking));
        emit IAgentStaking.Slashed(alice, AGENT, 5000 ether, 4000 ether, 5000 ether);
        uint256 slashed = _slash(alice, AGENT, type(uint256).max, new IAgentStaking.SlashPayout[](0));

        vm.assertEq(slashed, 5000 ether, "slashed");
        vm.assertEq(staking.slashableStake(alice, AGENT), 0, "nothing left");
        vm.assertEq(staking.unbondings(alice, AGENT).length, 0, "entries");
        vm.assertEq(token.balanceOf(treasury), 5000 ether, "treasury");
        vm.assertEq(token.balanceOf(address(staking)), 0, "staking balance");
    }

    function test_slash_paysPayoutsInOrder_remainderToTreasury() public {
        _stake(alice, AGENT, 5000 ether);
        IAgentStaking.SlashPayout[] memory payouts = new IAgentStaking.SlashPayout[](3);
        payouts[0] = IAgentStaking.SlashPayout(bob, 300 ether);
        payouts[1] = IAgentStaking.SlashPayout(carol, 200 ether);
        payouts[2] = IAgentStaking.SlashPayout(bob, 100 ether);

        vm.expectEmit(address(staking));
        emit IAgentStaking.Slashed(alice, AGENT, 1000 ether, 1000 ether, 400 ether);
        vm.expectEmit(address(staking));
        emit IAgentStaking.SlashPaid(alice, bob, 300 ether);
        vm.expectEmit(address(staking));
        emit IAgentStaking.SlashPaid(alice, carol, 200 ether);
        vm.expectEmit(address(staking));
        emit IAgentStaking.SlashPaid(alice, bob, 100 ether);
        vm.prank(address(dm));
        staking.slash(alice, AGENT, 1000 ether, payouts);
        vm.snapshotGasLastCall("slash");

        vm.assertEq(token.balanceOf(bob), ACTOR_FUNDS + 400 ether, "bob");
        vm.assertEq(token.balanceOf(carol), ACTOR_FUNDS + 200 ether, "carol");
        vm.assertEq(token.balanceOf(treasury), 400 ether, "treasury");
    }

    function test_slash_capsPayoutsAtSlashedAmount() public {
        _stake(alice, AGENT, 1000 ether);
        IAgentStaking.SlashPayout[] memory payouts = new IAgentStaking.SlashPayout[](3);
        payouts[0] = IAgentStaking.SlashPayout(bob, 700 ether);
        payouts[1] = IAgentStaking.SlashPayout(carol, 700 ether);
        payouts[2] = IAgentStaking.SlashPayout(bob, 700 ether);

        vm.expectEmit(address(staking));
        emit IAgentStaking.Slashed(alice, AGENT, 1000 ether, 1000 ether, 0);
        vm.expectEmit(address(staking));
        emit IAgentStaking.SlashPaid(alice, bob, 700 ether);
        vm.expectEmit(address(staking));
        emit IAgentStaking.SlashPaid(alice, carol, 300 ether);
        uint256 slashed = _slash(alice, AGENT, 5000 ether, payouts);

        vm.assertEq(slashed, 1000 ether, "slashed");
        vm.assertEq(token.balanceOf(bob), ACTOR_FUNDS + 700 ether, "first payout in full");
        vm.assertEq(token.balanceOf(carol), ACTOR_FUNDS + 300 ether, "second payout capped");
        vm.assertEq(token.balanceOf(treasury), 0, "nothing for the treasury");
    }

    function test_slash_skipsZeroAndSelfRecipients() public {
        _stake(alice, AGENT, 5000 ether);
        IAgentStaking.SlashPayout[] memory payouts = new IAgentStaking.SlashPayout[](3);
        payouts[0] = IAgentStaking.SlashPayout(address(0), 300 ether);
        payouts[1] = IAgentStaking.SlashPayout(address(staking), 300 ether);
        payouts[2] = IAgentStaking.SlashPayout(carol, 300 ether);

        vm.expectEmit(address(staking));
        emit IAgentStaking.Slashed(alice, AGENT, 1000 ether, 1000 ether, 700 ether);
        vm.expectEmit(address(staking));
        emit IAgentStaking.SlashPaid(alice, carol, 300 ether);
        _slash(alice, AGENT, 1000 ether, payouts);

        vm.assertEq(token.balanceOf(carol), ACTOR_FUNDS + 300 ether, "carol");
        vm.assertEq(token.balanceOf(treasury), 700 ether, "treasury gets the skipped shares");
        vm.assertEq(token.balanceOf(address(staking)), 4000 ether, "staking holds only stake");
    }

    function test_slash_zeroAmount_returnsZero() public {
        _stake(alice, AGENT, 5000 ether);
        IAgentStaking.SlashPayout[] memory payouts = new IAgentStaking.SlashPayout[](1);
        payouts[0] = IAgentStaking.SlashPayout(bob, 100 ether);
        vm.assertEq(_slash(alice, AGENT, 0, payouts), 0, "slashed");
        vm.assertEq(staking.activeStake(alice, AGENT), 5000 ether, "untouched");
        vm.assertEq(token.balanceOf(bob), ACTOR_FUNDS, "no payout");
    }

    function test_slash_operatorAlreadyLeft_returnsZero() public {
        _stake(alice, AGENT, 5000 ether);
        _requestUnstake(alice, AGENT, 5000 ether);
        vm.warp(block.timestamp + UNBONDING_PERIOD);
        vm.assertEq(staking.slashableStake(alice, AGENT), 0, "unlocked is not slashable");

        IAgentStaking.SlashPayout[] memory payouts = new IAgentStaking.SlashPayout[](1);
        payouts[0] = IAgentStaking.SlashPayout(bob, 100 ether);
        vm.assertEq(_slash(alice, AGENT, 1000 ether, payouts), 0, "slashed");
        vm.assertEq(token.balanceOf(bob), ACTOR_FUNDS, "no payout");
        vm.assertEq(token.balanceOf(treasury), 0, "no treasury share");
        vm.assertEq(_withdraw(alice, AGENT), 5000 ether, "the operator keeps its unlocked stake");
    }

    function test_slash_mayLeaveStakeBelowMinimum() public {
        _stake(alice, AGENT, MIN_AGENT_STAKE);
        _register(alice, aliceSigner, ENDPOINT);
        _slash(alice, AGENT, 1 ether, new IAgentStaking.SlashPayout[](0));

        vm.assertEq(staking.activeStake(alice, AGENT), MIN_AGENT_STAKE - 1 ether, "active stake");
        vm.assertFalse(staking.isActiveAgent(alice), "no longer active");
        // The operator may leave entirely, or top up to the minimum.
        _stake(alice, AGENT, 1 ether);
        vm.assertTrue(staking.isActiveAgent(alice), "active again");
    }

    function test_slash_checkpointsActiveStake() public {
        _stake(alice, AGENT, 5000 ether);
        vm.roll(START_BLOCK + 1);
        _slash(alice, AGENT, 2000 ether, new IAgentStaking.SlashPayout[](0));
        vm.roll(START_BLOCK + 2);
        vm.assertEq(staking.activeStakeAt(alice, AGENT, START_BLOCK), 5000 ether, "before slash");
        vm.assertEq(staking.activeStakeAt(alice, AGENT, START_BLOCK + 1), 3000 ether, "after slash");
        vm.assertEq(staking.totalActiveStakeAt(AGENT, START_BLOCK + 1), 3000 ether, "total after slash");
    }

    function test_slash_revertsWhen_callerIsNotDisputeManager() public {
        _stake(alice, AGENT, 5000 ether);
        address[3] memory callers = [alice, owner, address(this)];
        for (uint256 i = 0; i < callers.length; ++i) {
            vm.expectRevert(abi.encodeWithSelector(IAgentStaking.StakingUnauthorizedSlasher.selector, callers[i]));
            vm.prank(callers[i]);
            staking.slash(alice, AGENT, 1 ether, new IAgentStaking.SlashPayout[](0));
        }
    }

    function test_slash_revertsWhen_disputeManagerNotSet() public {
        AgentStaking fresh = _deploy();
        vm.expectRevert(abi.encodeWithSelector(IAgentStaking.StakingUnauthorizedSlasher.selector, owner));
        vm.prank(owner);
        fresh.slash(alice, AGENT, 1 ether, new IAgentStaking.SlashPayout[](0));
    }

    function test_slash_throughDisputeManager() public {
        _stake(alice, VALIDATOR, MIN_VALIDATOR_STAKE);
        uint256 slashed = dm.slash(staking, alice, VALIDATOR, 1 ether, new IAgentStaking.SlashPayout[](0));
        vm.assertEq(slashed, 1 ether, "slashed");
        vm.assertEq(staking.activeStake(alice, VALIDATOR), MIN_VALIDATOR_STAKE - 1 ether, "active stake");
    }

    // --------------------------------------------------------------------------------------------------------------
    // Stake history
    // --------------------------------------------------------------------------------------------------------------

    function test_activeStakeAt_stakeMovedInAtBlockN_notCountedAtNMinus1() public {
        uint256 n = START_BLOCK + 10;
        _stake(bob, AGENT, 2000 ether);
        vm.roll(n);
        _stake(alice, AGENT, 5000 ether);
        vm.roll(n + 1);

        vm.assertEq(staking.activeStakeAt(alice, AGENT, n - 1), 0, "alice at N-1");
        vm.assertEq(staking.activeStakeAt(alice, AGENT, n), 5000 ether, "alice at N");
        vm.assertEq(staking.totalActiveStakeAt(AGENT, n - 1), 2000 ether, "total at N-1");
        vm.assertEq(staking.totalActiveStakeAt(AGENT, n), 7000 ether, "total at N");
        vm.assertEq(staking.activeStakeAt(bob, AGENT, START_BLOCK), 2000 ether, "bob at his block");
        vm.assertEq(staking.activeStakeAt(bob, AGENT, START_BLOCK - 1), 0, "bob before");
    }

    function test_activeStakeAt_tracksChangesAcrossBlocks() public {
        _stake(alice, AGENT, 5000 ether);
        _stake(alice, AGENT, 1000 ether); // same block: one checkpoint, the end-of-block value
        vm.roll(START_BLOCK + 1);
        _requestUnstake(alice, AGENT, 2000 ether);
        vm.roll(START_BLOCK + 3);
        _stake(alice, AGENT, 500 ether);
        vm.roll(START_BLOCK + 4);

        vm.assertEq(staking.activeStakeAt(alice, AGENT, START_BLOCK), 6000 ether, "end of first block");
        vm.assertEq(staking.activeStakeAt(alice, AGENT, START_BLOCK + 1), 4000 ether, "after unstake");
        vm.assertEq(staking.activeStakeAt(alice, AGENT, START_BLOCK + 2), 4000 ether, "no change");
        vm.assertEq(staking.activeStakeAt(alice, AGENT, START_BLOCK + 3), 4500 ether, "after top-up");
        vm.assertEq(staking.totalActiveStakeAt(AGENT, START_BLOCK + 2), 4000 ether, "total");
        vm.assertEq(staking.totalActiveStakeAt(VALIDATOR, START_BLOCK + 3), 0, "other role");
    }

    function test_activeStakeAt_revertsWhen_futureLookup() public {
        uint48 currentClock = staking.clock();
        vm.expectRevert(abi.encodeWithSelector(IAgentStaking.StakingFutureLookup.selector, currentClock, currentClock));
        staking.activeStakeAt(alice, AGENT, currentClock);
        vm.expectRevert(
            abi.encodeWithSelector(IAgentStaking.StakingFutureLookup.selector, type(uint256).max, currentClock)
        );
        staking.activeStakeAt(alice, AGENT, type(uint256).max);
    }

    function test_totalActiveStakeAt_revertsWhen_futureLookup() public {
        uint48 currentClock = staking.clock();
        vm.expectRevert(
            abi.encodeWithSelector(IAgentStaking.StakingFutureLookup.selector, currentClock + 1, currentClock)
        );
        staking.totalActiveStakeAt(AGENT, currentClock + 1);
    }

    // --------------------------------------------------------------------------------------------------------------
    // Administration
    // --------------------------------------------------------------------------------------------------------------

    function test_setDisputeManager_setsOnce() public {
        AgentStaking fresh = _deploy();
        vm.expectEmit(address(fresh));
        emit IAgentStaking.DisputeManagerSet(address(dm));
        vm.prank(owner);
        fresh.setDisputeManager(address(dm));
        vm.assertEq(fresh.disputeManager(), address(dm), "dispute manager");

        StakingDisputeManagerMock other = new StakingDisputeManagerMock(DM_MIN_UNBONDING);
        vm.expectRevert(abi.encodeWithSelector(IAgentStaking.StakingDisputeManagerAlreadySet.selector, address(dm)));
        vm.prank(owner);
        fresh.setDisputeManager(address(other));
    }

    function test_setDisputeManager_revertsWhen_zeroAddress() public {
        AgentStaking fresh = _deploy();
        vm.expectRevert(IAgentStaking.StakingZeroAddress.selector);
        vm.prank(owner);
        fresh.setDisputeManager(address(0));
    }

    function test_setDisputeManager_revertsWhen_unbondingPeriodShorterThanDisputes() public {
        AgentStaking fresh = _deploy();
        StakingDisputeManagerMock slow = new StakingDisputeManagerMock(UNBONDING_PERIOD + 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAgentStaking.StakingInvalidUnbondingPeriod.selector, UNBONDING_PERIOD, UNBONDING_PERIOD + 1, 365 days
            )
        );
        vm.prank(owner);
        fresh.setDisputeManager(address(slow));
    }

    function test_setDisputeManager_acceptsEqualPeriod() public {
        AgentStaking fresh = _deploy();
        StakingDisputeManagerMock exact = new StakingDisputeManagerMock(UNBONDING_PERIOD);
        vm.prank(owner);
        fresh.setDisputeManager(address(exact));
        vm.assertEq(fresh.disputeManager(), address(exact), "dispute manager");
    }

    function test_setDisputeManager_revertsWhen_notOwner() public {
        AgentStaking fresh = _deploy();
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, alice));
        vm.prank(alice);
        fresh.setDisputeManager(address(dm));
    }

    function test_setUnbondingPeriod_setsPeriod() public {
        vm.expectEmit(address(staking));
        emit IAgentStaking.UnbondingPeriodSet(14 days);
        vm.prank(owner);
        staking.setUnbondingPeriod(14 days);
        vm.assertEq(staking.unbondingPeriod(), 14 days, "period");
    }

    function test_setUnbondingPeriod_revertsWhen_belowDisputeManagerMinimum() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IAgentStaking.StakingInvalidUnbondingPeriod.selector, DM_MIN_UNBONDING - 1, DM_MIN_UNBONDING, 365 days
            )
        );
        vm.prank(owner);
        staking.setUnbondingPeriod(DM_MIN_UNBONDING - 1);

        vm.prank(owner);
        staking.setUnbondingPeriod(DM_MIN_UNBONDING);
        vm.assertEq(staking.unbondingPeriod(), DM_MIN_UNBONDING, "at the dispute manager's minimum");
    }

    function test_setUnbondingPeriod_revertsWhen_outOfBounds() public {
        AgentStaking fresh = _deploy(); // no dispute manager: only the constants bound it
        vm.expectRevert(
            abi.encodeWithSelector(IAgentStaking.StakingInvalidUnbondingPeriod.selector, 0, 1 hours, 365 days)
        );
        vm.prank(owner);
        fresh.setUnbondingPeriod(0);

        vm.expectRevert(
            abi.encodeWithSelector(
                IAgentStaking.StakingInvalidUnbondingPeriod.selector, 365 days + 1, 1 hours, 365 days
            )
        );
        vm.prank(owner);
        fresh.setUnbondingPeriod(365 days + 1);

        vm.prank(owner);
        fresh.setUnbondingPeriod(1 hours);
        vm.assertEq(fresh.unbondingPeriod(), 1 hours, "at the lower bound");
    }

    function test_setUnbondingPeriod_revertsWhen_notOwner() public {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, alice));
        vm.prank(alice);
        staking.setUnbondingPeriod(14 days);
    }

    function test_setMinimumStake_setsMinimum() public {
        vm.expectEmit(address(staking));
        emit IAgentStaking.MinimumStakeSet(VALIDATOR, 1 ether);
        vm.prank(owner);
        staking.setMinimumStake(VALIDATOR, 1 ether);
        vm.assertEq(staking.minimumStake(VALIDATOR), 1 ether, "validator minimum");
        vm.assertEq(staking.minimumStake(AGENT), MIN_AGENT_STAKE, "agent minimum untouched");
    }

    function test_setMinimumStake_revertsWhen_notOwner() public {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, alice));
        vm.prank(alice);
        staking.setMinimumStake(AGENT, 0);
    }

    function test_setTreasury_setsTreasury() public {
        vm.expectEmit(address(staking));
        emit IAgentStaking.TreasurySet(carol);
        vm.prank(owner);
        staking.setTreasury(carol);
        vm.assertEq(staking.treasury(), carol, "treasury");
    }

    function test_setTreasury_revertsWhen_zeroAddress() public {
        vm.expectRevert(IAgentStaking.StakingZeroAddress.selector);
        vm.prank(owner);
        staking.setTreasury(address(0));
    }

    function test_setTreasury_revertsWhen_notOwner() public {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, alice));
        vm.prank(alice);
        staking.setTreasury(alice);
    }

    function test_transferOwnership_takesTwoSteps() public {
        vm.prank(owner);
        staking.transferOwnership(alice);
        vm.assertEq(staking.owner(), owner, "not yet");
        vm.prank(alice);
        staking.acceptOwnership();
        vm.assertEq(staking.owner(), alice, "accepted");
    }

    // --------------------------------------------------------------------------------------------------------------
    // Fuzz
    // --------------------------------------------------------------------------------------------------------------

    function testFuzz_stake_requestUnstake_withdraw(uint256 stakeAmount, uint256 unstakeAmount) public {
        stakeAmount = bound(stakeAmount, MIN_AGENT_STAKE, ACTOR_FUNDS);
        unstakeAmount = bound(unstakeAmount, 1, stakeAmount);
        _stake(alice, AGENT, stakeAmount);

        uint256 remaining = stakeAmount - unstakeAmount;
        if (remaining != 0 && remaining < MIN_AGENT_STAKE) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    IAgentStaking.StakingInsufficientStake.selector, alice, remaining, MIN_AGENT_STAKE
                )
            );
            _requestUnstake(alice, AGENT, unstakeAmount);
            return;
        }
        _requestUnstake(alice, AGENT, unstakeAmount);
        vm.assertEq(staking.activeStake(alice, AGENT), remaining, "active stake");
        vm.assertEq(staking.totalActiveStake(AGENT), remaining, "total active stake");
        vm.assertEq(staking.unbondingStake(alice, AGENT), unstakeAmount, "unbonding stake");

        vm.warp(block.timestamp + UNBONDING_PERIOD);
        vm.assertEq(_withdraw(alice, AGENT), unstakeAmount, "withdrawn");
        vm.assertEq(token.balanceOf(alice), ACTOR_FUNDS - remaining, "alice balance");
        vm.assertEq(token.balanceOf(address(staking)), remaining, "staking balance");
    }

    function testFuzz_stake_zeroOrAtLeastMinimum(uint256 amount) public {
        amount = bound(amount, 1, ACTOR_FUNDS);
        if (amount < MIN_AGENT_STAKE) {
            vm.expectRevert(
                abi.encodeWithSelector(IAgentStaking.StakingInsufficientStake.selector, alice, amount, MIN_AGENT_STAKE)
            );
        }
        _stake(alice, AGENT, amount);
        uint256 active = staking.activeStake(alice, AGENT);
        vm.assertTrue(active == 0 || active >= MIN_AGENT_STAKE, "zero or at least the minimum");
    }

    function testFuzz_slash_takesActiveThenLockedEntries(
        uint256 stakeAmount,
        uint256 unlockedAmount,
        uint256 lockedAmount,
        uint256 slashAmount,
        uint256 payoutAmount
    ) public {
        stakeAmount = bound(stakeAmount, 2 * MIN_AGENT_STAKE, ACTOR_FUNDS);
        unlockedAmount = bound(unlockedAmount, 0, (stakeAmount - MIN_AGENT_STAKE) / 2);
        lockedAmount = bound(lockedAmount, 0, (stakeAmount - MIN_AGENT_STAKE) / 2);
        slashAmount = bound(slashAmount, 0, 2 * stakeAmount);
        payoutAmount = bound(payoutAmount, 0, 2 * stakeAmount);

        _stake(alice, AGENT, stakeAmount);
        if (unlockedAmount != 0) _requestUnstake(alice, AGENT, unlockedAmount);
        vm.warp(block.timestamp + UNBONDING_PERIOD);
        if (lockedAmount != 0) _requestUnstake(alice, AGENT, lockedAmount);
        uint256 active = stakeAmount - unlockedAmount - lockedAmount;
        uint256 slashable = staking.slashableStake(alice, AGENT);
        vm.assertEq(slashable, active + lockedAmount, "slashable stake");

        IAgentStaking.SlashPayout[] memory payouts = new IAgentStaking.SlashPayout[](1);
        payouts[0] = IAgentStaking.SlashPayout(bob, payoutAmount);
        uint256 slashed = _slash(alice, AGENT, slashAmount, payouts);

        uint256 expected = slashAmount < slashable ? slashAmount : slashable;
        uint256 expectedPayout = payoutAmount < expected ? payoutAmount : expected;
        vm.assertEq(slashed, expected, "slashed = min(amount, slashable)");
        vm.assertEq(staking.slashableStake(alice, AGENT), slashable - slashed, "slashable left");
        uint256 fromActive = slashed < active ? slashed : active;
        vm.assertEq(staking.activeStake(alice, AGENT), active - fromActive, "active first");
        vm.assertEq(
            staking.unbondingStake(alice, AGENT), unlockedAmount + lockedAmount - (slashed - fromActive), "unbonding"
        );
        vm.assertEq(token.balanceOf(bob), ACTOR_FUNDS + expectedPayout, "payout");
        vm.assertEq(token.balanceOf(treasury), slashed - expectedPayout, "treasury");
        vm.assertEq(token.balanceOf(address(staking)), stakeAmount - slashed, "staking balance");
        if (unlockedAmount != 0) vm.assertEq(_withdraw(alice, AGENT), unlockedAmount, "unlocked entry untouched");
    }

    // --------------------------------------------------------------------------------------------------------------
    // Helpers
    // --------------------------------------------------------------------------------------------------------------

    function _deploy() internal returns (AgentStaking) {
        return new AgentStaking(token, owner, treasury, UNBONDING_PERIOD, MIN_AGENT_STAKE, MIN_VALIDATOR_STAKE);
    }

    function _stake(address operator, IAgentStaking.Role role, uint256 amount) internal {
        vm.prank(operator);
        staking.stake(role, amount);
    }

    function _requestUnstake(address operator, IAgentStaking.Role role, uint256 amount) internal {
        vm.prank(operator);
        staking.requestUnstake(role, amount);
    }

    function _withdraw(address operator, IAgentStaking.Role role) internal returns (uint256) {
        vm.prank(operator);
        return staking.withdraw(role);
    }

    function _slash(
        address operator,
        IAgentStaking.Role role,
        uint256 amount,
        IAgentStaking.SlashPayout[] memory payouts
    ) internal returns (uint256) {
        vm.prank(address(dm));
        return staking.slash(operator, role, amount, payouts);
    }

    function _register(address operator, address signer, string memory endpoint) internal {
        vm.prank(operator);
        staking.registerAgent(signer, MODEL_ID, PRICE, endpoint);
    }

    function _update(address operator, address signer, string memory endpoint) internal {
        vm.prank(operator);
        staking.updateAgent(signer, MODEL_ID, PRICE, endpoint);
    }

    function _bytesOfLength(uint256 length) internal pure returns (bytes memory data) {
        data = new bytes(length);
        for (uint256 i = 0; i < length; ++i) {
            data[i] = "a";
        }
    }
}
