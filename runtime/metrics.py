"""The Prometheus metrics of an agent host, served at ``GET /metrics``.

One :class:`RuntimeMetrics` per host, on its own registry (not the process-global one), so several hosts in one
process (tests, a demo) never share counters.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "RuntimeMetrics"]

# Latency buckets from 5 ms (an instant skill) to 2 minutes (a long generation on a CPU).
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class RuntimeMetrics:
    """Counters of requests, revenue, latency, epochs and claims.

    Revenue is counted in wei as a float-valued counter: Prometheus has no integers; the journal is the ledger.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "staked_requests",
            "Requests answered, by endpoint and HTTP status.",
            ("endpoint", "status"),
            registry=self.registry,
        )
        self.payments_refused = Counter(
            "staked_payments_refused", "Payments refused, by reason.", ("reason",), registry=self.registry
        )
        self.revenue = Counter(
            "staked_revenue_wei", "Wei accepted for answered requests, by scheme.", ("scheme",), registry=self.registry
        )
        self.latency = Histogram(
            "staked_request_seconds",
            "Wall time of paid requests, from parsing to the journaled answer, by endpoint.",
            ("endpoint",),
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge("staked_requests_in_flight", "Requests being served.", registry=self.registry)
        self.current_epoch = Gauge("staked_epoch", "The epoch new receipts go to.", registry=self.registry)
        self.epochs_committed = Counter("staked_epochs_committed", "Epochs committed on chain.", registry=self.registry)
        self.vouchers_claimed = Counter(
            "staked_vouchers_claimed", "Channel vouchers claimed on chain.", registry=self.registry
        )
        self.authorizations_settled = Counter(
            "staked_authorizations_settled",
            "EIP-3009 authorizations settled on chain, by outcome.",
            ("outcome",),
            registry=self.registry,
        )
        self.inclusion_proofs = Counter(
            "staked_inclusion_proofs", "Inclusion challenges answered with a proof.", registry=self.registry
        )
        self.job_failures = Counter(
            "staked_job_failures", "Background job runs that failed, by job.", ("job",), registry=self.registry
        )

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes."""
        return generate_latest(self.registry)
