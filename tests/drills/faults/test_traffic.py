"""Each traffic fault against a real server on 127.0.0.1: its effect is seen, revert stops the
traffic (the server's request count stops growing) and leaves no leftovers.

One shared server (admission limit 1 with no wait, so a surge sheds; live monitor knobs small, so
it judges within seconds) serves every fault but feature drift, which needs a monitor that has seen
nothing else: hot-key traffic of one user alone would already move the category mix.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from recdrill.cli import main
from recdrill.data.snapshot import ShopSnapshot
from recdrill.drills.faults.catalogue import fault_type
from recdrill.drills.faults.traffic import drift_items, rarely_bought
from recdrill.drills.replayer import ReplayPlan
from recdrill.drills.target import DrillTarget
from recdrill.errors import ConfigError, FaultUnavailableError
from recdrill.serving.runtime.local_process import ServerProcess

DATA = "shopsim:n_items=600,n_users=500,n_events=10000"
KEY = "traffic-test-key"
# The live monitor: a pass a second, a window of 300 values (the default 5,000 takes minutes).
MONITOR_ENV = {
    "RECDRILL_MONITOR_INTERVAL_S": "1",
    "RECDRILL_MONITOR_WINDOW": "300",
    "RECDRILL_MONITOR_MIN_CURRENT": "100",
}
SHED_ARGS = ["--max-in-flight", "1", "--admission-wait-ms", "0"]
TTL = 60.0  # a failing test leaves no traffic running for long


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("traffic") / "model"
    assert main(["train", "--data", DATA, "--model", "itemknn", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def snapshot(model_dir: Path) -> ShopSnapshot:
    return ShopSnapshot.load(model_dir)


def metrics(server: ServerProcess) -> str:
    return httpx.get(server.url + "/metrics", timeout=5).text


def sample(text: str, name: str, **labels: str) -> float:
    """Sum of a metric's samples whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        match = re.match(rf"{name}(?:\{{(.*)\}})? (\S+)$", line)
        if match and all(f'{k}="{v}"' in (match.group(1) or "") for k, v in labels.items()):
            total += float(match.group(2))
    return total


def start_server(model_dir: Path, state_dir: Path, extra_args: list[str]) -> ServerProcess:
    """A server whose workers see the monitor knobs, returned once both monitors run (they start in
    the background after /readyz: requests before that are not observed)."""
    with pytest.MonkeyPatch.context() as env:
        for name, value in MONITOR_ENV.items():
            env.setenv(name, value)
        server = ServerProcess(model_dir, state_dir, admin_key=KEY, extra_args=extra_args).start()
    deadline = time.monotonic() + 60
    while not ('recdrill_drift_threshold{feature="history_category"}' in (text := metrics(server))
               and "recdrill_anomalies_total" in text):  # fmt: skip
        if time.monotonic() > deadline:
            server.stop()
            pytest.fail("the server's monitors did not start within 60 s")
        time.sleep(0.3)
    return server


@pytest.fixture(scope="module")
def server(model_dir: Path) -> Iterator[ServerProcess]:
    running = start_server(model_dir, model_dir.parent / "state", SHED_ARGS)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def target(server: ServerProcess, snapshot: ShopSnapshot) -> DrillTarget:
    users = snapshot.user_ids[snapshot.histories.lengths > 0][:100]
    plan = ReplayPlan(tuple(users.tolist()), tuple(snapshot.item_ids[: len(users)].tolist()))
    return DrillTarget(server.url, KEY, plan=plan, snapshot=snapshot)


def run_fault(target: DrillTarget, name: str, raw: dict[str, Any], seconds: float) -> dict[str, Any]:
    """Inject, let it act, revert (twice: revert must be safe to repeat); the observations."""
    ftype = fault_type(name)
    params = ftype.parse({"ttl_s": TTL, **raw})
    handle = ftype.inject(target, params)
    try:
        assert ftype.leftovers is not None and len(ftype.leftovers(target)) == 1
        time.sleep(seconds)
    finally:
        observations = ftype.revert(target, params, handle)
    assert observations is not None and ftype.revert(target, params, handle) is not None
    assert ftype.leftovers(target) == []
    assert observations["requests"] > 0 and observations["running"] is False
    return observations


def assert_stopped(server: ServerProcess, route: str) -> None:
    """The server counts no more requests on ``route`` once the fault is reverted."""
    time.sleep(0.3)
    before = sample(metrics(server), "recdrill_requests_total", route=route)
    time.sleep(1.0)
    assert sample(metrics(server), "recdrill_requests_total", route=route) == before


def test_surge_is_shed_with_429s_and_no_5xx(server: ServerProcess, target: DrillTarget) -> None:
    before = metrics(server)
    seen = run_fault(target, "traffic-surge", {"multiplier": 5, "base_rate": 30}, 4.0)
    assert seen["extra_rate"] == 120 and seen["rate"] == 120
    assert seen["status_429"] > 0, seen
    assert seen["status_5xx"] == seen["connect_errors"] == seen["timeouts"] == 0, seen
    assert seen["ok"] + seen["status_429"] == seen["requests"], seen
    assert seen["tags"].get("shed:overloaded", 0) > 0  # admission control, not only the key's limit
    after = metrics(server)
    assert sample(after, "recdrill_shed_total") - sample(before, "recdrill_shed_total") > 0
    assert_stopped(server, "/v1/recommend")


def test_hot_key_sends_every_request_for_one_user(server: ServerProcess, target: DrillTarget) -> None:
    assert target.plan is not None
    before = sample(metrics(server), "recdrill_requests_total", route="/v1/recommend")
    seen = run_fault(target, "hot-key", {"rate": 40}, 3.0)
    assert seen["user_id"] == target.plan.user_ids[0]
    answered = seen["ok"] + seen["status_429"]
    assert answered == seen["requests"] and seen["ok"] > 0 and seen["status_5xx"] == 0, seen
    assert seen["tags"].get("served_by:primary", 0) == seen["ok"]
    after = sample(metrics(server), "recdrill_requests_total", route="/v1/recommend")
    assert after - before == seen["requests"]  # the server counted exactly what was sent
    assert_stopped(server, "/v1/recommend")
    other = run_fault(target, "hot-key", {"rate": 20, "user_id": "someone-else"}, 0.5)
    assert other["user_id"] == "someone-else"


def test_malformed_storm_gets_only_json_4xx(server: ServerProcess, target: DrillTarget) -> None:
    seen = run_fault(target, "malformed-request-storm", {"rate": 40}, 4.0)
    assert seen["bad_answers"] == 0, seen["tags"]
    assert seen["ok"] == seen["status_5xx"] == seen["connect_errors"] == 0, seen
    assert seen["status_4xx"] + seen["status_429"] == seen["requests"]
    kinds = {tag.split(":")[0] for tag in seen["tags"]}
    assert {"invalid_json", "huge_body", "wrong_content_type", "oversize_history"} <= kinds
    assert sample(metrics(server), "recdrill_errors_total") == 0
    assert_stopped(server, "/v1/recommend")


def test_cold_start_flood_is_served_by_popularity(server: ServerProcess, target: DrillTarget) -> None:
    before = sample(metrics(server), "recdrill_served_by_total", tier="popular")
    seen = run_fault(target, "cold-start-flood", {"rate": 40}, 3.0)
    served = {tag: n for tag, n in seen["tags"].items() if tag.startswith("served_by:")}
    assert seen["ok"] > 0 and served == {"served_by:popular": seen["ok"]}, seen
    assert sample(metrics(server), "recdrill_served_by_total", tier="popular") - before == seen["ok"]
    # The unknown item ids reached the drift monitor's unknown_items feature, and it moved.
    deadline = time.monotonic() + 15
    while sample(metrics(server), "recdrill_drift_detected", feature="unknown_items") != 1.0:
        assert time.monotonic() < deadline, "unknown_items never drifted"
        time.sleep(0.5)
    assert_stopped(server, "/v1/recommend")


def test_poisoned_feedback_is_flagged(
    server: ServerProcess, target: DrillTarget, snapshot: ShopSnapshot
) -> None:
    # The item rule judges only after 5 min of event time (it needs a reference rate): one genuine
    # event from 400 s ago gives the watch that much history.
    with httpx.Client(base_url=server.url, headers=target.headers) as client:
        old = {"user_id": "shopper", "item_id": "SKU-000001", "event": "view", "ts": time.time() - 400}
        assert client.post("/v1/feedback", json=old).status_code == 200
    ftype = fault_type("poisoned-feedback")
    params = ftype.parse({"rate": 20, "bots": 3, "ttl_s": TTL})
    handle = ftype.inject(target, params)
    deadline = time.monotonic() + 30
    try:
        # The item's clicks, and each bot's burst (~7 clicks/s, a third of all events): both rules.
        while not all(sample(text := metrics(server), "recdrill_anomalies_total", kind=kind) >= 1
                      for kind in ("item_click_spike", "user_burst")):  # fmt: skip
            assert time.monotonic() < deadline, (
                f"not flagged within 30 s: {re.findall('anomalies_total.*', text)}"
            )
            time.sleep(0.5)
    finally:
        seen = ftype.revert(target, params, handle)
    assert seen is not None and seen["item_id"] == rarely_bought(snapshot) and seen["bots"] == 3
    assert seen["acknowledged"] == seen["ok"] > 20 and seen["status_5xx"] == 0, seen
    assert sample(metrics(server), "recdrill_feedback_quarantined_total") > 0
    assert ftype.leftovers is not None and ftype.leftovers(target) == []
    assert_stopped(server, "/v1/feedback")


def test_feature_drift_fires_the_detector(model_dir: Path, snapshot: ShopSnapshot, tmp_path: Path) -> None:
    server = start_server(model_dir, tmp_path / "state", [])
    try:
        target = DrillTarget(server.url, KEY, snapshot=snapshot)
        assert sample(metrics(server), "recdrill_drift_detected", feature="history_category") == 0
        ftype = fault_type("feature-drift")
        params = ftype.parse({"rate": 60, "ttl_s": TTL})
        handle = ftype.inject(target, params)
        deadline = time.monotonic() + 40
        try:
            while sample(metrics(server), "recdrill_drift_detected", feature="history_category") != 1.0:
                assert time.monotonic() < deadline, "history_category did not drift within 40 s"
                time.sleep(0.5)
        finally:
            seen = ftype.revert(target, params, handle)
        # Far beyond sampling noise: normal traffic of these users scores ~0.16 at this window
        # (threshold 0.1), histories ending in one category alone far more.
        score = sample(metrics(server), "recdrill_drift_score", feature="history_category")
        assert score > 0.5, score
        assert seen is not None and seen["shift"] == "category" and seen["status_5xx"] == 0
        assert ftype.leftovers is not None and ftype.leftovers(target) == []
        assert_stopped(server, "/v1/recommend")
    finally:
        server.stop()


def test_drift_and_poison_pick_items_from_the_snapshot(snapshot: ShopSnapshot) -> None:
    items, what = drift_items(snapshot, "category")
    assert len(items) >= 3 and len(set(snapshot.item_category[items].tolist())) == 1 and what
    prices = snapshot.item_price
    assert prices is not None
    priced, _ = drift_items(snapshot, "price")
    assert set(priced.tolist()) == set(np.flatnonzero(prices >= np.nanpercentile(prices, 90)).tolist())
    index = snapshot.item_ids.tolist().index(rarely_bought(snapshot))
    assert snapshot.item_counts[index] == snapshot.item_counts[snapshot.item_counts > 0].min()


def test_params_and_needs_are_checked() -> None:
    for raw in ({"multiplier": 1}, {"multiplier": 51}):
        with pytest.raises(ConfigError, match="multiplier"):
            fault_type("traffic-surge").parse(raw)
    with pytest.raises(ConfigError, match="shift"):
        fault_type("feature-drift").parse({"shift": "colour"})
    bare = DrillTarget("http://127.0.0.1:9", KEY)
    for name in ("traffic-surge", "hot-key", "feature-drift", "poisoned-feedback"):
        ftype = fault_type(name)
        with pytest.raises(FaultUnavailableError, match="needs"):
            ftype.inject(bare, ftype.parse({}))
        assert ftype.leftovers is not None and ftype.leftovers(bare) == []
