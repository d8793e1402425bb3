"""The validator's public surface: what ``validator`` exports, sorted, and nothing private."""

from __future__ import annotations

import validator

PUBLIC = [
    "AUDIT_ALL",
    "EVIDENCE_VERSION",
    "AgentFactory",
    "AttributionMismatch",
    "AuditReport",
    "AuditSampler",
    "Auditor",
    "CallInconsistent",
    "ChainFacts",
    "Check",
    "Evidence",
    "EvidenceError",
    "Finding",
    "HashMismatch",
    "IndexRootMismatchError",
    "LikelihoodMismatch",
    "NotIncluded",
    "NotStaked",
    "RecordMismatch",
    "ReplayDiffers",
    "ReplayDiverged",
    "ReplayFailed",
    "ServedModel",
    "Skipped",
    "TokenEvidence",
    "TokenViolation",
    "Tolerances",
    "ValidatorConfigError",
    "ValidatorError",
    "WrongIndex",
    "WrongSigner",
    "read_chain_facts",
    "sample_positions",
    "sampling_message",
    "sampling_seed",
    "score_findings",
]


def test_the_public_surface_is_pinned_and_sorted() -> None:
    assert validator.__all__ == PUBLIC
    assert all(hasattr(validator, name) for name in PUBLIC)


def test_errors_hang_under_the_project_root() -> None:
    from staking.errors import StakedError

    assert issubclass(validator.ValidatorError, StakedError)
    assert issubclass(validator.IndexRootMismatchError, validator.ValidatorConfigError)
    assert issubclass(validator.EvidenceError, ValueError)
