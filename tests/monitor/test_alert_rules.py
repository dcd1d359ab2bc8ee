"""The Prometheus alert rules in ``deploy/prometheus``: promtool accepts them and their unit tests
pass, every alert is tested both ways, and every metric they read is one the platform exports.

promtool comes from Debian's ``prometheus`` package (``.ci/run`` installs it). Without it the promtool
tests skip, unless ``RECDRILL_REQUIRE_PROMTOOL=1`` (set in CI) turns the skip into a failure, so CI
can never pass by silently not running them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from recdrill.data.dataset import Dataset
from recdrill.data.pseudonymise import Pseudonymiser
from recdrill.data.snapshot import ShopSnapshot
from recdrill.models.popularity import PopularityRecommender
from recdrill.monitor.anomaly.monitor import AnomalyMonitor
from recdrill.monitor.live import LiveMonitor
from recdrill.serving.feedback.log import FeedbackLog
from recdrill.serving.loop_watch import LoopWatch
from recdrill.serving.metrics import ServingMetrics
from recdrill.serving.observers import ObserverContext, ServedModels
from tests.conftest import REPO_ROOT

RULES_DIR = REPO_ROOT / "deploy" / "prometheus"
RULES = RULES_DIR / "alerts.yml"
RULE_TESTS = RULES_DIR / "alerts_test.yml"

# The sample names each metric type adds to its family name in the text format.
SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_count", "_sum"),
    "summary": ("_count", "_sum"),
}
PROMQL_KEYWORDS = frozenset({"and", "or", "unless", "by", "without", "on", "ignoring", "offset", "bool"})


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is not None:
        return path
    if os.environ.get("RECDRILL_REQUIRE_PROMTOOL") == "1":
        pytest.fail("promtool is not on PATH but RECDRILL_REQUIRE_PROMTOOL=1 (apt-get install prometheus)")
    pytest.skip("promtool is not installed (Debian package 'prometheus'); CI requires it")


def _run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_promtool(), *args], capture_output=True, text=True, timeout=120, check=False)


def _load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), f"{path} is not a YAML mapping"
    return data


def _rules() -> list[dict[str, Any]]:
    return [rule for group in _load(RULES)["groups"] for rule in group["rules"]]


def _alert_names() -> set[str]:
    return {rule["alert"] for rule in _rules() if "alert" in rule}


def _sample_names(text: str) -> set[str]:
    """Every sample name a text exposition can hold.

    A labelled metric has no samples until a label set is used, so names come from the families
    (``# TYPE`` lines) and the suffixes of their type.
    """
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ()))
    return names


def _exported_names() -> set[str]:
    """Every sample name the serving app can expose, from a real scrape of a fresh ServingMetrics."""
    metrics = ServingMetrics()
    LoopWatch(metrics.registry)  # the app registers its loop watch on the same registry
    return _sample_names(metrics.exposition().decode())


def _monitor_names(shop: Dataset, state_dir: Path) -> set[str]:
    """Every sample name the monitors export (drift detectors, anomaly rules, feedback quarantine),
    from a real exposition of a registry of their own: a LiveMonitor that has built its reference
    and published one pass, and an AnomalyMonitor on a real feedback log."""
    registry = CollectorRegistry()
    served = ServedModels("v1", ShopSnapshot.from_dataset(shop), PopularityRecommender().fit(shop), None)
    LiveMonitor(ObserverContext(registry, state_dir, lambda: served)).process(now=0.0)
    feedback = FeedbackLog(state_dir / "feedback.db", pseudonymiser=Pseudonymiser(b"k" * 32), sealer=None)
    try:
        AnomalyMonitor(feedback, registry)
    finally:
        feedback.close()
    return _sample_names(generate_latest(registry).decode())


def metric_names(expr: str) -> set[str]:
    """The metric (and recording-rule) names a PromQL expression selects.

    Drops string literals and label matchers, range and offset durations, and the label lists of
    ``by``/``without``/``on``/``ignoring``/``group_*``; what is left that is not a keyword and not
    followed by ``(`` (a function or aggregation) is a metric name.
    """
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", expr)
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    names = set()
    for match in re.finditer(r"(?<![\w:.])([a-zA-Z_:][\w:]*)(\s*\()?", expr):
        if match.group(2) is None and match.group(1) not in PROMQL_KEYWORDS:
            names.add(match.group(1))
    return names


def test_metric_names_reads_selectors_not_functions_or_labels() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le) (rate(a_bucket{route="/x",le!="1"}[5m]))) > 0.1 '
        "and on (tier) b unless c offset 15m or rec:ratio:rate5m > bool 1e-3"
    )
    assert metric_names(expr) == {"a_bucket", "b", "c", "rec:ratio:rate5m"}


def test_promtool_check_rules_accepts_the_rules() -> None:
    result = _run_promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_unit_tests_pass() -> None:
    result = _run_promtool("test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_firing_and_a_non_firing_case() -> None:
    alerts = _alert_names()
    assert {
        "RecdrillFeatureDrift",
        "RecdrillErrorBudgetBurn",
        "RecdrillLatencyP99High",
        "RecdrillFallbackShareHigh",
        "RecdrillBreakerOpen",
        "RecdrillAnomalies",
        "RecdrillModelRefused",
        "RecdrillShedding",
        "RecdrillEventLoopStalls",
    } <= alerts
    firing: set[str] = set()
    quiet: set[str] = set()
    for group in _load(RULE_TESTS)["tests"]:
        for case in group.get("alert_rule_test", []):
            # A misspelt name in a non-firing case would pass without testing anything.
            assert case["alertname"] in alerts, f"{group['name']!r} tests unknown alert {case['alertname']!r}"
            (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
    assert alerts - firing == set(), "alerts without a firing case"
    assert alerts - quiet == set(), "alerts without a non-firing case"


def test_every_alert_pages_or_tickets_and_explains_itself() -> None:
    for rule in _rules():
        if "alert" in rule:
            assert rule["labels"]["severity"] in {"page", "ticket"}, rule["alert"]
            assert {"summary", "description"} <= set(rule["annotations"]), rule["alert"]


def test_rules_read_only_metrics_the_platform_exports(chain_shop: Dataset, tmp_path: Path) -> None:
    rules = _rules()
    recorded = {rule["record"] for rule in rules if "record" in rule}
    serving = _exported_names()
    monitor = _monitor_names(chain_shop, tmp_path)
    known = serving | monitor | recorded
    used: set[str] = set()
    for rule in rules:
        used |= metric_names(rule["expr"])
        # Annotation templates query metrics too (the drift alert reads score and threshold).
        for text in rule.get("annotations", {}).values():
            used |= set(re.findall(r"\brecdrill_\w+", text))
    assert used - known == set(), f"rules read metrics nobody exports: {sorted(used - known)}"
    assert {"recdrill_requests_total", "recdrill_request_latency_seconds_bucket"} <= used
    # The drift and anomaly alerts read what only the monitors export.
    assert {"recdrill_drift_detected", "recdrill_drift_score", "recdrill_anomalies_total"} <= used & (
        monitor - serving
    )
