"""The validator: audits of agents' receipts, the evidence of disputes, and which receipts to audit.

:class:`Auditor` checks one receipt document (signature and registration, the record's hashes, inclusion in the
committed epoch, the output re-scored by teacher forcing, a replay of the agent's skill, the attribution) and
reports typed findings; :meth:`AuditReport.evidence` turns them into the document a challenge's ``evidenceHash``
commits to. :func:`sample_positions` picks the receipts of an epoch to audit, unpredictably for the agent. The
daemon (chain following, scheduling, state) wires these together.
"""

from .audit import (
    EVIDENCE_VERSION,
    AgentFactory,
    AttributionMismatch,
    Auditor,
    AuditReport,
    CallInconsistent,
    ChainFacts,
    Check,
    Evidence,
    Finding,
    HashMismatch,
    LikelihoodMismatch,
    NotIncluded,
    NotStaked,
    RecordMismatch,
    ReplayDiffers,
    ReplayDiverged,
    ReplayFailed,
    ServedModel,
    Skipped,
    TokenEvidence,
    TokenViolation,
    Tolerances,
    WrongIndex,
    WrongSigner,
    read_chain_facts,
    score_findings,
)
from .errors import EvidenceError, IndexRootMismatchError, ValidatorConfigError, ValidatorError
from .sampling import AUDIT_ALL, AuditSampler, sample_positions, sampling_message, sampling_seed

__all__ = [
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
