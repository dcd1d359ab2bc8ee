"""Live drift monitoring: on a real server (observer wiring, metrics), and replayed ShopSim traffic
(stationary stays quiet, injected drift is flagged)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from recdrill.cli import main
from recdrill.data.shopsim import ShopSim
from recdrill.data.shopsim.config import DriftConfig
from recdrill.data.snapshot import ShopSnapshot
from recdrill.monitor.live import LiveMonitor, LiveMonitorConfig
from recdrill.monitor.replay.shop import HISTORY_LENGTH, observe_events, replay_shop, train_models
from recdrill.serving.feedback.export import export_feedback
from recdrill.serving.observers import ObserverContext, ServedModels
from recdrill.serving.runtime.local_process import ServerProcess

SHOP = "shopsim:n_items=500,n_users=400,n_events=8000"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("model") / "itemknn"
    assert main(["train", "--data", SHOP, "--model", "itemknn", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def server(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    patch = pytest.MonkeyPatch()
    # Small windows and quick passes, so a test's few hundred requests fill them.
    patch.setenv("RECDRILL_MONITOR_INTERVAL_S", "0.3")
    patch.setenv("RECDRILL_MONITOR_WINDOW", "300")
    patch.setenv("RECDRILL_MONITOR_MIN_CURRENT", "300")
    try:
        with ServerProcess(model_dir, tmp_path_factory.mktemp("state")) as running:
            yield running
    finally:
        patch.undo()


def drift_samples(text: str, name: str) -> dict[str, float]:
    """Feature -> value of one ``recdrill_drift_*`` gauge in a /metrics text."""
    return {
        sample.labels["feature"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


def wait_for(client: httpx.Client, name: str, feature: str, done: float, timeout_s: float = 20.0) -> float:
    deadline = time.monotonic() + timeout_s
    value = float("nan")
    while time.monotonic() < deadline:
        value = drift_samples(client.get("/metrics").text, name).get(feature, float("nan"))
        if value == done:
            return value
        time.sleep(0.2)
    return value


def counter(client: httpx.Client, name: str, **labels: str) -> float:
    """The sum of a counter's samples with ``labels`` in the server's /metrics text."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(client.get("/metrics").text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def test_live_traffic_like_training_is_quiet_and_a_cold_start_flood_is_flagged(
    server: ServerProcess, model_dir: Path
) -> None:
    snapshot = ShopSnapshot.load(model_dir)
    users = [str(u) for u, h in zip(snapshot.user_ids, snapshot.histories, strict=True) if len(h)][:300]
    with httpx.Client(base_url=server.url, timeout=10.0) as client:
        # The monitor starts beside serving, after the worker is ready; its reference is in once
        # thresholds are published.
        deadline = time.monotonic() + 30.0
        while "user_kind" not in drift_samples(client.get("/metrics").text, "recdrill_drift_threshold"):
            assert time.monotonic() < deadline, "the live monitor never published its thresholds"
            time.sleep(0.2)
        for user in users:  # known users, as the drill replayer sends them
            assert client.post("/v1/recommend", json={"user_id": user}).status_code == 200
        assert wait_for(client, "recdrill_drift_window_values", "user_kind", 300.0) == 300.0
        flags = drift_samples(client.get("/metrics").text, "recdrill_drift_detected")
        assert flags["user_kind"] == 0.0
        assert flags["unknown_items"] == 0.0
        # New shoppers sending item ids the catalogue has never seen.
        for i in range(300):
            body = {"user_id": f"new-{i}", "history": [f"NEW-{i}-{j}" for j in range(3)]}
            assert client.post("/v1/recommend", json=body).status_code == 200
        assert wait_for(client, "recdrill_drift_detected", "unknown_items", 1.0) == 1.0
        assert wait_for(client, "recdrill_drift_detected", "user_kind", 1.0) == 1.0
        scores = drift_samples(client.get("/metrics").text, "recdrill_drift_score")
        thresholds = drift_samples(client.get("/metrics").text, "recdrill_drift_threshold")
        assert scores["unknown_items"] >= thresholds["unknown_items"]


def test_a_feedback_burst_is_quarantined_by_the_running_server(server: ServerProcess) -> None:
    now = time.time()
    with httpx.Client(base_url=server.url, timeout=10.0) as client:
        deadline = time.monotonic() + 30.0  # the anomaly monitor starts beside serving
        while "recdrill_anomalies_total" not in client.get("/metrics").text:
            assert time.monotonic() < deadline, "the anomaly monitor never started"
            time.sleep(0.2)
        # One account posting 60 clicks within 6 seconds of event time: a script, not a person.
        for i in range(60):
            body = {"user_id": "bot-1", "item_id": f"SKU-{i:06d}", "event": "click", "ts": now + i / 10}
            assert client.post("/v1/feedback", json=body).status_code == 200
        # Events judged before the burst showed are quarantined when it does, those after it as the
        # next polls read them: wait for the whole burst.
        deadline = time.monotonic() + 20.0
        while time.monotonic() < deadline and counter(client, "recdrill_feedback_quarantined_total") < 60:
            time.sleep(0.2)
        assert counter(client, "recdrill_anomalies_total", kind="user_burst") == 1.0
        assert counter(client, "recdrill_feedback_quarantined_total") == 60.0
    out = server.state_dir / "export.csv"
    kept = export_feedback(server.state_dir / "feedback.db", out)
    everything = export_feedback(server.state_dir / "feedback.db", out, include_quarantined=True)
    assert everything - kept == 60  # every event of the burst is withheld from retraining data


def test_serve_without_monitor_exports_no_drift_metrics(model_dir: Path, tmp_path: Path) -> None:
    with ServerProcess(model_dir, tmp_path / "state", extra_args=["--no-monitor"]) as running:
        response = httpx.get(running.url + "/metrics")
    # A real scrape of a serving app: not an error page, an empty body or another server.
    assert response.status_code == 200
    assert "recdrill_requests_total" in response.text
    assert "recdrill_drift_detected" not in response.text


@pytest.mark.parametrize(
    ("drift", "expected"),
    [
        (DriftConfig(start=0.5, taste_shift=0.8), "history_category"),
        (DriftConfig(start=0.5, price_shock=2.0, price_shock_share=0.5), "feedback_log_price"),
    ],
    ids=["taste_shift", "price_shock"],
)
def test_replayed_shop_is_quiet_while_stationary_and_flags_injected_drift(
    drift: DriftConfig, expected: str
) -> None:
    # The monitor's default window (5,000 values) over about 7 requests per second.
    sim = ShopSim(n_items=600, n_users=1500, n_events=60_000, seed=5, drift=drift)
    shop = sim.generate()
    start, span = sim.config.start_date, sim.config.days * 86_400
    result = replay_shop(
        shop,
        train_end=start + int(0.4 * span),
        stop=start + int(0.6 * span),
        stationary_s=1800,
        live_s=1800,
        onset=sim.config.drift_time,
    )
    assert [alert for alert in result.alerts if alert[1] <= 1800] == []  # no false alert
    assert expected in result.first_flag  # flagged after the onset
    assert result.onset_s is not None
    held = [f for f, t in result.alerts if f == expected and t >= result.onset_s]
    assert held, f"{expected} was flagged but never held for 10 minutes: {result.alerts}"
    if expected == "feedback_log_price":  # prices do not wander by themselves: flagged only after
        assert result.first_flag[expected] > 0


def test_a_pass_over_a_full_window_leaves_the_event_loop_serving() -> None:
    """The pass runs in a thread: held inside a detector's update (the real pass, over a full
    window), the loop still runs other coroutines; released, the pass completes and publishes."""
    shop = ShopSim(n_items=300, n_users=300, n_events=6000, seed=3).generate()
    cut = int(np.quantile(shop.interactions.timestamp, 0.8))
    train, primary, fallback = train_models(shop, cut)
    served = ServedModels("v", ShopSnapshot.from_dataset(train, HISTORY_LENGTH), primary, fallback)
    registry = CollectorRegistry()
    config = LiveMonitorConfig(interval_s=0.01, window=500, min_current=300)
    monitor = LiveMonitor(ObserverContext(registry, Path("."), lambda: served), config)
    monitor.process(now=0.0)  # the reference
    later = np.flatnonzero(shop.interactions.timestamp >= cut)
    observe_events(shop, monitor, served, np.resize(later, 500), 1.0)  # a full window buffered
    entered, release = threading.Event(), threading.Event()
    detector = monitor.detectors["history_length"]
    real_update = detector.update

    def held_update(batch: object) -> object:
        entered.set()
        if not release.wait(30):  # never released: the loop could not run (the pass is on it)
            raise AssertionError("the pass held the event loop")
        return real_update(batch)

    detector.update = held_update  # type: ignore[method-assign]

    async def scenario() -> int:
        passes = asyncio.create_task(monitor.run())
        assert await asyncio.to_thread(entered.wait, 30)  # the pass is inside the update now
        served_meanwhile = 0
        for _ in range(100):  # requests' coroutines: each runs while the pass is held
            await asyncio.sleep(0)
            served_meanwhile += 1
        release.set()
        for _ in range(3000):
            if registry.get_sample_value("recdrill_drift_window_values", {"feature": "history_length"}):
                break
            await asyncio.sleep(0.01)
        passes.cancel()
        return served_meanwhile

    assert asyncio.run(scenario()) == 100
    assert registry.get_sample_value("recdrill_drift_window_values", {"feature": "history_length"}) == 500
