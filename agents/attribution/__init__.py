"""Proof of Attribution: datanets of contributions, the suffix-array index, per-contributor weights, rewards.

A datanet (:class:`Datanet`) is a directory of contributions, each a text and the address to pay. An
:class:`AttributionIndex` tokenizes one or more datanets with the model's tokenizer into a suffix array on disk;
its root is registered with the model on chain. :meth:`AttributionIndex.attribute` turns an output's token ids
into an :class:`Attribution` (spans and basis points per contributor) whose hash is the receipt's
``attributionHash``; :func:`epoch_rewards` turns an epoch's fees and attributions into the rewards tree that
ReceiptRegistry pays from.
"""

from .datanet import (
    DEFAULT_MAX_CONTRIBUTION_BYTES,
    AddResult,
    Contribution,
    Datanet,
    Duplicate,
    Registration,
    contributions_from_files,
    contributions_from_jsonl,
)
from .errors import (
    AttributionError,
    AttributionIndexError,
    ContributionError,
    ContributionTooLargeError,
    DatanetFormatError,
    NotUtf8Error,
    OutputTokensError,
    RewardsError,
    TokenizerError,
    TokenizerMismatchError,
)
from .index import AttributionIndex, IndexParameters, load_tokenizer, tokenizer_hash
from .protocol import BPS, AttributedSpan, Attribution, ContributorWeight
from .rewards import EpochRewards, epoch_rewards

__all__ = [
    "BPS",
    "DEFAULT_MAX_CONTRIBUTION_BYTES",
    "AddResult",
    "AttributedSpan",
    "Attribution",
    "AttributionError",
    "AttributionIndex",
    "AttributionIndexError",
    "Contribution",
    "ContributionError",
    "ContributionTooLargeError",
    "ContributorWeight",
    "Datanet",
    "DatanetFormatError",
    "Duplicate",
    "EpochRewards",
    "IndexParameters",
    "NotUtf8Error",
    "OutputTokensError",
    "Registration",
    "RewardsError",
    "TokenizerError",
    "TokenizerMismatchError",
    "contributions_from_files",
    "contributions_from_jsonl",
    "epoch_rewards",
    "load_tokenizer",
    "tokenizer_hash",
]
