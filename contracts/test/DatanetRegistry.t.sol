// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {DatanetRegistry} from "../src/DatanetRegistry.sol";
import {IDatanetRegistry} from "../src/interfaces/IDatanetRegistry.sol";
import {Test} from "./utils/Test.sol";

contract DatanetRegistryTest is Test {
    uint256 internal constant START_TIME = 1_700_000_000;
    string internal constant URI = "ipfs://datanet-metadata";
    bytes32 internal constant MODEL_ID = keccak256("tiny-llama weights");
    bytes32 internal constant INDEX_ROOT = keccak256("suffix array files");

    DatanetRegistry internal registry;
    address internal alice;
    address internal bob;
    address internal curator;
    address internal contributor1;
    address internal contributor2;

    function setUp() public {
        vm.warp(START_TIME);
        registry = new DatanetRegistry();
        (alice,) = makeAccount("alice");
        (bob,) = makeAccount("bob");
        (curator,) = makeAccount("curator");
        (contributor1,) = makeAccount("contributor1");
        (contributor2,) = makeAccount("contributor2");
    }

    // --------------------------------------------------------------------------------------------------------------
    // Datanets
    // --------------------------------------------------------------------------------------------------------------

    function test_createDatanet_storesAndEmits() public {
        vm.expectEmit(address(registry));
        emit IDatanetRegistry.DatanetCreated(1, alice, URI);
        vm.prank(alice);
        uint256 id = registry.createDatanet(URI);
        vm.snapshotGasLastCall("createDatanet");

        vm.assertEq(id, 1, "id");
        vm.assertEq(registry.datanetCount(), 1, "count");
        IDatanetRegistry.Datanet memory d = registry.datanet(id);
        vm.assertEq(d.owner, alice, "owner");
        vm.assertEq(d.createdAt, START_TIME, "created at");
        vm.assertEq(d.contributionCount, 0, "contributions");
        vm.assertEq(d.metadataURI, URI);

        vm.prank(bob);
        vm.assertEq(registry.createDatanet(URI), 2, "second id");
    }

    function test_createDatanet_withBadMetadataURI_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(IDatanetRegistry.DatanetRegistryInvalidMetadataURI.selector, 0, 2048));
        registry.createDatanet("");
        string memory tooLong = string(new bytes(2049));
        vm.expectRevert(abi.encodeWithSelector(IDatanetRegistry.DatanetRegistryInvalidMetadataURI.selector, 2049, 2048));
        registry.createDatanet(tooLong);
    }

    function test_datanet_whenUnknown_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(IDatanetRegistry.DatanetRegistryUnknownDatanet.selector, 1));
        registry.datanet(1);
    }

    function test_setDatanetMetadataURI_byOwner_updates() public {
        uint256 id = _create(alice);
        vm.expectEmit(address(registry));
        emit IDatanetRegistry.DatanetMetadataSet(id, "ipfs://v2");
        vm.prank(alice);
        registry.setDatanetMetadataURI(id, "ipfs://v2");
        vm.assertEq(registry.datanet(id).metadataURI, "ipfs://v2");
    }

    function test_setDatanetMetadataURI_byOther_reverts() public {
        uint256 id = _create(alice);
        vm.expectRevert(abi.encodeWithSelector(IDatanetRegistry.DatanetRegistryNotOwner.selector, id, bob));
        vm.prank(bob);
        registry.setDatanetMetadataURI(id, "ipfs://v2");
    }

    function test_transferDatanetOwnership_movesOwnerRights() public {
        uint256 id = _create(alice);
        vm.expectEmit(address(registry));
        emit IDatanetRegistry.DatanetOwnershipTransferred(id, alice, bob);
        vm.prank(alice);
        registry.transferDatanetOwnership(id, bob);
        vm.assertEq(registry.datanet(id).owner, bob, "owner");

        vm.expectRevert(abi.encodeWithSelector(IDatanetRegistry.DatanetRegistryNotOwner.selector, id, alice));
        vm.prank(alice);
        registry.setCurator(id, curator, true);
    }

    function test_transferDatanetOwnership_toZero_reverts() public {
        uint256 id = _create(alice);
        vm.expectRevert(abi.encodeWithSelector(IDatanetRegistry.DatanetRegistryZeroAddress.selector));
        vm.prank(alice);
        registry.transferDatanetOwnership(id, address(0));
    }

    function test_setCurator_addsAndRemoves() public {
        uint256 id = _create(alice);
        vm.expectEmit(address(registry));
        emit IDatanetRegistry.CuratorSet(id, curator, true);
        vm.prank(alice);
        registry.setCurator(id, curator, true);
        vm.assertTrue(registry.isCurator(id, curator), "added");

        _add(curator, id, keccak256("a"), contributor1);

        vm.prank(alice);
        registry.setCurator(id, curator, false);
        vm.assertFalse(registry.isCurator(id, curator), "removed");
        vm.expectRevert(abi.encodeWithSelector(IDatanetRegistry.DatanetRegistryNotCurator.selector, id, curator));
        vm.prank(curator);
        registry.addContributions(id, _hashes(keccak256("b")), _contributors(contributor1));
    }

    function test_setCurator_byNonOwner_reverts() public {
        uint256 id = _create(alice);
        vm.expectRevert(abi.encodeWithSelector(IDatanetRegistry.DatanetRegistryNotOwner.selector, id, curator));
        vm.prank(curator);
        registry.setCurator(id, curator, true);
    }

    function test_setCurator_zero_reverts() public {
        uint256 id = _create(alice);
        vm.expectRevert(abi.encodeWithSelector(IDatanetRegistry.DatanetRegistryZeroAddress.selector));
        vm.prank(alice);
        registry.setCurator(id, address(0), true);
    }

    function test_setCurator_onUnknownDatanet_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(IDatanetRegistry.DatanetRegistryUnknownDatanet.selector, 7));
        registry.setCurator(7, curator, true);
    }

    // --------------------------------------------------------------------------------------------------------------
    // Contributions
    // --------------------------------------------------------------------------------------------------------------

    function test_addContributions_appendsInOrder() public {
        uint256 id = _create(alice);
        bytes32[] memory hashes = new bytes32[](3);
        address[] memory who = new address[](3);
        for (uint256 i = 0; i < 3; ++i) {
            hashes[i] = keccak256(abi.encode("content", i));
            who[i] = i == 1 ? contributor2 : contributor1;
        }
        vm.expectEmit(address(registry));
        emit IDatanetRegistry.ContributionAdded(id, 0, hashes[0], contributor1);
        vm.expectEmit(address(registry));
        emit IDatanetRegistry.ContributionAdded(id, 1, hashes[1], contributor2);
        vm.expectEmit(address(registry));
        emit IDatanetRegistry.ContributionAdded(id, 2, hashes[2], contributor1);
        vm.prank(alice);
        uint256 first = registry.addContributions(id, hashes, who);
        vm.snapshotGasLastCall("addContributions_3");

        vm.assertEq(first, 0, "first index");
        vm.assertEq(registry.contributionCount(id), 3, "count");
        vm.assertEq(registry.datanet(id).contributionCount, 3, "count in datanet");
        IDatanetRegistry.Contribution memory c = registry.contribution(id, 1);
        vm.assertEq(c.contentHash, hashes[1], "hash");
        vm.assertEq(c.contributor, contributor2, "contributor");
        vm.assertEq(c.addedAt, START_TIME, "added at");
        (bool found, uint256 index) = registry.contributionIndex(id, hashes[2]);
        vm.assertTrue(found, "found");
        vm.assertEq(index, 2, "index");

        vm.prank(alice);
        vm.assertEq(registry.addContributions(id, _hashes(keccak256("d")), _contributors(bob)), 3, "next first");
    }

    function test_addContributions_sameContentInAnotherDatanet_isAllowed() public {
        uint256 a = _create(alice);
        uint256 b = _create(bob);
        _add(alice, a, keccak256("shared"), contributor1);
        _add(bob, b, keccak256("shared"), contributor2);
        vm.assertEq(registry.contribution(b, 0).contributor, contributor2, "independent");
    }

    function test_addContributions_byStranger_reverts() public {
        uint256 id = _create(alice);
        vm.expectRevert(abi.encodeWithSelector(IDatanetRegistry.DatanetRegistryNotCurator.selector, id, bob));
        vm.prank(bob);
        registry.addContributions(id, _hashes(keccak256("a")), _contributors(contributor1));
    }

    function test_addContributions_toUnknownDatanet_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(IDatanetRegistry.DatanetRegistryUnknownDatanet.selector, 3));
        registry.addContributions(3, _hashes(keccak256("a")), _contributors(contributor1));
    }

    function test_addContributions_withMismatchedLengths_reverts() public {
        uint256 id = _create(alice);
        vm.expectRevert(abi.encodeWithSelector(IDatanetRegistry.DatanetRegistryLengthMismatch.selector, 1, 0));
        vm.prank(alice);
        registry.addContributions(id, _hashes(keccak256("a")), new address[](0));
    }

    function test_addContributions_withBadBatchSize_reverts() public {
        uint256 id = _create(alice);
        vm.expectRevert(abi.encodeWithSelector(IDatanetRegistry.DatanetRegistryInvalidBatchSize.selector, 0, 256));
        vm.prank(alice);
        registry.addContributions(id, new bytes32[](0), new address[](0));

        vm.expectRevert(abi.encodeWithSelector(IDatanetRegistry.DatanetRegistryInvalidBatchSize.selector, 257, 256));
        vm.prank(alice);
        registry.addContributions(id, new bytes32[](257), new address[](257));
    }

    function test_addContributions_withZeroValues_reverts() public {
        uint256 id = _create(alice);
        vm.expectRevert(
            abi.encodeWithSelector(
                IDatanetRegistry.DatanetRegistryInvalidContribution.selector, 0, bytes32(0), contributor1
            )
        );
        vm.prank(alice);
        registry.addContributions(id, _hashes(bytes32(0)), _contributors(contributor1));

        vm.expectRevert(
            abi.encodeWithSelector(
                IDatanetRegistry.DatanetRegistryInvalidContribution.selector, 0, keccak256("a"), address(0)
            )
        );
        vm.prank(alice);
        registry.addContributions(id, _hashes(keccak256("a")), _contributors(address(0)));
    }

    function test_addContributions_duplicate_revertsWholeBatch() public {
        uint256 id = _create(alice);
        _add(alice, id, keccak256("a"), contributor1);

        bytes32[] memory hashes = new bytes32[](2);
        hashes[0] = keccak256("b");
        hashes[1] = keccak256("a");
        address[] memory who = new address[](2);
        who[0] = contributor2;
        who[1] = contributor2;
        vm.expectRevert(
            abi.encodeWithSelector(
                IDatanetRegistry.DatanetRegistryDuplicateContribution.selector, id, keccak256("a"), 0
            )
        );
        vm.prank(alice);
        registry.addContributions(id, hashes, who);
        vm.assertEq(registry.contributionCount(id), 1, "nothing added");
    }

    function test_addContributions_duplicateWithinBatch_reverts() public {
        uint256 id = _create(alice);
        bytes32[] memory hashes = new bytes32[](2);
        hashes[0] = keccak256("a");
        hashes[1] = keccak256("a");
        address[] memory who = new address[](2);
        who[0] = contributor1;
        who[1] = contributor2;
        vm.expectRevert(
            abi.encodeWithSelector(
                IDatanetRegistry.DatanetRegistryDuplicateContribution.selector, id, keccak256("a"), 0
            )
        );
        vm.prank(alice);
        registry.addContributions(id, hashes, who);
    }

    function test_contribution_outOfRange_reverts() public {
        uint256 id = _create(alice);
        vm.expectRevert(abi.encodeWithSelector(IDatanetRegistry.DatanetRegistryUnknownContribution.selector, id, 0));
        registry.contribution(id, 0);
    }

    function test_contributionIndex_whenAbsent_isNotFound() public {
        uint256 id = _create(alice);
        (bool found, uint256 index) = registry.contributionIndex(id, keccak256("a"));
        vm.assertFalse(found, "found");
        vm.assertEq(index, 0, "index");
    }

    function test_contributionCount_ofUnknownDatanet_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(IDatanetRegistry.DatanetRegistryUnknownDatanet.selector, 5));
        registry.contributionCount(5);
    }

    function testFuzz_addContributions_indexesEveryHash(uint8 count, bytes32 seed) public {
        count = uint8(bound(count, 1, 40));
        uint256 id = _create(alice);
        bytes32[] memory hashes = new bytes32[](count);
        address[] memory who = new address[](count);
        for (uint256 i = 0; i < count; ++i) {
            hashes[i] = keccak256(abi.encode(seed, i));
            who[i] = address(uint160(uint256(keccak256(abi.encode(seed, i, "who"))) | 1));
        }
        vm.prank(alice);
        registry.addContributions(id, hashes, who);
        for (uint256 i = 0; i < count; ++i) {
            (bool found, uint256 index) = registry.contributionIndex(id, hashes[i]);
            vm.assertTrue(found, "found");
            vm.assertEq(index, i, "index");
            vm.assertEq(registry.contribution(id, i).contributor, who[i], "contributor");
        }
    }

    // --------------------------------------------------------------------------------------------------------------
    // Models
    // --------------------------------------------------------------------------------------------------------------

    function test_registerModel_storesAndEmits() public {
        _create(alice);
        _create(alice);
        uint256[] memory ids = _ids(1, 2);
        vm.expectEmit(address(registry));
        emit IDatanetRegistry.ModelRegistered(MODEL_ID, bob, INDEX_ROOT, ids, "ipfs://model");
        vm.prank(bob);
        registry.registerModel(MODEL_ID, ids, INDEX_ROOT, "ipfs://model");
        vm.snapshotGasLastCall("registerModel");

        IDatanetRegistry.Model memory m = registry.model(MODEL_ID);
        vm.assertEq(m.owner, bob, "owner");
        vm.assertEq(m.registeredAt, START_TIME, "registered at");
        vm.assertEq(m.indexRoot, INDEX_ROOT, "index root");
        vm.assertEq(m.datanetIds.length, 2, "datanets");
        vm.assertEq(m.datanetIds[1], 2, "second datanet");
        vm.assertEq(m.metadataURI, "ipfs://model");
    }

    function test_registerModel_twice_reverts() public {
        _create(alice);
        registry.registerModel(MODEL_ID, _ids(1), INDEX_ROOT, URI);
        vm.expectRevert(abi.encodeWithSelector(IDatanetRegistry.DatanetRegistryModelExists.selector, MODEL_ID));
        vm.prank(bob);
        registry.registerModel(MODEL_ID, _ids(1), INDEX_ROOT, URI);
    }

    function test_registerModel_withZeroIds_reverts() public {
        _create(alice);
        vm.expectRevert(abi.encodeWithSelector(IDatanetRegistry.DatanetRegistryZeroModelId.selector));
        registry.registerModel(bytes32(0), _ids(1), INDEX_ROOT, URI);
        vm.expectRevert(abi.encodeWithSelector(IDatanetRegistry.DatanetRegistryZeroIndexRoot.selector));
        registry.registerModel(MODEL_ID, _ids(1), bytes32(0), URI);
    }

    function test_registerModel_withBadDatanetCount_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(IDatanetRegistry.DatanetRegistryInvalidDatanetCount.selector, 0, 64));
        registry.registerModel(MODEL_ID, new uint256[](0), INDEX_ROOT, URI);
        vm.expectRevert(abi.encodeWithSelector(IDatanetRegistry.DatanetRegistryInvalidDatanetCount.selector, 65, 64));
        registry.registerModel(MODEL_ID, new uint256[](65), INDEX_ROOT, URI);
    }

    function test_registerModel_withUnsortedOrDuplicateDatanets_reverts() public {
        _create(alice);
        _create(alice);
        vm.expectRevert(abi.encodeWithSelector(IDatanetRegistry.DatanetRegistryUnsortedDatanets.selector, 2, 1));
        registry.registerModel(MODEL_ID, _ids(2, 1), INDEX_ROOT, URI);
        vm.expectRevert(abi.encodeWithSelector(IDatanetRegistry.DatanetRegistryUnsortedDatanets.selector, 1, 1));
        registry.registerModel(MODEL_ID, _ids(1, 1), INDEX_ROOT, URI);
        vm.expectRevert(abi.encodeWithSelector(IDatanetRegistry.DatanetRegistryUnsortedDatanets.selector, 0, 0));
        registry.registerModel(MODEL_ID, _ids(0), INDEX_ROOT, URI);
    }

    function test_registerModel_withUnknownDatanet_reverts() public {
        _create(alice);
        vm.expectRevert(abi.encodeWithSelector(IDatanetRegistry.DatanetRegistryUnknownDatanet.selector, 2));
        registry.registerModel(MODEL_ID, _ids(1, 2), INDEX_ROOT, URI);
    }

    function test_registerModel_withBadMetadataURI_reverts() public {
        _create(alice);
        vm.expectRevert(abi.encodeWithSelector(IDatanetRegistry.DatanetRegistryInvalidMetadataURI.selector, 0, 2048));
        registry.registerModel(MODEL_ID, _ids(1), INDEX_ROOT, "");
    }

    function test_model_whenUnknown_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(IDatanetRegistry.DatanetRegistryUnknownModel.selector, MODEL_ID));
        registry.model(MODEL_ID);
    }

    // --------------------------------------------------------------------------------------------------------------
    // Helpers
    // --------------------------------------------------------------------------------------------------------------

    function _create(address owner) internal returns (uint256 id) {
        vm.prank(owner);
        id = registry.createDatanet(URI);
    }

    function _add(address sender, uint256 id, bytes32 contentHash, address contributor) internal {
        vm.prank(sender);
        registry.addContributions(id, _hashes(contentHash), _contributors(contributor));
    }

    function _hashes(bytes32 a) internal pure returns (bytes32[] memory list) {
        list = new bytes32[](1);
        list[0] = a;
    }

    function _contributors(address a) internal pure returns (address[] memory list) {
        list = new address[](1);
        list[0] = a;
    }

    function _ids(uint256 a) internal pure returns (uint256[] memory list) {
        list = new uint256[](1);
        list[0] = a;
    }

    function _ids(uint256 a, uint256 b) internal pure returns (uint256[] memory list) {
        list = new uint256[](2);
        list[0] = a;
        list[1] = b;
    }
}
