"""Prometheus metrics of the serving path, exposed in the text format on ``/metrics``.

No label carries a user id, an e-mail address or any request text: labels are route templates,
statuses, tier names, event types and fixed reason slugs, so the exposition is safe to scrape into
shared monitoring.

With several uvicorn workers, ``PROMETHEUS_MULTIPROC_DIR`` is set by ``recdrill serve`` and each
worker writes its values there; ``/metrics`` then aggregates all workers.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Summary,
    generate_latest,
    multiprocess,
)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)


class ServingMetrics:
    """The counters and histograms one app updates; each app owns a registry (tests run several)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._declare_request_metrics()
        self._declare_resilience_metrics()
        self._declare_canary_metrics()

    def _declare_request_metrics(self) -> None:
        """What every request and answer counts: routes, statuses, latency, tiers, feedback."""
        self.requests = Counter(
            "recdrill_requests_total",
            "HTTP requests by route and status.",
            ["route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "recdrill_request_latency_seconds",
            "Request latency by route.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.served_by = Counter(
            "recdrill_served_by_total",
            "Recommendations answered by each tier.",
            ["tier"],
            registry=self.registry,
        )
        self.tier_skips = Counter(
            "recdrill_tier_skips_total",
            "Tiers skipped by reason (open, late, error, invalid, miss, no_category).",
            ["tier", "reason"],
            registry=self.registry,
        )
        self.fallbacks = Counter(
            "recdrill_fallbacks_total",
            "Recommendations not answered by the first tier.",
            registry=self.registry,
        )
        self.errors = Counter(
            "recdrill_errors_total",
            "Requests that ended in a 5xx, by route.",
            ["route"],
            registry=self.registry,
        )
        self.feedback = Counter(
            "recdrill_feedback_total",
            "Feedback events committed, by event type.",
            ["event"],
            registry=self.registry,
        )

    def _declare_resilience_metrics(self) -> None:
        """The resilient path: breakers, admission control, batching, reloads and refusals."""
        self.breaker_state = Gauge(
            "recdrill_breaker_state",
            "Circuit breaker state per tier: 0 closed, 1 half-open, 2 open (the worst worker's).",
            ["tier"],
            multiprocess_mode="livemax",
            registry=self.registry,
        )
        self.breaker_transitions = Counter(
            "recdrill_breaker_transitions_total",
            "Circuit breaker state changes per tier, by the state entered.",
            ["tier", "state"],
            registry=self.registry,
        )
        self.shed = Counter(
            "recdrill_shed_total",
            "Requests refused with 429 by admission control, by route.",
            ["route"],
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "recdrill_in_flight",
            "Admitted recommendation requests being handled now.",
            multiprocess_mode="livesum",
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "recdrill_model_batch_size",
            "Histories scored per model call, by tier (the count is the number of model calls).",
            ["tier"],
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.reloads = Counter(
            "recdrill_model_reloads_total",
            "Hot model reloads by outcome (ok, refused).",
            ["outcome"],
            registry=self.registry,
        )
        # Reasons are a closed set of slugs (see ``reload.refusal_reason``), never a path or message.
        self.refusals = Counter(
            "recdrill_model_refusals_total",
            "Models refused at load, by reason (digest mismatch, unsigned, invalid model, ...).",
            ["reason"],
            registry=self.registry,
        )

    def _declare_canary_metrics(self) -> None:
        """Canary and shadow (``canary/``): the arm label is ``primary`` or ``candidate``, never a
        version name; the versions are in ``GET /admin/models/canary``."""
        self.arm_answers = Counter(
            "recdrill_arm_answers_total",
            "Answers counted for a canary or shadow comparison, by arm.",
            ["arm"],
            registry=self.registry,
        )
        self.arm_latency = Histogram(
            "recdrill_arm_latency_seconds",
            "Latency of each arm's answers (the candidate's shadow scoring in shadow mode).",
            ["arm"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.arm_ndcg = Summary(
            "recdrill_arm_ndcg10",
            "NDCG@10 of the labelled item in each arm's last list for that user (sum / count = mean).",
            ["arm"],
            registry=self.registry,
        )
        self.shadow = Counter(
            "recdrill_shadow_total",
            "Shadow scorings of the candidate by outcome (scored, dropped, error).",
            ["outcome"],
            registry=self.registry,
        )
        self.shadow_overlap = Summary(
            "recdrill_shadow_overlap10",
            "Share of the primary's top 10 that the shadow candidate's top 10 also holds.",
            registry=self.registry,
        )
        self.canary_decisions = Counter(
            "recdrill_canary_decisions_total",
            "Canary judge decisions acted on or reported (rollback, promote).",
            ["decision"],
            registry=self.registry,
        )

    def exposition(self) -> bytes:
        """The text format for ``/metrics``: this process, or all workers in multiprocess mode."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)
