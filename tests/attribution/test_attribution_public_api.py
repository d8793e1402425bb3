"""Pins the public surface of agents.attribution: a change here is a change users see."""

from __future__ import annotations

import agents.attribution
from staking import StakedError

PUBLIC = [
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


def test_the_surface_is_pinned_sorted_and_complete() -> None:
    assert agents.attribution.__all__ == PUBLIC
    assert sorted(PUBLIC, key=lambda name: (not name.isupper(), name)) == PUBLIC
    for name in PUBLIC:
        assert hasattr(agents.attribution, name), name


def test_every_error_is_an_attribution_error_under_staked_error() -> None:
    errors = [getattr(agents.attribution, name) for name in PUBLIC if name.endswith("Error")]
    assert all(issubclass(error, agents.attribution.AttributionError) for error in errors)
    assert issubclass(agents.attribution.AttributionError, StakedError)
