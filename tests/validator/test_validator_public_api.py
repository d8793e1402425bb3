"""The validator's public surface: what ``validator`` exports, sorted, and nothing private."""

from __future__ import annotations

import validator

PUBLIC = [
    "AUDIT_ALL",
    "EVIDENCE_VERSION",
    "JOB_NAMES",
    "AgentFactory",
    "AgentsApi",
    "AttributionMismatch",
    "AuditOutcome",
    "AuditRecord",
    "AuditReport",
    "AuditSampler",
    "AuditStatus",
    "Auditor",
    "CallInconsistent",
    "ChainFacts",
    "ChallengeRecord",
    "Check",
    "DisputeRecord",
    "EpochRecord",
    "Evidence",
    "EvidenceError",
    "Finding",
    "HashMismatch",
    "HeldReceipt",
    "IndexRootMismatchError",
    "LikelihoodMismatch",
    "ModelSettings",
    "NotIncluded",
    "NotStaked",
    "ReceiptRejectedError",
    "RecordMismatch",
    "RecordUnavailableError",
    "ReplayDiffers",
    "ReplayDiverged",
    "ReplayFailed",
    "ReportRecord",
    "ReportStatus",
    "ResolutionRecord",
    "ServedModel",
    "Skipped",
    "StateError",
    "TokenEvidence",
    "TokenViolation",
    "Tolerances",
    "ValidatorConfigError",
    "ValidatorDaemon",
    "ValidatorError",
    "ValidatorMetrics",
    "ValidatorSettings",
    "ValidatorState",
    "VoteDecision",
    "VoteRecord",
    "WrongIndex",
    "WrongSigner",
    "ensure_validator_stake",
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
