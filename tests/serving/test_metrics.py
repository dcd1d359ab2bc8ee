"""The serving path's Prometheus metrics: one registry per app, fixed label sets, the text exposition."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import Counter, Gauge, Histogram, Summary

from recdrill.serving.metrics import BATCH_BUCKETS, LATENCY_BUCKETS, ServingMetrics

# Every label any metric carries: routes, statuses, tiers, reasons, event types, states, arms...
# never a user, an item or any request text.
SAFE_LABELS = {"route", "status", "tier", "reason", "event", "state", "outcome", "arm", "decision"}


def metrics_of(metrics: ServingMetrics) -> dict[str, Counter | Gauge | Histogram | Summary]:
    return {
        name: value
        for name, value in vars(metrics).items()
        if isinstance(value, Counter | Gauge | Histogram | Summary)
    }


def test_each_instance_owns_its_registry() -> None:
    first, second = ServingMetrics(), ServingMetrics()
    first.requests.labels("/v1/recommend", "200").inc(3)
    assert first.registry is not second.registry
    labels = {"route": "/v1/recommend", "status": "200"}
    assert first.registry.get_sample_value("recdrill_requests_total", labels) == 3.0
    assert second.registry.get_sample_value("recdrill_requests_total", labels) is None


def test_every_metric_is_registered_and_labelled_only_with_safe_names() -> None:
    metrics = ServingMetrics()
    declared = metrics_of(metrics)
    assert len(declared) == 20
    for name, metric in declared.items():
        assert set(metric._labelnames) <= SAFE_LABELS, name
    registered = {family.name for family in metrics.registry.collect()}
    assert len(registered) == 20 and all(name.startswith("recdrill_") for name in registered)
    assert {
        "recdrill_requests",
        "recdrill_breaker_state",
        "recdrill_arm_ndcg10",
        "recdrill_in_flight",
    } <= registered


def test_latency_lands_in_the_documented_buckets() -> None:
    metrics = ServingMetrics()
    metrics.latency.labels("/v1/recommend").observe(0.003)
    value = metrics.registry.get_sample_value
    assert value("recdrill_request_latency_seconds_bucket", {"route": "/v1/recommend", "le": "0.0025"}) == 0.0
    assert value("recdrill_request_latency_seconds_bucket", {"route": "/v1/recommend", "le": "0.005"}) == 1.0
    assert value("recdrill_request_latency_seconds_sum", {"route": "/v1/recommend"}) == pytest.approx(0.003)
    assert LATENCY_BUCKETS[0] == 0.001 and LATENCY_BUCKETS[-1] == 2.5
    metrics.batch_size.labels("primary").observe(3)
    assert value("recdrill_model_batch_size_bucket", {"tier": "primary", "le": "4.0"}) == 1.0
    assert value("recdrill_model_batch_size_bucket", {"tier": "primary", "le": "2.0"}) == 0.0
    assert BATCH_BUCKETS == (1, 2, 4, 8, 16, 32, 64)


def test_the_exposition_is_the_text_format_of_this_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    metrics = ServingMetrics()
    metrics.tier_skips.labels("primary", "late").inc()
    metrics.breaker_state.labels("primary").set(2)
    metrics.arm_ndcg.labels("candidate").observe(0.5)
    text = metrics.exposition().decode()
    assert "# TYPE recdrill_tier_skips_total counter" in text
    assert 'recdrill_tier_skips_total{reason="late",tier="primary"} 1.0' in text
    assert 'recdrill_breaker_state{tier="primary"} 2.0' in text
    assert 'recdrill_arm_ndcg10_sum{arm="candidate"} 0.5' in text


def test_in_multiprocess_mode_the_exposition_reads_the_shared_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    metrics = ServingMetrics()
    metrics.fallbacks.inc()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    # This process's values live in its own registry, not in the (empty) folder of the workers.
    assert b"recdrill_fallbacks_total" not in metrics.exposition()
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    assert b"recdrill_fallbacks_total 1.0" in metrics.exposition()
