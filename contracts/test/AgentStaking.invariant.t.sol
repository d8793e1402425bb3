// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {AgentStaking} from "../src/AgentStaking.sol";
import {OpenToken} from "../src/OpenToken.sol";
import {IAgentStaking} from "../src/interfaces/IAgentStaking.sol";
import {StakingDisputeManagerMock} from "./mocks/StakingDisputeManagerMock.sol";
import {Test} from "./utils/Test.sol";

/// @notice Drives AgentStaking with a few actors: stake, requestUnstake, withdraw, time passing and slashes through
/// a dispute manager it owns. Inputs are bounded so calls are meant to succeed; anything the contract does that the
/// model did not expect is recorded in a ghost counter that the invariants require to stay zero.
contract AgentStakingHandler is Test {
    struct Request {
        uint256 amount;
        uint256 unlockTime;
    }

    uint256 internal constant MAX_STAKE_PER_CALL = 200_000 ether;
    uint256 internal constant MAX_WARP = 10 days;

    AgentStaking public immutable staking;
    OpenToken public immutable token;
    StakingDisputeManagerMock public immutable disputeManager;

    address[] internal _actors;
    address[] internal _payees;

    /// @dev Time and block as the handler moves them; every call starts by restoring them, so nothing depends on
    /// whether forge carries cheatcode changes of block values from one call to the next.
    uint256 public currentTime;
    uint256 public currentBlock;

    // Ghost accounting, independent of the contract's own bookkeeping.
    uint256 public ghostStaked;
    uint256 public ghostWithdrawn;
    uint256 public ghostSlashed;
    mapping(address actor => mapping(IAgentStaking.Role role => uint256)) public ghostWithdrawnBy;
    mapping(address actor => mapping(IAgentStaking.Role role => Request[])) internal _ghostRequests;

    // Violations seen inside calls; the invariants require each to stay zero.
    uint256 public ghostUnexpectedReverts;
    uint256 public ghostWithdrawMismatches;
    uint256 public ghostSlashBeyondSlashable;
    uint256 public ghostSlashMismatches;
    uint256 public ghostCheckpointMismatches;

    modifier useClock() {
        vm.warp(currentTime);
        vm.roll(currentBlock);
        _;
    }

    constructor(AgentStaking staking_, OpenToken token_, address[] memory actors_, address[] memory extraPayees) {
        staking = staking_;
        token = token_;
        disputeManager = new StakingDisputeManagerMock(1 days);
        _actors = actors_;
        _payees = actors_;
        for (uint256 i = 0; i < extraPayees.length; ++i) {
            _payees.push(extraPayees[i]);
        }
        currentTime = block.timestamp;
        currentBlock = block.number;
    }

    // --------------------------------------------------------------------------------------------------------------
    // Actions
    // --------------------------------------------------------------------------------------------------------------

    function stake(uint256 actorSeed, uint256 roleSeed, uint256 amount) external useClock {
        (address actor, IAgentStaking.Role role) = _pick(actorSeed, roleSeed);
        uint256 active = staking.activeStake(actor, role);
        uint256 minimum = staking.minimumStake(role);
        uint256 lower = active >= minimum ? 1 : minimum - active;
        uint256 upper = _min(token.balanceOf(actor), MAX_STAKE_PER_CALL);
        if (lower > upper) return;
        amount = bound(amount, lower, upper);

        vm.prank(actor);
        try staking.stake(role, amount) {
            ghostStaked += amount;
        } catch {
            ++ghostUnexpectedReverts;
        }
    }

    function requestUnstake(uint256 actorSeed, uint256 roleSeed, uint256 amount) external useClock {
        (address actor, IAgentStaking.Role role) = _pickWhere(actorSeed, roleSeed, _canUnstake);
        if (!_canUnstake(actor, role)) return;
        uint256 active = staking.activeStake(actor, role);
        amount = bound(amount, 1, active);
        uint256 remaining = active - amount;
        // Leaving less than the minimum is not allowed; leave entirely instead.
        if (remaining != 0 && remaining < staking.minimumStake(role)) amount = active;

        vm.prank(actor);
        try staking.requestUnstake(role, amount) {
            _ghostRequests[actor][role].push(Request(amount, currentTime + staking.unbondingPeriod()));
        } catch {
            ++ghostUnexpectedReverts;
        }
    }

    function withdraw(uint256 actorSeed, uint256 roleSeed) external useClock {
        // Mostly an operator with something to withdraw; sometimes anyone, to see the empty case revert.
        (address actor, IAgentStaking.Role role) =
            actorSeed % 4 == 0 ? _pick(actorSeed, roleSeed) : _pickWhere(actorSeed, roleSeed, _canWithdraw);
        uint256 unlocked = _unlockedInContract(actor, role);

        vm.prank(actor);
        try staking.withdraw(role) returns (uint256 amount) {
            if (amount != unlocked || amount == 0) ++ghostWithdrawMismatches;
            if (_unlockedInContract(actor, role) != 0) ++ghostWithdrawMismatches;
            ghostWithdrawn += amount;
            ghostWithdrawnBy[actor][role] += amount;
        } catch {
            // Reverting is right only when nothing had unlocked.
            if (unlocked != 0) ++ghostWithdrawMismatches;
        }
    }

    function warp(uint256 secondsToPass, uint256 blocksToPass) external useClock {
        // The block that just ended must have a consistent history before time moves on.
        _checkHistory(currentBlock - 1);
        currentTime += bound(secondsToPass, 1, MAX_WARP);
        currentBlock += bound(blocksToPass, 1, 1000);
    }

    function slash(uint256 actorSeed, uint256 roleSeed, uint256 amount, uint256 payoutSeed) external useClock {
        (address operator, IAgentStaking.Role role) = _pickWhere(actorSeed, roleSeed, _isSlashable);
        uint256 slashable = staking.slashableStake(operator, role);
        // Mostly partial slashes, so stake survives to be unstaked and slashed again; now and then beyond the cap.
        amount = bound(amount, 0, amount % 8 == 0 ? 2 * slashable + 1 : slashable / 4 + 1);
        IAgentStaking.SlashPayout[] memory payouts = _payouts(payoutSeed, amount);

        try disputeManager.slash(staking, operator, role, amount, payouts) returns (uint256 slashed) {
            _recordSlash(operator, role, amount, slashable, slashed);
        } catch {
            ++ghostUnexpectedReverts;
        }
    }

    // --------------------------------------------------------------------------------------------------------------
    // Views for the invariants
    // --------------------------------------------------------------------------------------------------------------

    /// @notice What `actor` may have withdrawn in `role` by now by the model alone: everything it asked to unstake
    /// whose unlock time has come (slashes only make the true figure smaller).
    function ghostUnlockedRequested(address actor, IAgentStaking.Role role) external view returns (uint256 amount) {
        Request[] storage requests = _ghostRequests[actor][role];
        for (uint256 i = 0; i < requests.length; ++i) {
            if (requests[i].unlockTime <= currentTime) amount += requests[i].amount;
        }
    }

    // --------------------------------------------------------------------------------------------------------------
    // Internal
    // --------------------------------------------------------------------------------------------------------------

    function _pick(uint256 actorSeed, uint256 roleSeed) internal view returns (address, IAgentStaking.Role) {
        return (_actors[actorSeed % _actors.length], IAgentStaking.Role(roleSeed % 2));
    }

    /// @dev The first actor and role, going round from the seeds, for which `condition` holds; the seeds' own pick
    /// when none does.
    function _pickWhere(
        uint256 actorSeed,
        uint256 roleSeed,
        function(address, IAgentStaking.Role) internal view returns (bool) condition
    ) internal view returns (address, IAgentStaking.Role) {
        uint256 options = 2 * _actors.length;
        for (uint256 i = 0; i < options; ++i) {
            (address actor, IAgentStaking.Role role) = _pick(actorSeed + i / 2, roleSeed + i);
            if (condition(actor, role)) return (actor, role);
        }
        return _pick(actorSeed, roleSeed);
    }

    function _canUnstake(address actor, IAgentStaking.Role role) internal view returns (bool) {
        return
            staking.activeStake(actor, role) != 0 && staking.unbondings(actor, role).length < staking.MAX_UNBONDINGS();
    }

    function _canWithdraw(address actor, IAgentStaking.Role role) internal view returns (bool) {
        return _unlockedInContract(actor, role) != 0;
    }

    function _isSlashable(address actor, IAgentStaking.Role role) internal view returns (bool) {
        return staking.slashableStake(actor, role) != 0;
    }

    function _unlockedInContract(address actor, IAgentStaking.Role role) internal view returns (uint256 amount) {
        IAgentStaking.Unbonding[] memory entries = staking.unbondings(actor, role);
        for (uint256 i = 0; i < entries.length; ++i) {
            if (entries[i].unlockTime <= currentTime) amount += entries[i].amount;
        }
    }

    /// @dev Up to two payouts, each of up to `amount`, to actors, the treasury, or recipients the contract must skip.
    function _payouts(uint256 seed, uint256 amount) internal view returns (IAgentStaking.SlashPayout[] memory payouts) {
        payouts = new IAgentStaking.SlashPayout[](seed % 3);
        for (uint256 i = 0; i < payouts.length; ++i) {
            uint256 draw = uint256(keccak256(abi.encode(seed, i)));
            payouts[i] = IAgentStaking.SlashPayout(_payees[draw % _payees.length], bound(draw >> 8, 0, amount));
        }
    }

    function _recordSlash(
        address operator,
        IAgentStaking.Role role,
        uint256 amount,
        uint256 slashableBefore,
        uint256 slashed
    ) internal {
        if (slashed > slashableBefore) {
            ++ghostSlashBeyondSlashable;
        } else if (slashed != _min(amount, slashableBefore)) {
            ++ghostSlashMismatches;
        } else if (staking.slashableStake(operator, role) != slashableBefore - slashed) {
            ++ghostSlashMismatches;
        }
        ghostSlashed += slashed;
    }

    function _checkHistory(uint256 timepoint) internal {
        for (uint256 r = 0; r < 2; ++r) {
            IAgentStaking.Role role = IAgentStaking.Role(r);
            uint256 sum;
            for (uint256 i = 0; i < _actors.length; ++i) {
                sum += staking.activeStakeAt(_actors[i], role, timepoint);
            }
            if (sum != staking.totalActiveStakeAt(role, timepoint)) ++ghostCheckpointMismatches;
        }
    }

    function _min(uint256 a, uint256 b) internal pure returns (uint256) {
        return a < b ? a : b;
    }
}

contract AgentStakingInvariantTest is Test {
    uint256 internal constant ACTOR_FUNDS = 1_000_000 ether;
    uint256 internal constant UNBONDING_PERIOD = 7 days;

    OpenToken internal token;
    AgentStaking internal staking;
    AgentStakingHandler internal handler;
    address internal treasury;
    address[] internal actors;

    function setUp() public {
        vm.warp(1_700_000_000);
        vm.roll(1000);
        (treasury,) = makeAccount("treasury");
        string[4] memory names = ["alice", "bob", "carol", "dave"];
        for (uint256 i = 0; i < names.length; ++i) {
            (address actor,) = makeAccount(names[i]);
            actors.push(actor);
        }

        token = new OpenToken(address(this));
        staking = new AgentStaking(token, address(this), treasury, UNBONDING_PERIOD, 1000 ether, 10_000 ether);

        // Payouts also go to the treasury and to recipients the contract must skip.
        address[] memory extraPayees = new address[](3);
        extraPayees[0] = treasury;
        extraPayees[1] = address(0);
        extraPayees[2] = address(staking);
        handler = new AgentStakingHandler(staking, token, actors, extraPayees);
        staking.setDisputeManager(address(handler.disputeManager()));

        for (uint256 i = 0; i < actors.length; ++i) {
            vm.assertTrue(token.transfer(actors[i], ACTOR_FUNDS), "funding");
            vm.prank(actors[i]);
            token.approve(address(staking), type(uint256).max);
        }

        bytes4[] memory selectors = new bytes4[](5);
        selectors[0] = AgentStakingHandler.stake.selector;
        selectors[1] = AgentStakingHandler.requestUnstake.selector;
        selectors[2] = AgentStakingHandler.withdraw.selector;
        selectors[3] = AgentStakingHandler.warp.selector;
        selectors[4] = AgentStakingHandler.slash.selector;
        targetSelector(FuzzSelector({addr: address(handler), selectors: selectors}));
        targetContract(address(handler));
    }

    /// @notice Every token the contract holds is someone's active or unbonding stake, and nothing more.
    function invariant_balanceEqualsActivePlusUnbonding() public view {
        uint256 sum;
        for (uint256 i = 0; i < actors.length; ++i) {
            for (uint256 r = 0; r < 2; ++r) {
                IAgentStaking.Role role = IAgentStaking.Role(r);
                sum += staking.activeStake(actors[i], role) + staking.unbondingStake(actors[i], role);
            }
        }
        uint256 balance = token.balanceOf(address(staking));
        vm.assertEq(balance, sum, "balance == sum of active + unbonding");
        vm.assertEq(
            balance,
            handler.ghostStaked() - handler.ghostWithdrawn() - handler.ghostSlashed(),
            "balance == staked - withdrawn - slashed"
        );
    }

    function invariant_totalActiveStakeIsSumOfActiveStakes() public view {
        for (uint256 r = 0; r < 2; ++r) {
            IAgentStaking.Role role = IAgentStaking.Role(r);
            uint256 sum;
            for (uint256 i = 0; i < actors.length; ++i) {
                sum += staking.activeStake(actors[i], role);
            }
            vm.assertEq(staking.totalActiveStake(role), sum, "total == sum of active stakes");
        }
        vm.assertEq(handler.ghostCheckpointMismatches(), 0, "historic total == sum of historic stakes");
    }

    function invariant_noWithdrawalBeforeUnlock() public view {
        for (uint256 i = 0; i < actors.length; ++i) {
            for (uint256 r = 0; r < 2; ++r) {
                IAgentStaking.Role role = IAgentStaking.Role(r);
                vm.assertLe(
                    handler.ghostWithdrawnBy(actors[i], role),
                    handler.ghostUnlockedRequested(actors[i], role),
                    "withdrawn <= requested and unlocked"
                );
            }
        }
        vm.assertEq(handler.ghostWithdrawMismatches(), 0, "withdraw pays exactly the unlocked entries");
    }

    function invariant_slashNeverExceedsSlashableStake() public view {
        vm.assertEq(handler.ghostSlashBeyondSlashable(), 0, "slashed <= slashable");
        vm.assertEq(handler.ghostSlashMismatches(), 0, "slashed == min(amount, slashable)");
    }

    function invariant_totalSupplyConstant() public view {
        vm.assertEq(token.totalSupply(), token.TOTAL_SUPPLY(), "total supply");
        uint256 held = token.balanceOf(address(this)) + token.balanceOf(address(staking)) + token.balanceOf(treasury);
        for (uint256 i = 0; i < actors.length; ++i) {
            held += token.balanceOf(actors[i]);
        }
        vm.assertEq(held, token.TOTAL_SUPPLY(), "no token left the known holders");
    }

    function invariant_handlerCallsSucceed() public view {
        vm.assertEq(handler.ghostUnexpectedReverts(), 0, "bounded calls do not revert");
    }
}
