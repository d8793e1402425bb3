"""The audit of one paid answer: is this receipt the agent's, is it in its epoch, and is the answer honest?

:class:`Auditor` checks one :class:`~agents.record.ReceiptDocument` (the signed receipt, the answer record and the
inclusion proof an agent serves at ``GET /v1/receipts/{requestId}``) in the steps of DESIGN.md, "Verifying an
answer". Every step yields typed findings (frozen dataclasses) that carry the evidence that led to them:

=================  ========================================================================  ===================
check              what is verified                                                          dispute on failure
=================  ========================================================================  ===================
``signature``      the EIP-712 signature recovers to a signer AgentStaking binds to the       none: not the
                   receipt's agent                                                            agent's receipt
``registration``   the agent has slashable Agent stake                                       none: nothing to
                                                                                             slash
``record``         the record is this receipt's (agent, requestId), its four hashes are the   Output (Attribution
                   receipt's, and the receipt's modelId is the agent's registered one         for attributionHash)
``inclusion``      the inclusion proof leads from the receipt's leaf to the root the agent    Withholding
                   committed (``challengeInclusion`` carries no evidence hash)
``output``         every model call, re-scored by teacher forcing on the validator's own      Output
                   engine serving the registered model: prompt tokens are the prompt's,
                   output text is the tokens' text, recorded log-probabilities are the
                   model's, greedy tokens are arg-maxes, sampled tokens lie in the support
``replay``         the agent's published class, run on the recorded calls, asks for exactly   Output
                   those calls and gives exactly the recorded output
``attribution``    the attribution recomputed from the registered index equals the           Attribution
                   recorded one bit for bit
=================  ========================================================================  ===================

A report's :attr:`AuditReport.disputes` says which challenges the findings support, and
:meth:`AuditReport.evidence` builds the :class:`Evidence` document (RFC 8785 canonical JSON) whose keccak256 is the
``evidenceHash`` the challenge posts; voters parse it back with ``Evidence.model_validate_json`` and re-audit.
*Totals* challenges are about an epoch's sums, not one answer: they are out of this module's scope.

The chain is read once per audit into :class:`ChainFacts` (offline callers pass their own). Heavy work never runs
on the event loop: signature recovery, hashing and attribution go to a thread, scoring to the inference engine.

**Tolerances.** On one engine, dtype and model, teacher forcing reproduces the generation's log-probabilities
exactly (measured on vLLM CPU, float32: a difference of 0.0 over thousands of tokens), while a second tiny model
built with another seed differs by 0.05 to 0.13 nats per token on average, 0.2 to 0.6 at most, and puts 5 to 15 of
32 greedy tokens below its arg-max by up to 0.45 nats. The :class:`Tolerances` defaults sit between the two with a
margin on both sides; a validator whose engine differs from the agents' (GPU kernels, bfloat16) must widen them.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, ClassVar, Final, Literal

import rfc8785
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from pydantic import BaseModel, ConfigDict, Field, JsonValue
from tokenizers import Tokenizer

from agents.agent import Agent
from agents.attribution import Attribution, AttributionIndex, OutputTokensError, load_tokenizer
from agents.backend import Backend
from agents.errors import AgentError, ContextLengthError, SkillInputError, SkillOutputError, UnknownSkillError
from agents.protocol import ModelCall, Score
from agents.record import (
    AnswerRecord,
    ReceiptDocument,
    SignedReceiptDocument,
    attributed_tokens,
    engine_hash,
    output_hash,
    request_hash,
)
from agents.replay import Difference, ReplayError, ReplayMismatchError, replay
from staking.client import StakingClient
from staking.eip712 import Domain, recover
from staking.merkle import verify
from staking.types import AgentInfo, DisputeKind, EpochCommitment, EpochStatus, Role, StakeInfo

from .errors import EvidenceError, IndexRootMismatchError, ValidatorConfigError

__all__ = [
    "EVIDENCE_VERSION",
    "AgentFactory",
    "AttributionMismatch",
    "AuditReport",
    "Auditor",
    "CallInconsistent",
    "ChainFacts",
    "Check",
    "Evidence",
    "Finding",
    "HashMismatch",
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
    "WrongIndex",
    "WrongSigner",
    "read_chain_facts",
    "score_findings",
]

logger = logging.getLogger(__name__)

EVIDENCE_VERSION: Final = 1
_ZERO_ADDRESS: Final = "0x" + "00" * 20
_ZERO_HASH: Final = b"\x00" * 32
_REPLACEMENT_CHARACTER: Final = "\ufffd"  # what decoding an incomplete UTF-8 sequence gives

#: Makes the agent that answered a record on a given backend: the agent class itself, usually.
AgentFactory = Callable[[Backend], Agent]


class Check(StrEnum):
    """The steps of an audit, in the order they run."""

    SIGNATURE = "signature"
    REGISTRATION = "registration"
    RECORD = "record"
    INCLUSION = "inclusion"
    OUTPUT = "output"
    REPLAY = "replay"
    ATTRIBUTION = "attribution"


# -- findings --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class WrongSigner:
    """The signature recovers to ``signer`` (``None``: to nobody, it is malformed), which AgentStaking binds to
    ``bound_operator`` (the zero address: to nobody), not to the receipt's ``agent``.

    The receipt is not the agent's: no dispute can be opened on it (the contract checks the same binding).
    """

    code: Literal["wrong-signer"] = "wrong-signer"
    check: ClassVar[Check] = Check.SIGNATURE
    signer: str | None
    bound_operator: str
    agent: str

    @property
    def dispute(self) -> DisputeKind | None:
        return None

    def __str__(self) -> str:
        return f"signed by {self.signer}, a signer of {self.bound_operator}, not of agent {self.agent}"


@dataclass(frozen=True, kw_only=True)
class NotStaked:
    """The ``agent`` has no slashable Agent stake (``active`` and ``slashable`` wei): a fault could not be slashed."""

    code: Literal["not-staked"] = "not-staked"
    check: ClassVar[Check] = Check.REGISTRATION
    agent: str
    active: int
    slashable: int

    @property
    def dispute(self) -> DisputeKind | None:
        return None

    def __str__(self) -> str:
        return f"agent {self.agent} has no slashable stake (active {self.active}, slashable {self.slashable} wei)"


@dataclass(frozen=True, kw_only=True)
class RecordMismatch:
    """The record or the registration disagrees with the receipt on ``field``: the receipt's ``agent`` or
    ``requestId`` against the record's, or its ``modelId`` against the agent's registered one (``expected``)."""

    code: Literal["record-mismatch"] = "record-mismatch"
    check: ClassVar[Check] = Check.RECORD
    field: Literal["agent", "requestId", "modelId"]
    receipt: str
    expected: str

    @property
    def dispute(self) -> DisputeKind | None:
        return DisputeKind.OUTPUT

    def __str__(self) -> str:
        return f"receipt {self.field} {self.receipt}, expected {self.expected}"


_HashField = Literal["requestHash", "outputHash", "engineHash", "attributionHash"]
_TokenRule = Literal["logprob", "greedy", "top_k", "top_p", "min_p", "negligible"]


@dataclass(frozen=True, kw_only=True)
class HashMismatch:
    """The receipt's ``field`` is ``receipt``; the record hashes to ``recomputed`` (rules of :mod:`agents.record`)."""

    code: Literal["hash-mismatch"] = "hash-mismatch"
    check: ClassVar[Check] = Check.RECORD
    field: _HashField
    receipt: str
    recomputed: str

    @property
    def dispute(self) -> DisputeKind | None:
        return DisputeKind.ATTRIBUTION if self.field == "attributionHash" else DisputeKind.OUTPUT

    def __str__(self) -> str:
        return f"receipt {self.field} {self.receipt}, the record hashes to {self.recomputed}"


@dataclass(frozen=True, kw_only=True)
class NotIncluded:
    """The agent does not show receipt ``seq`` of ``epoch`` in the receipts it committed: ``reason`` says how.

    Attributes:
        status: the epoch's status on chain (``COMMITTED`` or ``SKIPPED``).
        receipts_root: the committed root (``None`` for a skipped epoch).
        receipt_count: the committed number of receipts.
        leaf: the receipt's leaf (``Receipt.leaf``).
    """

    code: Literal["not-included"] = "not-included"
    check: ClassVar[Check] = Check.INCLUSION
    epoch: int
    seq: int
    status: str
    reason: str
    receipts_root: str | None
    receipt_count: int
    leaf: str

    @property
    def dispute(self) -> DisputeKind | None:
        return DisputeKind.WITHHOLDING

    def __str__(self) -> str:
        return f"receipt {self.seq} of epoch {self.epoch} ({self.status}) is not proven included: {self.reason}"


@dataclass(frozen=True, kw_only=True)
class CallInconsistent:
    """Model call number ``call`` contradicts itself or the model's tokenizer in ``field``.

    ``prompt_token_ids``: not what the validator's engine makes of the recorded prompt text. ``token_ids``: ids
    outside the vocabulary. ``output``: the text is not what the output tokens decode to. ``output_token_ids``: more
    tokens than ``max_tokens``, or a ``length`` finish short of every limit.
    """

    code: Literal["call-inconsistent"] = "call-inconsistent"
    check: ClassVar[Check] = Check.OUTPUT
    call: int
    field: Literal["prompt_token_ids", "token_ids", "output", "output_token_ids"]
    recorded: str
    expected: str

    @property
    def dispute(self) -> DisputeKind | None:
        return DisputeKind.OUTPUT

    def __str__(self) -> str:
        return f"call {self.call}: {self.field} recorded as {self.recorded}, expected {self.expected}"


@dataclass(frozen=True, kw_only=True)
class TokenEvidence:
    """One output token as the record reports it and as the validator's engine re-scored it.

    Attributes:
        position: its place in the call's output, from 0.
        token_id: the token.
        recorded_logprob: the log-probability the agent's engine reported.
        scored_logprob: the log-probability the validator's engine gives it.
        rank: its rank under the validator's engine (1 = arg-max).
        best_token_id: the validator's arg-max at this position.
        best_logprob: the arg-max's log-probability.
    """

    position: int
    token_id: int
    recorded_logprob: float
    scored_logprob: float
    rank: int
    best_token_id: int
    best_logprob: float


@dataclass(frozen=True, kw_only=True)
class TokenViolation:
    """``count`` output tokens of model call ``call`` break ``rule`` (``tokens`` shows the first of them).

    Rules, with what ``limit`` holds:

    * ``logprob``: the recorded log-probability is more than ``limit`` nats from the re-scored one.
    * ``greedy``: a greedy call's token lies more than ``limit`` nats below the arg-max.
    * ``top_k``: the token's rank exceeds ``limit``.
    * ``top_p``: the arg-max alone holds at least ``limit`` of the (temperature-scaled) mass, so nucleus sampling
      keeps nothing else, and this token is not the arg-max.
    * ``min_p``: the token's temperature-scaled probability is below ``limit`` times the arg-max's.
    * ``negligible``: the token's sampling probability is provably below ``exp(-limit)``.
    """

    code: Literal["token-violation"] = "token-violation"
    check: ClassVar[Check] = Check.OUTPUT
    call: int
    rule: _TokenRule
    limit: float
    count: int
    tokens: tuple[TokenEvidence, ...]

    @property
    def dispute(self) -> DisputeKind | None:
        return DisputeKind.OUTPUT

    def __str__(self) -> str:
        first = self.tokens[0] if self.tokens else None
        where = f" (first at position {first.position}, token {first.token_id}, rank {first.rank})" if first else ""
        return f"call {self.call}: {self.count} token(s) break the {self.rule} rule (limit {self.limit:g}){where}"


@dataclass(frozen=True, kw_only=True)
class LikelihoodMismatch:
    """Model call ``call``'s output has log-likelihood ``recorded`` by the record and ``scored`` by the validator's
    engine, further apart than ``bound`` (a multiple of the numeric noise expected over its ``tokens`` tokens): a
    systematic shift that each token's own tolerance would let through, such as a lightly changed model."""

    code: Literal["likelihood-mismatch"] = "likelihood-mismatch"
    check: ClassVar[Check] = Check.OUTPUT
    call: int
    tokens: int
    recorded: float
    scored: float
    bound: float

    @property
    def dispute(self) -> DisputeKind | None:
        return DisputeKind.OUTPUT

    def __str__(self) -> str:
        return (
            f"call {self.call}: log-likelihood {self.recorded:.4f} recorded, {self.scored:.4f} re-scored over "
            f"{self.tokens} tokens (bound {self.bound:.4f})"
        )


@dataclass(frozen=True, kw_only=True)
class ReplayDiverged:
    """Replayed, the agent's skill asked for model call ``call`` other than the record holds: ``differences``."""

    code: Literal["replay-diverged"] = "replay-diverged"
    check: ClassVar[Check] = Check.REPLAY
    call: int
    differences: tuple[Difference, ...]

    @property
    def dispute(self) -> DisputeKind | None:
        return DisputeKind.OUTPUT

    def __str__(self) -> str:
        fields = ", ".join(difference.field for difference in self.differences)
        return f"the replayed skill's call {self.call} differs from the record in {fields}"


@dataclass(frozen=True, kw_only=True)
class ReplayDiffers:
    """Replayed on the recorded calls, the agent's skill outputs ``replayed`` where the record holds ``recorded``:
    the output was not the skill's, but edited after generation."""

    code: Literal["replay-differs"] = "replay-differs"
    check: ClassVar[Check] = Check.REPLAY
    recorded: JsonValue
    replayed: JsonValue

    @property
    def dispute(self) -> DisputeKind | None:
        return DisputeKind.OUTPUT

    def __str__(self) -> str:
        return "the replayed skill's output differs from the record's"


@dataclass(frozen=True, kw_only=True)
class ReplayFailed:
    """The agent's skill cannot answer the record at all: ``reason`` (an unknown skill, an input its model
    refuses, an output of the wrong type)."""

    code: Literal["replay-failed"] = "replay-failed"
    check: ClassVar[Check] = Check.REPLAY
    reason: str

    @property
    def dispute(self) -> DisputeKind | None:
        return DisputeKind.OUTPUT

    def __str__(self) -> str:
        return f"the skill cannot replay the record: {self.reason}"


@dataclass(frozen=True, kw_only=True)
class WrongIndex:
    """The attribution was computed with index ``recorded``; the model is registered with index ``expected``."""

    code: Literal["wrong-index"] = "wrong-index"
    check: ClassVar[Check] = Check.ATTRIBUTION
    recorded: str
    expected: str

    @property
    def dispute(self) -> DisputeKind | None:
        return DisputeKind.ATTRIBUTION

    def __str__(self) -> str:
        return f"attribution computed with index {self.recorded}, the model's index is {self.expected}"


@dataclass(frozen=True, kw_only=True)
class AttributionMismatch:
    """The record's attribution hashes to ``recorded``; the registered index gives ``recomputed`` (hash
    ``recomputed_hash``) for the same output tokens."""

    code: Literal["attribution-mismatch"] = "attribution-mismatch"
    check: ClassVar[Check] = Check.ATTRIBUTION
    recorded: str
    recomputed_hash: str
    recomputed: Attribution

    @property
    def dispute(self) -> DisputeKind | None:
        return DisputeKind.ATTRIBUTION

    def __str__(self) -> str:
        return f"attribution {self.recorded} recorded, {self.recomputed_hash} recomputed"


#: Any finding; ``code`` tells them apart in evidence JSON.
Finding = Annotated[
    WrongSigner
    | NotStaked
    | RecordMismatch
    | HashMismatch
    | NotIncluded
    | CallInconsistent
    | TokenViolation
    | LikelihoodMismatch
    | ReplayDiverged
    | ReplayDiffers
    | ReplayFailed
    | WrongIndex
    | AttributionMismatch,
    Field(discriminator="code"),
]


@dataclass(frozen=True, kw_only=True)
class Skipped:
    """A check that did not run, or ran in part, and why (the validator lacks the model, the epoch is pending...)."""

    check: Check
    reason: str


# -- the evidence a challenge posts ----------------------------------------------------------------------------------


class Evidence(BaseModel):
    """What a challenge is about: the agent's own receipt document and the findings against it.

    Its keccak256 (:attr:`evidence_hash`) is the ``evidenceHash`` of ``DisputeManager.challenge``. Everything a
    voting validator needs is inside: the signed receipt binds the record through its hashes, so a voter re-audits
    the document itself rather than trusting the findings.

    Example:
        >>> evidence = report.evidence(DisputeKind.OUTPUT)                                   # doctest: +SKIP
        >>> await client.challenge(receipt, signature, DisputeKind.OUTPUT, evidence.evidence_hash)
        ...                                                                                  # doctest: +SKIP
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[1] = EVIDENCE_VERSION
    kind: Literal["output", "attribution"]
    document: ReceiptDocument
    findings: tuple[Finding, ...] = Field(min_length=1)

    def canonical_json(self) -> bytes:
        """The RFC 8785 bytes :attr:`evidence_hash` hashes (and that are published for voters)."""
        return rfc8785.dumps(self.model_dump(mode="json", by_alias=True))

    @property
    def evidence_hash(self) -> bytes:
        return keccak(self.canonical_json())


# -- the report ------------------------------------------------------------------------------------------------------

_EVIDENCE_KINDS: Final[Mapping[DisputeKind, Literal["output", "attribution"]]] = {
    DisputeKind.OUTPUT: "output",
    DisputeKind.ATTRIBUTION: "attribution",
}


@dataclass(frozen=True, kw_only=True)
class AuditReport:
    """The outcome of one audit.

    Example:
        >>> report = await auditor.audit(document)                       # doctest: +SKIP
        >>> report.passed, report.disputes                                # doctest: +SKIP
        (False, (<DisputeKind.OUTPUT: 2>,))

    Attributes:
        document: what was audited.
        checked: the checks that ran (possibly in part: see ``skipped``).
        skipped: checks that did not run, or ran in part, with the reason.
        findings: every fault found, in check order.
    """

    document: ReceiptDocument
    checked: tuple[Check, ...]
    skipped: tuple[Skipped, ...]
    findings: tuple[Finding, ...]

    @property
    def valid(self) -> bool:
        """Whether the receipt binds a staked agent (signature and registration hold): only then can it be
        disputed."""
        return not any(finding.dispute is None for finding in self.findings)

    @property
    def passed(self) -> bool:
        """Whether nothing at all was found."""
        return not self.findings

    @property
    def disputes(self) -> tuple[DisputeKind, ...]:
        """The disputes the findings support, by kind: ``WITHHOLDING`` is ``challengeInclusion``, ``OUTPUT`` and
        ``ATTRIBUTION`` are bonded ``challenge`` calls with :meth:`evidence`. Empty when the receipt is not valid."""
        if not self.valid:
            return ()
        return tuple(sorted({finding.dispute for finding in self.findings if finding.dispute is not None}))

    def evidence(self, kind: DisputeKind) -> Evidence:
        """The evidence document of a ``kind`` challenge: the receipt document and the findings of that kind.

        Raises:
            EvidenceError: ``kind`` is not among :attr:`disputes`, or it is a kind that carries no evidence hash.
        """
        evidence_kind = _EVIDENCE_KINDS.get(kind)
        if evidence_kind is None:
            raise EvidenceError(kind.name, "only Output and Attribution challenges carry an evidence hash")
        if kind not in self.disputes:
            raise EvidenceError(kind.name, "the audit found no such fault in a valid receipt")
        findings = tuple(finding for finding in self.findings if finding.dispute == kind)
        return Evidence(kind=evidence_kind, document=self.document, findings=findings)

    def __str__(self) -> str:
        receipt = self.document.receipt
        verdict = "passed" if self.passed else "; ".join(str(finding) for finding in self.findings)
        return f"receipt {receipt.seq} of agent {receipt.agent} epoch {receipt.epoch}: {verdict}"


# -- configuration ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ServedModel:
    """A model the validator serves, as registered on chain.

    Example:
        >>> ServedModel(model_id=bytes.fromhex(MODEL_ID[2:]), name="tiny-docs", tokenizer=Path("models/tiny"),
        ...             index=Path("indexes/docs"))                                   # doctest: +SKIP

    Attributes:
        model_id: the registered ``modelId`` (keccak256 over the weights).
        name: the name the validator's backend serves it under.
        tokenizer: the model directory, or its ``tokenizer.json`` (decodes outputs; opens the index).
        index: the attribution index directory registered with the model; ``None`` skips attribution checks.
    """

    model_id: bytes
    name: str
    tokenizer: Path
    index: Path | None = None


@dataclass(frozen=True, kw_only=True)
class Tolerances:
    """How far an honest answer may stray from the validator's own numbers (see the module docstring).

    Attributes:
        greedy: nats a greedy call's token may lie below the arg-max (ties and kernel rounding).
        logprob: nats a recorded log-probability may differ from the re-scored one.
        logprob_noise: the standard deviation, in nats, of one token's numeric noise; with ``likelihood_sigmas``
            it bounds the difference of whole-output log-likelihoods: ``sigmas * noise * sqrt(tokens)``.
        likelihood_sigmas: how many standard deviations of noise the whole-output bound allows.
        negligible: a sampled token whose sampling probability is provably below ``exp(-negligible)`` lies outside
            the support (an honest sampler picks one with probability below ``vocab * exp(-negligible)``).
        support: nats of slack on the ``top_p`` and ``min_p`` thresholds.
        top_k_slack: ranks of slack on ``top_k`` (near-ties at the boundary may order differently elsewhere).
        evidence_tokens: the most tokens one finding lists (it still counts them all).

    Raises:
        ValidatorConfigError: a tolerance is negative or not finite.
    """

    greedy: float = 0.01
    logprob: float = 0.02
    logprob_noise: float = 0.005
    likelihood_sigmas: float = 6.0
    negligible: float = 25.0
    support: float = 0.01
    top_k_slack: int = 0
    evidence_tokens: int = 32

    def __post_init__(self) -> None:
        for name in ("greedy", "logprob", "logprob_noise", "likelihood_sigmas", "negligible", "support"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValidatorConfigError(f"tolerance {name} must be finite and >= 0, got {value}")
        if self.top_k_slack < 0 or self.evidence_tokens < 1:
            raise ValidatorConfigError("top_k_slack must be >= 0 and evidence_tokens >= 1")


# -- chain facts -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ChainFacts:
    """What the chain says about a receipt's agent and epoch, read once per audit.

    Attributes:
        domain: the EIP-712 domain receipts are signed under (``StakingClient.receipt_domain``).
        operators: the operator AgentStaking binds each signer to (``operatorOfSigner``); a signer missing here
            is bound to nobody.
        agent: the agent's registration.
        stake: the agent's Agent stake.
        epoch: the receipt's epoch as the registry holds it.
        index_root: the attribution index root the agent's registered model is registered with; ``None`` when the
            model is not in the DatanetRegistry.
    """

    domain: Domain
    operators: Mapping[str, str]
    agent: AgentInfo
    stake: StakeInfo
    epoch: EpochCommitment
    index_root: bytes | None


async def read_chain_facts(chain: StakingClient, receipt: SignedReceiptDocument, signer: str | None) -> ChainFacts:
    """Reads the :class:`ChainFacts` of ``receipt``, whose signature recovers to ``signer`` (``None``: to nobody).

    Raises:
        ChainError: the chain could not be read.
    """

    async def operators() -> dict[str, str]:
        return {} if signer is None else {signer: await chain.operator_of_signer(signer)}

    agent, stake, epoch, bound = await asyncio.gather(
        chain.agent_info(receipt.agent),
        chain.stake_info(receipt.agent, Role.AGENT),
        chain.epoch(receipt.agent, receipt.epoch),
        operators(),
    )
    model = await chain.model(agent.model_id)
    return ChainFacts(
        domain=chain.receipt_domain(),
        operators=bound,
        agent=agent,
        stake=stake,
        epoch=epoch,
        index_root=None if model.index_root == _ZERO_HASH else model.index_root,
    )


# -- the auditor -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Loaded:
    """A served model's local files, opened once: its tokenizer and (when configured) its attribution index."""

    tokenizer: Tokenizer
    vocab_size: int
    index: AttributionIndex | None


@dataclass
class _Audit:
    """One audit's accumulating outcome."""

    checked: list[Check] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    def skip(self, check: Check, reason: str) -> None:
        self.skipped.append(Skipped(check=check, reason=reason))


class Auditor:
    """Audits receipt documents against the chain, the validator's own engine and index, and the agents' code.

    Example:
        >>> auditor = Auditor(backend=backend, chain=client, models=[served], agents={"summarizer": Summarizer})
        ...                                                                              # doctest: +SKIP
        >>> report = await auditor.audit(document)                                       # doctest: +SKIP
        >>> for kind in report.disputes:                                                  # doctest: +SKIP
        ...     ...   # challenge_inclusion, or challenge(..., kind, report.evidence(kind).evidence_hash)

    Args:
        backend: the validator's inference engine; it serves every model in ``models`` under its ``name``.
        models: the models the validator can audit, by registered ``modelId``.
        chain: where chain facts are read; without it, every :meth:`audit` must be given its facts.
        agents: the agents' published classes, by agent name (the record's ``agentName``) or operator address;
            agents missing here are audited without replay.
        tolerances: see :class:`Tolerances`.

    Raises:
        ValidatorConfigError: two models share a ``modelId``.
    """

    def __init__(
        self,
        *,
        backend: Backend,
        models: Sequence[ServedModel],
        chain: StakingClient | None = None,
        agents: Mapping[str, AgentFactory] | None = None,
        tolerances: Tolerances | None = None,
    ) -> None:
        self.backend = backend
        self.chain = chain
        self.tolerances = tolerances or Tolerances()
        self._models = {model.model_id: model for model in models}
        if len(self._models) != len(models):
            raise ValidatorConfigError("two served models share a modelId")
        self._agents = {_agent_key(key): factory for key, factory in (agents or {}).items()}
        self._loaded: dict[bytes, _Loaded] = {}
        self._loading = asyncio.Lock()
        self._audits = 0
        self._failed = 0

    def __repr__(self) -> str:
        counts = f"models={len(self._models)} agents={len(self._agents)} audits={self._audits} failed={self._failed}"
        return f"<Auditor {counts}>"

    async def audit(self, document: ReceiptDocument, *, facts: ChainFacts | None = None) -> AuditReport:
        """Runs every check on ``document`` (see the module docstring) and reports what it found.

        A receipt that is not the agent's, or whose agent has nothing at stake, is checked no further.

        Args:
            document: the receipt document the agent served.
            facts: the chain's facts; read from ``chain`` when omitted.

        Raises:
            ValidatorConfigError: no facts were given and the auditor has no chain.
            IndexRootMismatchError: the validator's index for the model is not the registered one.
            ValueError: ``facts`` are about another agent or epoch than the receipt's.
            BackendError: the validator's own engine failed (the audit can be retried).
            ChainError: the chain could not be read.
        """
        receipt = document.receipt
        if facts is None:
            if self.chain is None:
                raise ValidatorConfigError("an auditor without a chain must be given the chain facts")
            domain = self.chain.receipt_domain()
            signer = await asyncio.to_thread(_recover, domain, receipt)
            facts = await read_chain_facts(self.chain, receipt, signer)
        else:
            signer = await asyncio.to_thread(_recover, facts.domain, receipt)
        _check_facts(receipt, facts)
        audit = _Audit()
        audit.checked += [Check.SIGNATURE, Check.REGISTRATION]
        audit.findings += _signature_findings(receipt, signer, facts)
        if audit.findings:
            for check in (Check.RECORD, Check.INCLUSION, Check.OUTPUT, Check.REPLAY, Check.ATTRIBUTION):
                audit.skip(check, "the receipt binds no staked agent")
        else:
            audit.checked += [Check.RECORD, Check.INCLUSION]
            record_findings, inclusion = await asyncio.to_thread(_record_and_inclusion, document, facts)
            audit.findings += record_findings
            if isinstance(inclusion, Skipped):
                audit.skipped.append(inclusion)
            elif inclusion is not None:
                audit.findings.append(inclusion)
            await self._audit_answer(document, facts, audit)
        report = AuditReport(
            document=document,
            checked=tuple(audit.checked),
            skipped=tuple(audit.skipped),
            findings=tuple(sorted(audit.findings, key=lambda finding: list(Check).index(finding.check))),
        )
        self._audits += 1
        self._failed += not report.passed
        logger.info("audit: %s", report)
        for skipped in report.skipped:
            logger.info(
                "audit of agent %s seq %d: %s check skipped: %s",
                receipt.agent, receipt.seq, skipped.check.value, skipped.reason,
            )  # fmt: skip
        return report

    async def _audit_answer(self, document: ReceiptDocument, facts: ChainFacts, audit: _Audit) -> None:
        """The output, replay and attribution checks, concurrently (engine, Python and a thread)."""
        record = document.record
        served = self._models.get(facts.agent.model_id)
        factory = self._agents.get(_agent_key(record.agent)) or self._agents.get(record.agent_name)
        jobs: list[Coroutine[Any, Any, None]] = []
        loaded = None
        if served is None:
            reason = f"this validator serves no model 0x{facts.agent.model_id.hex()} (the agent's registered model)"
            audit.skip(Check.OUTPUT, reason)
        else:
            loaded = await self._load(served, facts)
            audit.checked.append(Check.OUTPUT)
            jobs.append(self._check_output(record, served, loaded, audit))
        if factory is None:
            audit.skip(Check.REPLAY, f"no published class of agent {record.agent_name!r} is configured")
        else:
            audit.checked.append(Check.REPLAY)
            jobs.append(_check_replay(factory, record, audit))
        if loaded is None or loaded.index is None:
            audit.skip(Check.ATTRIBUTION, "this validator has no attribution index of the agent's registered model")
        else:
            audit.checked.append(Check.ATTRIBUTION)
            jobs.append(_check_attribution(loaded.index, record, audit))
        # Every job runs to its end before the first failure (of the validator's own engine, say) is raised.
        failures = [r for r in await asyncio.gather(*jobs, return_exceptions=True) if isinstance(r, BaseException)]
        if failures:
            raise failures[0]

    async def _load(self, served: ServedModel, facts: ChainFacts) -> _Loaded:
        """Opens a served model's tokenizer and index once (verifying every index file: it is what we judge by).

        Raises:
            IndexRootMismatchError: the index is not the one registered with the model.
        """
        async with self._loading:
            loaded = self._loaded.get(served.model_id)
            if loaded is None:
                loaded = await asyncio.to_thread(_open_model, served)
                self._loaded[served.model_id] = loaded
        index = loaded.index
        if index is not None and facts.index_root is not None and facts.index_root != index.root:
            raise IndexRootMismatchError(
                str(index.directory),
                "0x" + served.model_id.hex(),
                "0x" + index.root.hex(),
                "0x" + facts.index_root.hex(),
            )
        return loaded

    async def _check_output(self, record: AnswerRecord, served: ServedModel, loaded: _Loaded, audit: _Audit) -> None:
        """Checks every call's tokens against the tokenizer and re-scores its output by teacher forcing."""
        results = await asyncio.gather(
            *(self._check_call(number, call, served, loaded) for number, call in enumerate(record.calls))
        )
        for findings, notes in results:
            audit.findings += findings
            audit.skipped += [Skipped(check=Check.OUTPUT, reason=note) for note in notes]

    async def _check_call(
        self, number: int, call: ModelCall, served: ServedModel, loaded: _Loaded
    ) -> tuple[list[Finding], list[str]]:
        outside = [token for token in (*call.prompt_token_ids, *call.output_token_ids) if token >= loaded.vocab_size]
        if outside:
            finding = CallInconsistent(
                call=number, field="token_ids", recorded=f"token {outside[0]}", expected=f"< {loaded.vocab_size}"
            )
            return [finding], []
        findings: list[Finding] = []
        if call.prompt:  # a prompt given as token ids has no text to tokenize; the replay checks those ids
            # vLLM adds special tokens to a completion prompt; a chat template writes them into the text itself.
            tokenized = await self.backend.tokenize(served.name, call.prompt, add_special_tokens=call.kind != "chat")
            if tokenized != call.prompt_token_ids:
                findings.append(_prompt_mismatch(number, call.prompt_token_ids, tokenized))
        decoded = await asyncio.to_thread(loaded.tokenizer.decode, list(call.output_token_ids), True)
        findings += _consistency_findings(number, call, decoded)
        if not call.output_token_ids:
            return findings, []
        try:
            score = await self.backend.score(served.name, call.prompt_token_ids, call.output_token_ids)
        except ContextLengthError as exc:  # an output that filled the context leaves no position to score past it
            return findings, [f"call {number} cannot be re-scored: {exc.detail}"]
        token_findings, notes = score_findings(number, call, score, self.tolerances)
        return findings + token_findings, notes


def _agent_key(key: str) -> str:
    """Operator addresses compare checksummed; agent names as they are."""
    return to_checksum_address(key) if key.startswith("0x") and len(key) == 42 else key


def _recover(domain: Domain, receipt: SignedReceiptDocument) -> str | None:
    try:
        return recover(domain, receipt.receipt, receipt.signature_bytes)
    except Exception:  # eth-keys raises several types for a signature that recovers to no key
        return None


def _check_facts(receipt: SignedReceiptDocument, facts: ChainFacts) -> None:
    if int(facts.agent.operator, 16) != int(receipt.agent, 16) or facts.epoch.epoch != receipt.epoch:
        raise ValueError(
            f"the chain facts are about agent {facts.agent.operator} epoch {facts.epoch.epoch}, "
            f"the receipt about agent {receipt.agent} epoch {receipt.epoch}"
        )


def _signature_findings(receipt: SignedReceiptDocument, signer: str | None, facts: ChainFacts) -> list[Finding]:
    findings: list[Finding] = []
    operators = {int(key, 16): value for key, value in facts.operators.items()}
    bound = operators.get(int(signer, 16), _ZERO_ADDRESS) if signer is not None else _ZERO_ADDRESS
    if signer is None or int(bound, 16) != int(receipt.agent, 16):
        findings.append(WrongSigner(signer=signer, bound_operator=bound, agent=receipt.agent))
    if facts.stake.slashable == 0:
        findings.append(NotStaked(agent=receipt.agent, active=facts.stake.active, slashable=facts.stake.slashable))
    return findings


def _record_and_inclusion(
    document: ReceiptDocument, facts: ChainFacts
) -> tuple[list[Finding], NotIncluded | Skipped | None]:
    """The record and inclusion checks: hashing and Merkle work, run in a thread."""
    return _record_findings(document, facts), _inclusion_finding(document, facts)


def _record_findings(document: ReceiptDocument, facts: ChainFacts) -> list[Finding]:
    receipt, record = document.receipt, document.record
    findings: list[Finding] = []
    if int(record.agent, 16) != int(receipt.agent, 16):
        findings.append(RecordMismatch(field="agent", receipt=receipt.agent, expected=record.agent))
    if record.request_id != receipt.request_id:
        findings.append(RecordMismatch(field="requestId", receipt=receipt.request_id, expected=record.request_id))
    registered = "0x" + facts.agent.model_id.hex()
    if receipt.model_id != registered:
        findings.append(RecordMismatch(field="modelId", receipt=receipt.model_id, expected=registered))
    recomputed: list[tuple[_HashField, str, bytes]] = [
        ("requestHash", receipt.request_hash, request_hash(record.skill, record.input)),
        ("outputHash", receipt.output_hash, output_hash(record.output)),
        ("engineHash", receipt.engine_hash, engine_hash(record.calls)),
        ("attributionHash", receipt.attribution_hash, record.attribution.attribution_hash),
    ]
    for name, signed, digest in recomputed:
        if signed != "0x" + digest.hex():
            findings.append(HashMismatch(field=name, receipt=signed, recomputed="0x" + digest.hex()))
    return findings


def _inclusion_finding(document: ReceiptDocument, facts: ChainFacts) -> NotIncluded | Skipped | None:
    receipt, commitment, proof = document.receipt, facts.epoch, document.inclusion
    if commitment.status == EpochStatus.PENDING:
        return Skipped(check=Check.INCLUSION, reason=f"epoch {receipt.epoch} is not committed yet")
    leaf = receipt.receipt.leaf(facts.domain)
    committed = commitment.status == EpochStatus.COMMITTED
    root = "0x" + commitment.receipts_root.hex() if committed else None

    def fault(reason: str) -> NotIncluded:
        return NotIncluded(
            epoch=receipt.epoch,
            seq=receipt.seq,
            status=commitment.status.name,
            reason=reason,
            receipts_root=root,
            receipt_count=commitment.receipt_count,
            leaf="0x" + leaf.hex(),
        )

    if not committed:
        return fault(f"the agent committed later epochs and skipped epoch {receipt.epoch}")
    if proof is None:
        return fault("the agent served no inclusion proof for a committed epoch")
    if receipt.seq >= commitment.receipt_count:
        return fault(f"seq {receipt.seq} lies beyond the {commitment.receipt_count} receipts committed")
    if not verify(commitment.receipts_root, leaf, [bytes.fromhex(node[2:]) for node in proof.proof]):
        return fault("the proof does not lead from the receipt's leaf to the committed root")
    return None


def _prompt_mismatch(number: int, recorded: tuple[int, ...], tokenized: tuple[int, ...]) -> CallInconsistent:
    first = next(
        (i for i, (a, b) in enumerate(zip(recorded, tokenized, strict=False)) if a != b),
        min(len(recorded), len(tokenized)),
    )
    window = slice(max(0, first - 4), first + 8)
    return CallInconsistent(
        call=number,
        field="prompt_token_ids",
        recorded=f"{list(recorded[window])} from position {window.start} ({len(recorded)} tokens)",
        expected=f"{list(tokenized[window])} from position {window.start} ({len(tokenized)} tokens)",
    )


def _consistency_findings(number: int, call: ModelCall, decoded: str) -> list[CallInconsistent]:
    """The output text against its tokens, and the output length against the finish reason."""
    findings: list[CallInconsistent] = []
    rest = decoded[len(call.output) :] if decoded.startswith(call.output) else None
    # A stop string ends the text where it starts; its tokens (and what else the last one holds) stay in the ids.
    stopped = call.finish_reason == "stop" and rest is not None and any(rest.startswith(s) for s in call.sampling.stop)
    # An output cut inside a multi-byte character: vLLM holds the incomplete bytes back, a full decode shows U+FFFD.
    cut = rest is not None and set(rest) == {_REPLACEMENT_CHARACTER}
    if rest != "" and not stopped and not cut:
        findings.append(
            CallInconsistent(call=number, field="output", recorded=repr(call.output), expected=repr(decoded))
        )
    tokens, limit = len(call.output_token_ids), call.sampling.max_tokens
    context_full = len(call.prompt_token_ids) + tokens >= call.engine.max_model_len
    if tokens > limit:
        findings.append(
            CallInconsistent(call=number, field="output_token_ids", recorded=f"{tokens} tokens", expected=f"<= {limit}")
        )
    elif call.finish_reason == "length" and tokens < limit and not context_full:
        findings.append(
            CallInconsistent(
                call=number,
                field="output_token_ids",
                recorded=f"{tokens} tokens, finish_reason 'length'",
                expected=f"{limit} tokens (max_tokens) or a full context",
            )
        )
    return findings


def score_findings(
    number: int, call: ModelCall, score: Score, tolerances: Tolerances
) -> tuple[list[Finding], list[str]]:
    """The token rules (see :class:`TokenViolation`) and the likelihood bound for model call ``number``, given the
    validator's teacher-forced ``score`` of its output; also notes on rules that could not apply.

    Raises:
        ValueError: ``score`` is not of ``call``'s output tokens.
    """
    if score.output_token_ids != call.output_token_ids:
        raise ValueError(f"the score of call {number} is not of its output tokens")
    scored = score.tokens
    findings: list[Finding] = []
    notes: list[str] = []

    def violation(rule: _TokenRule, limit: float, positions: Sequence[int]) -> None:
        if positions:
            evidence = tuple(
                TokenEvidence(
                    position=position,
                    token_id=scored[position].token_id,
                    recorded_logprob=call.logprobs[position].logprob,
                    scored_logprob=scored[position].logprob,
                    rank=scored[position].rank,
                    best_token_id=scored[position].best_token_id,
                    best_logprob=scored[position].best_logprob,
                )
                for position in positions[: tolerances.evidence_tokens]
            )
            findings.append(TokenViolation(call=number, rule=rule, limit=limit, count=len(positions), tokens=evidence))

    # Recorded log-probabilities are the engine's raw ones (before penalties and temperature), as teacher forcing's.
    violation(
        "logprob",
        tolerances.logprob,
        [
            i
            for i, token in enumerate(scored)
            if not abs(call.logprobs[i].logprob - token.logprob) <= tolerances.logprob
        ],
    )
    bound = tolerances.likelihood_sigmas * tolerances.logprob_noise * math.sqrt(len(scored))
    if not abs(call.total_logprob - score.total_logprob) <= bound:
        findings.append(
            LikelihoodMismatch(
                call=number, tokens=len(scored), recorded=call.total_logprob, scored=score.total_logprob, bound=bound
            )
        )
    params = call.sampling
    if params.repetition_penalty != 1.0 or params.presence_penalty != 0.0 or params.frequency_penalty != 0.0:
        notes.append(f"call {number}: penalties reshape the distribution, so ranks and support are not checked")
        return findings, notes
    if params.greedy:
        violation("greedy", tolerances.greedy, score.greedy_violations(tolerance=tolerances.greedy))
        return findings, notes
    # vLLM applies temperature, then min_p, then top_k and top_p. With the arg-max always kept, a token's sampling
    # probability is at most (p / p_max) ** (1 / T) = exp(-margin / T), whatever else was cut.
    temperature = params.temperature
    if params.top_k:
        limit = params.top_k + tolerances.top_k_slack
        violation("top_k", limit, [i for i, token in enumerate(scored) if token.rank > limit])
    if params.min_p > 0.0:
        floor = -temperature * math.log(params.min_p) + tolerances.support
        violation("min_p", params.min_p, [i for i, token in enumerate(scored) if token.margin > floor])
    if params.top_p < 1.0:
        if temperature <= 1.0:  # then the scaled arg-max holds at least its raw probability
            alone = math.log(params.top_p) + tolerances.support
            violation(
                "top_p",
                params.top_p,
                [i for i, t in enumerate(scored) if t.margin > tolerances.greedy and t.best_logprob >= alone],
            )
        else:
            notes.append(f"call {number}: top_p above temperature 1 is not checked")
    violation(
        "negligible",
        tolerances.negligible,
        [i for i, token in enumerate(scored) if token.margin / temperature > tolerances.negligible],
    )
    return findings, notes


async def _check_replay(factory: AgentFactory, record: AnswerRecord, audit: _Audit) -> None:
    try:
        replayed = await replay(factory, record)
    except ReplayMismatchError as exc:
        audit.findings.append(ReplayDiverged(call=exc.index, differences=exc.differences))
        return
    except ReplayError as exc:
        audit.skip(Check.REPLAY, f"the record cannot be replayed: {exc}")
        return
    except (UnknownSkillError, SkillInputError, SkillOutputError) as exc:
        audit.findings.append(ReplayFailed(reason=str(exc)))
        return
    except AgentError as exc:  # another failure of the agent's own code path: not evidence against the agent
        audit.skip(Check.REPLAY, f"the replay failed: {exc}")
        return
    if output_hash(replayed.output) == record.output_hash():
        return
    if replayed.ambiguous:
        audit.skip(Check.REPLAY, "the output differs, but concurrent calls could be paired another way")
    else:
        audit.findings.append(ReplayDiffers(recorded=record.output, replayed=replayed.output))


async def _check_attribution(index: AttributionIndex, record: AnswerRecord, audit: _Audit) -> None:
    expected = "0x" + index.root.hex()
    if record.attribution.index_root != expected:
        audit.findings.append(WrongIndex(recorded=record.attribution.index_root, expected=expected))
        return
    try:
        recomputed = await asyncio.to_thread(index.attribute, attributed_tokens(record.calls))
    except OutputTokensError as exc:  # the output check reports ids outside the vocabulary
        audit.skip(Check.ATTRIBUTION, str(exc))
        return
    if recomputed.attribution_hash != record.attribution.attribution_hash:
        audit.findings.append(
            AttributionMismatch(
                recorded="0x" + record.attribution.attribution_hash.hex(),
                recomputed_hash="0x" + recomputed.attribution_hash.hex(),
                recomputed=recomputed,
            )
        )


def _open_model(served: ServedModel) -> _Loaded:
    tokenizer = load_tokenizer(served.tokenizer)
    index = AttributionIndex.open(served.index, tokenizer, verify=True) if served.index is not None else None
    return _Loaded(tokenizer=tokenizer, vocab_size=tokenizer.get_vocab_size(with_added_tokens=True), index=index)
