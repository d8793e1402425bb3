// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IDatanetRegistry} from "./interfaces/IDatanetRegistry.sol";

/// @title Datanets, their contributions, and the models trained on them
/// @notice See {IDatanetRegistry}. Permissionless: anyone may create datanets and register models; there is no
/// administrator.
contract DatanetRegistry is IDatanetRegistry {
    /// @notice The longest metadata URI, in bytes.
    uint256 public constant MAX_METADATA_URI_LENGTH = 2048;

    /// @notice The most contributions one {addContributions} call may add.
    uint256 public constant MAX_CONTRIBUTIONS_PER_BATCH = 256;

    /// @notice The most datanets a model may name.
    uint256 public constant MAX_DATANETS_PER_MODEL = 64;

    /// @dev A datanet as stored: its contribution count is the length of its contributions array.
    struct DatanetRecord {
        address owner;
        uint48 createdAt;
        string metadataURI;
    }

    uint256 private _datanetCount;

    mapping(uint256 datanetId => DatanetRecord) private _datanets;
    mapping(uint256 datanetId => Contribution[]) private _contributions;
    /// @dev Index + 1 of each content hash in its datanet's contributions; zero when absent.
    mapping(uint256 datanetId => mapping(bytes32 contentHash => uint256 indexPlusOne)) private _contributionIndex;
    mapping(uint256 datanetId => mapping(address account => bool allowed)) private _curators;
    mapping(bytes32 modelId => Model) private _models;

    // ------------------------------------------------------------------------------------------------------------
    // Datanets
    // ------------------------------------------------------------------------------------------------------------

    /// @inheritdoc IDatanetRegistry
    function createDatanet(string calldata metadataURI) external returns (uint256 datanetId) {
        _checkMetadataURI(metadataURI);

        datanetId = ++_datanetCount;
        _datanets[datanetId] =
            DatanetRecord({owner: msg.sender, createdAt: SafeCast.toUint48(block.timestamp), metadataURI: metadataURI});
        emit DatanetCreated(datanetId, msg.sender, metadataURI);
    }

    /// @inheritdoc IDatanetRegistry
    function setDatanetMetadataURI(uint256 datanetId, string calldata metadataURI) external {
        DatanetRecord storage record = _ownedDatanet(datanetId);
        _checkMetadataURI(metadataURI);

        record.metadataURI = metadataURI;
        emit DatanetMetadataSet(datanetId, metadataURI);
    }

    /// @inheritdoc IDatanetRegistry
    function transferDatanetOwnership(uint256 datanetId, address newOwner) external {
        DatanetRecord storage record = _ownedDatanet(datanetId);
        if (newOwner == address(0)) revert DatanetRegistryZeroAddress();

        record.owner = newOwner;
        emit DatanetOwnershipTransferred(datanetId, msg.sender, newOwner);
    }

    /// @inheritdoc IDatanetRegistry
    function setCurator(uint256 datanetId, address curator, bool allowed) external {
        _ownedDatanet(datanetId);
        if (curator == address(0)) revert DatanetRegistryZeroAddress();

        _curators[datanetId][curator] = allowed;
        emit CuratorSet(datanetId, curator, allowed);
    }

    /// @inheritdoc IDatanetRegistry
    function addContributions(uint256 datanetId, bytes32[] calldata contentHashes, address[] calldata contributors)
        external
        returns (uint256 firstIndex)
    {
        DatanetRecord storage record = _existingDatanet(datanetId);
        if (msg.sender != record.owner && !_curators[datanetId][msg.sender]) {
            revert DatanetRegistryNotCurator(datanetId, msg.sender);
        }
        uint256 size = contentHashes.length;
        if (size != contributors.length) revert DatanetRegistryLengthMismatch(size, contributors.length);
        if (size == 0 || size > MAX_CONTRIBUTIONS_PER_BATCH) {
            revert DatanetRegistryInvalidBatchSize(size, MAX_CONTRIBUTIONS_PER_BATCH);
        }

        firstIndex = _contributions[datanetId].length;
        for (uint256 i = 0; i < size; ++i) {
            _addContribution(datanetId, i, contentHashes[i], contributors[i]);
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // Models
    // ------------------------------------------------------------------------------------------------------------

    /// @inheritdoc IDatanetRegistry
    function registerModel(
        bytes32 modelId,
        uint256[] calldata datanetIds,
        bytes32 indexRoot,
        string calldata metadataURI
    ) external {
        if (modelId == bytes32(0)) revert DatanetRegistryZeroModelId();
        if (_models[modelId].owner != address(0)) revert DatanetRegistryModelExists(modelId);
        if (indexRoot == bytes32(0)) revert DatanetRegistryZeroIndexRoot();
        uint256 count = datanetIds.length;
        if (count == 0 || count > MAX_DATANETS_PER_MODEL) {
            revert DatanetRegistryInvalidDatanetCount(count, MAX_DATANETS_PER_MODEL);
        }
        uint256 previous = 0;
        for (uint256 i = 0; i < count; ++i) {
            uint256 datanetId = datanetIds[i];
            if (datanetId <= previous) revert DatanetRegistryUnsortedDatanets(previous, datanetId);
            _existingDatanet(datanetId);
            previous = datanetId;
        }
        _checkMetadataURI(metadataURI);

        _models[modelId] = Model({
            owner: msg.sender,
            registeredAt: SafeCast.toUint48(block.timestamp),
            indexRoot: indexRoot,
            datanetIds: datanetIds,
            metadataURI: metadataURI
        });
        emit ModelRegistered(modelId, msg.sender, indexRoot, datanetIds, metadataURI);
    }

    // ------------------------------------------------------------------------------------------------------------
    // Views
    // ------------------------------------------------------------------------------------------------------------

    /// @inheritdoc IDatanetRegistry
    function datanetCount() external view returns (uint256) {
        return _datanetCount;
    }

    /// @inheritdoc IDatanetRegistry
    function datanet(uint256 datanetId) external view returns (Datanet memory) {
        DatanetRecord storage record = _existingDatanet(datanetId);
        return Datanet({
            owner: record.owner,
            createdAt: record.createdAt,
            contributionCount: SafeCast.toUint64(_contributions[datanetId].length),
            metadataURI: record.metadataURI
        });
    }

    /// @inheritdoc IDatanetRegistry
    function isCurator(uint256 datanetId, address account) external view returns (bool) {
        return _curators[datanetId][account];
    }

    /// @inheritdoc IDatanetRegistry
    function contributionCount(uint256 datanetId) external view returns (uint256) {
        _existingDatanet(datanetId);
        return _contributions[datanetId].length;
    }

    /// @inheritdoc IDatanetRegistry
    function contribution(uint256 datanetId, uint256 index) external view returns (Contribution memory) {
        _existingDatanet(datanetId);
        Contribution[] storage contributions = _contributions[datanetId];
        if (index >= contributions.length) revert DatanetRegistryUnknownContribution(datanetId, index);
        return contributions[index];
    }

    /// @inheritdoc IDatanetRegistry
    function contributionIndex(uint256 datanetId, bytes32 contentHash)
        external
        view
        returns (bool found, uint256 index)
    {
        uint256 indexPlusOne = _contributionIndex[datanetId][contentHash];
        if (indexPlusOne == 0) return (false, 0);
        return (true, indexPlusOne - 1);
    }

    /// @inheritdoc IDatanetRegistry
    function model(bytes32 modelId) external view returns (Model memory) {
        Model storage m = _models[modelId];
        if (m.owner == address(0)) revert DatanetRegistryUnknownModel(modelId);
        return m;
    }

    // ------------------------------------------------------------------------------------------------------------
    // Internal
    // ------------------------------------------------------------------------------------------------------------

    /// @dev Appends one contribution; `batchIndex` is its position in the caller's batch, for the error.
    function _addContribution(uint256 datanetId, uint256 batchIndex, bytes32 contentHash, address contributor) private {
        if (contentHash == bytes32(0) || contributor == address(0)) {
            revert DatanetRegistryInvalidContribution(batchIndex, contentHash, contributor);
        }
        mapping(bytes32 contentHash => uint256 indexPlusOne) storage indexOf = _contributionIndex[datanetId];
        uint256 existing = indexOf[contentHash];
        if (existing != 0) revert DatanetRegistryDuplicateContribution(datanetId, contentHash, existing - 1);
        Contribution[] storage contributions = _contributions[datanetId];
        uint256 index = contributions.length;

        indexOf[contentHash] = index + 1;
        contributions.push(
            Contribution({
                contentHash: contentHash, contributor: contributor, addedAt: SafeCast.toUint48(block.timestamp)
            })
        );
        emit ContributionAdded(datanetId, index, contentHash, contributor);
    }

    /// @dev Datanet `datanetId`, reverting with {DatanetRegistryUnknownDatanet} if it does not exist.
    function _existingDatanet(uint256 datanetId) private view returns (DatanetRecord storage record) {
        record = _datanets[datanetId];
        if (record.owner == address(0)) revert DatanetRegistryUnknownDatanet(datanetId);
    }

    /// @dev Datanet `datanetId`, reverting unless it exists and the caller owns it.
    function _ownedDatanet(uint256 datanetId) private view returns (DatanetRecord storage record) {
        record = _existingDatanet(datanetId);
        if (msg.sender != record.owner) revert DatanetRegistryNotOwner(datanetId, msg.sender);
    }

    /// @dev Reverts with {DatanetRegistryInvalidMetadataURI} unless `metadataURI` has 1 to
    /// {MAX_METADATA_URI_LENGTH} bytes.
    function _checkMetadataURI(string calldata metadataURI) private pure {
        uint256 length = bytes(metadataURI).length;
        if (length == 0 || length > MAX_METADATA_URI_LENGTH) {
            revert DatanetRegistryInvalidMetadataURI(length, MAX_METADATA_URI_LENGTH);
        }
    }
}
