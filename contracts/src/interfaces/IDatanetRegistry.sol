// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title Datanets, their contributions, and the models trained on them
/// @notice A *datanet* is a curated collection of data. Its owner (whoever created it) and the curators the owner
/// appoints add *contributions*: the keccak256 of a piece of content and the address to pay when an answer draws on
/// it. A *model* is registered under its `modelId` (keccak256 over its weight files) with the datanets it was trained
/// on and the root of its attribution index (the hash of the index files), so anyone can recompute an answer's
/// attribution and check it against the agent's receipt.
///
/// A content hash appears at most once per datanet: adding it again reverts, so every contribution has one
/// contributor and one index. Contributions are append-only: an index never changes meaning. Nothing here holds
/// funds; rewards are paid by the receipt registry.
interface IDatanetRegistry {
    /// @notice A datanet.
    /// @param owner may add contributions, appoint curators, change the metadata and hand the datanet over.
    /// @param createdAt block time of creation.
    /// @param contributionCount number of contributions so far.
    /// @param metadataURI where the datanet's description lives (name, licence, format).
    struct Datanet {
        address owner;
        uint48 createdAt;
        uint64 contributionCount;
        string metadataURI;
    }

    /// @notice One contribution to a datanet.
    /// @param contentHash keccak256 of the content.
    /// @param contributor who is paid when an answer draws on the content.
    /// @param addedAt block time it was added.
    struct Contribution {
        bytes32 contentHash;
        address contributor;
        uint48 addedAt;
    }

    /// @notice A registered model.
    /// @param owner who registered it.
    /// @param registeredAt block time of registration.
    /// @param indexRoot hash of the model's attribution index files.
    /// @param datanetIds the datanets it was trained on, in increasing order.
    /// @param metadataURI where the model's description lives (architecture, tokenizer, training run).
    struct Model {
        address owner;
        uint48 registeredAt;
        bytes32 indexRoot;
        uint256[] datanetIds;
        string metadataURI;
    }

    /// @notice `owner` created datanet `datanetId`.
    event DatanetCreated(uint256 indexed datanetId, address indexed owner, string metadataURI);

    /// @notice The metadata of datanet `datanetId` moved to `metadataURI`.
    event DatanetMetadataSet(uint256 indexed datanetId, string metadataURI);

    /// @notice Datanet `datanetId` passed from `previousOwner` to `newOwner`.
    event DatanetOwnershipTransferred(
        uint256 indexed datanetId, address indexed previousOwner, address indexed newOwner
    );

    /// @notice `curator` may (`allowed`) or may no longer add contributions to datanet `datanetId`.
    event CuratorSet(uint256 indexed datanetId, address indexed curator, bool allowed);

    /// @notice Content `contentHash` of `contributor` became contribution `index` of datanet `datanetId`.
    event ContributionAdded(
        uint256 indexed datanetId, uint256 indexed index, bytes32 indexed contentHash, address contributor
    );

    /// @notice `owner` registered model `modelId`, trained on `datanetIds`, with attribution index root `indexRoot`.
    event ModelRegistered(
        bytes32 indexed modelId, address indexed owner, bytes32 indexRoot, uint256[] datanetIds, string metadataURI
    );

    /// @notice There is no datanet `datanetId`.
    error DatanetRegistryUnknownDatanet(uint256 datanetId);

    /// @notice `caller` is not the owner of datanet `datanetId`.
    error DatanetRegistryNotOwner(uint256 datanetId, address caller);

    /// @notice `caller` is neither the owner nor a curator of datanet `datanetId`.
    error DatanetRegistryNotCurator(uint256 datanetId, address caller);

    /// @notice The zero address was given where an account is needed.
    error DatanetRegistryZeroAddress();

    /// @notice A metadata URI is empty or longer than `maxLength` bytes.
    error DatanetRegistryInvalidMetadataURI(uint256 length, uint256 maxLength);

    /// @notice {addContributions} got `contentHashes` content hashes but `contributors` contributors.
    error DatanetRegistryLengthMismatch(uint256 contentHashes, uint256 contributors);

    /// @notice {addContributions} got no contributions, or more than `maxBatch`.
    error DatanetRegistryInvalidBatchSize(uint256 size, uint256 maxBatch);

    /// @notice Contribution `index` of the batch has a zero content hash or a zero contributor.
    error DatanetRegistryInvalidContribution(uint256 index, bytes32 contentHash, address contributor);

    /// @notice `contentHash` is already contribution `existingIndex` of datanet `datanetId`.
    error DatanetRegistryDuplicateContribution(uint256 datanetId, bytes32 contentHash, uint256 existingIndex);

    /// @notice Datanet `datanetId` has no contribution `index`.
    error DatanetRegistryUnknownContribution(uint256 datanetId, uint256 index);

    /// @notice The model id is zero.
    error DatanetRegistryZeroModelId();

    /// @notice Model `modelId` is already registered.
    error DatanetRegistryModelExists(bytes32 modelId);

    /// @notice There is no model `modelId`.
    error DatanetRegistryUnknownModel(bytes32 modelId);

    /// @notice The attribution index root is zero.
    error DatanetRegistryZeroIndexRoot();

    /// @notice A model needs between one and `max` datanets; it got `count`.
    error DatanetRegistryInvalidDatanetCount(uint256 count, uint256 max);

    /// @notice Datanet ids must be strictly increasing (hence free of duplicates): `datanetId` follows `previous`.
    error DatanetRegistryUnsortedDatanets(uint256 previous, uint256 datanetId);

    /// @notice Creates a datanet owned by the caller.
    /// @return datanetId its id; ids run from 1.
    function createDatanet(string calldata metadataURI) external returns (uint256 datanetId);

    /// @notice Moves the metadata of datanet `datanetId` to `metadataURI`. Datanet owner only.
    function setDatanetMetadataURI(uint256 datanetId, string calldata metadataURI) external;

    /// @notice Hands datanet `datanetId` over to `newOwner`. Datanet owner only. Curators stay appointed.
    function transferDatanetOwnership(uint256 datanetId, address newOwner) external;

    /// @notice Lets `curator` add contributions to datanet `datanetId`, or no longer (`allowed` false). Datanet
    /// owner only.
    function setCurator(uint256 datanetId, address curator, bool allowed) external;

    /// @notice Appends contributions to datanet `datanetId`: `contentHashes[i]` of `contributors[i]`. Datanet owner
    /// or curators only. Reverts as a whole if any content hash is zero or already in the datanet (also earlier in
    /// the same batch), or any contributor is zero.
    /// @return firstIndex the index of the first contribution added; the others follow it in order.
    function addContributions(uint256 datanetId, bytes32[] calldata contentHashes, address[] calldata contributors)
        external
        returns (uint256 firstIndex);

    /// @notice Registers model `modelId` with the caller as its owner.
    /// @param datanetIds the existing datanets the model was trained on, strictly increasing.
    /// @param indexRoot hash of the model's attribution index files.
    function registerModel(
        bytes32 modelId,
        uint256[] calldata datanetIds,
        bytes32 indexRoot,
        string calldata metadataURI
    ) external;

    /// @notice The number of datanets; ids run from 1 to it.
    function datanetCount() external view returns (uint256);

    /// @notice Datanet `datanetId`.
    function datanet(uint256 datanetId) external view returns (Datanet memory);

    /// @notice Whether `account` is a curator of datanet `datanetId` (the owner need not be one).
    function isCurator(uint256 datanetId, address account) external view returns (bool);

    /// @notice The number of contributions to datanet `datanetId`.
    function contributionCount(uint256 datanetId) external view returns (uint256);

    /// @notice Contribution `index` of datanet `datanetId`.
    function contribution(uint256 datanetId, uint256 index) external view returns (Contribution memory);

    /// @notice Where `contentHash` is among the contributions of datanet `datanetId`.
    /// @return found whether it is there.
    /// @return index its index, when found.
    function contributionIndex(uint256 datanetId, bytes32 contentHash) external view returns (bool found, uint256 index);

    /// @notice Model `modelId`.
    function model(bytes32 modelId) external view returns (Model memory);
}
