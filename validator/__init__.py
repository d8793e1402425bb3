"""The validator: audits of agents' receipts, the evidence of disputes, and which receipts to audit.

:class:`Auditor` checks one receipt document (signature and registration, the record's hashes, inclusion in the
committed epoch, the output re-scored by teacher forcing, a replay of the agent's skill, the attribution) and
reports typed findings; :meth:`AuditReport.evidence` turns them into the document a challenge's ``evidenceHash``
commits to. :func:`sample_positions` picks the receipts of an epoch to audit, unpredictably for the agent.

:class:`ValidatorDaemon` wires these together (``staked validator run``): it follows the chain from a persisted
cursor, samples and audits committed epochs, takes payers' receipts (``POST /v1/receipts``), opens challenges with
evidence, votes on others' and resolves them, keeping what it did in :class:`ValidatorState`.
"""

from .agents_api import AgentsApi, RecordUnavailableError
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
from .config import ModelSettings, ValidatorSettings
from .daemon import JOB_NAMES, ReceiptRejectedError, ValidatorDaemon, ensure_validator_stake
from .errors import EvidenceError, IndexRootMismatchError, ValidatorConfigError, ValidatorError
from .metrics import ValidatorMetrics
from .sampling import AUDIT_ALL, AuditSampler, sample_positions, sampling_message, sampling_seed
from .state import (
    AuditOutcome,
    AuditRecord,
    AuditStatus,
    ChallengeRecord,
    DisputeRecord,
    EpochRecord,
    HeldReceipt,
    ReportRecord,
    ReportStatus,
    ResolutionRecord,
    StateError,
    ValidatorState,
    VoteDecision,
    VoteRecord,
)

__all__ = [
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
