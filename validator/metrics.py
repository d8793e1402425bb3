"""The Prometheus metrics of a validator daemon, served at ``GET /metrics``.

One :class:`ValidatorMetrics` per daemon, on its own registry (not the process-global one), so several validators
in one process (tests, a demo) never share counters.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "ValidatorMetrics"]

# From a fraction of a second (a short answer re-scored) to minutes (a long one on a busy CPU).
_AUDIT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 180.0)


class ValidatorMetrics:
    """Counters of audits, findings, challenges, votes and resolutions, and the validator's stake.

    Stake and balance are wei as float gauges: Prometheus has no integers; the chain is the ledger.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.audits = Counter(
            "staked_validator_audits",
            "Sampled or reported receipts audited, by outcome (passed, failed, invalid, unserved, expired).",
            ("outcome",),
            registry=self.registry,
        )
        self.findings = Counter(
            "staked_validator_findings",
            "Faults found by audits, by finding code (not-included, token-violation, ...).",
            ("code",),
            registry=self.registry,
        )
        self.audit_seconds = Histogram(
            "staked_validator_audit_seconds",
            "Wall time of one audit, from the read of the record to the verdict.",
            buckets=_AUDIT_BUCKETS,
            registry=self.registry,
        )
        self.pending_audits = Gauge(
            "staked_validator_pending_audits", "Sampled positions not audited yet.", registry=self.registry
        )
        self.unserved = Counter(
            "staked_validator_unserved",
            "Records an agent did not serve after every attempt, by whether a held receipt made it a challenge.",
            ("challenged",),
            registry=self.registry,
        )
        self.challenges = Counter(
            "staked_validator_challenges",
            "Disputes opened or proven by this validator, by kind.",
            ("kind",),
            registry=self.registry,
        )
        self.votes = Counter(
            "staked_validator_votes",
            "Decisions on voted disputes, by decision (uphold, reject, abstain, ineligible, missed).",
            ("decision",),
            registry=self.registry,
        )
        self.resolutions = Counter(
            "staked_validator_resolutions",
            "Disputes seen resolved, by final state and by whether this validator resolved them.",
            ("state", "by_us"),
            registry=self.registry,
        )
        self.receipts_received = Counter(
            "staked_validator_receipts_received",
            "Receipts posted by payers, by result (accepted, known, rejected).",
            ("result",),
            registry=self.registry,
        )
        self.stake = Gauge(
            "staked_validator_stake_wei", "This validator's active Validator stake.", registry=self.registry
        )
        self.balance = Gauge(
            "staked_validator_balance_wei",
            "This validator's OPEN balance (bonds are paid from it).",
            registry=self.registry,
        )
        self.job_failures = Counter(
            "staked_validator_job_failures", "Job runs that failed, by job.", ("job",), registry=self.registry
        )

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes."""
        return generate_latest(self.registry)
