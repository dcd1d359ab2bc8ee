"""A real drill against a real server on 127.0.0.1: report written, verdicts match the fault."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from recdrill.cli import main
from recdrill.data.loading import load_dataset
from recdrill.data.splits import leave_one_out
from recdrill.drills.replayer import ReplayPlan
from recdrill.drills.report import write_report
from recdrill.drills.runner import DrillRunner
from recdrill.drills.scenario import parse_scenario
from recdrill.serving.process import ServerProcess

DATA = "shopsim:n_items=600,n_users=500,n_events=10000"
KEY = "drill-test-key"

SCENARIO = """
name: one-slow-ranker
traffic: {rate: 30, duration_s: 24, seed: 5}
baseline_s: 8
after_s: 6
window_s: 2
faults:
  - {name: slow-ranker, at_s: 8, duration_s: 8, kind: latency, latency_ms: 200}
hypotheses:
  - {name: available, metric: availability, min: 0.99}
  - {name: mostly-primary, metric: fallback_share, max: 0.1}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("drill")
    assert main(["train", "--data", DATA, "--model", "itemknn", "--out", str(root / "model")]) == 0
    with ServerProcess(root / "model", root / "state", admin_key=KEY) as running:
        yield running


@pytest.fixture(scope="module")
def plan() -> ReplayPlan:
    return ReplayPlan.from_fold(leave_one_out(load_dataset(DATA)).test)


def test_drill_with_a_fault_past_the_deadline(
    server: ServerProcess, plan: ReplayPlan, tmp_path: Path
) -> None:
    journal = DrillRunner(parse_scenario(SCENARIO), server.url, KEY, plan).run()
    json_path, html_path = write_report(journal, tmp_path)
    report = json.loads(json_path.read_text())

    assert report["status"] == "completed"
    assert report["deviated"] is True  # the fallback-share hypothesis must break during the fault
    deviating = {name for d in report["steady_states"]["during"]["deviations"] for name in d["hypotheses"]}
    assert deviating == {"mostly-primary"}  # ... while availability holds throughout
    assert report["summary"]["availability"] >= 0.99
    assert report["steady_states"]["before"]["ok"] and report["steady_states"]["after"]["ok"]

    (fault,) = report["faults"]
    assert (fault["name"], fault["start"], fault["end"], fault["reverted"]) == ("slow-ranker", 8, 16, True)
    assert fault["detect_s"] is not None and 0 < fault["detect_s"] <= 3
    assert fault["failover_s"] is not None and fault["failover_s"] < 1.0
    assert fault["recover_s"] is not None and fault["recover_s"] <= 4

    rows = {row["t"]: row for row in report["timeline"]}
    assert set(rows) == set(range(24))
    assert set(rows[0]) >= {"t", "rps", "p99_ms", "error_rate", "served_by", "ndcg10"}
    assert rows[12]["served_by"].get("popular", 0) > 0 and rows[12]["served_by"].get("primary", 0) == 0
    assert rows[3]["served_by"].get("primary", 0) > 0 and rows[3]["error_rate"] == 0.0
    assert report["baseline"]["ndcg10"] > 0  # the model's answers hit held-out items
    assert report["cleanliness"] == {"active_faults": 0, "all_reverted": True, "ok": True}

    page = html_path.read_text()
    assert "data:image/png;base64," in page and "slow-ranker" in page and "deviated" in page


def test_interrupted_drill_still_reverts_its_fault(server: ServerProcess, tmp_path: Path) -> None:
    scenario = tmp_path / "long.yaml"
    scenario.write_text(
        SCENARIO.replace("duration_s: 24", "duration_s: 120")
        .replace("duration_s: 8,", "duration_s: 100,")
        .replace("baseline_s: 8", "baseline_s: 2")
        .replace("at_s: 8", "at_s: 2")
    )
    command = [
        sys.executable,
        "-m",
        "recdrill",
        "drill",
        "--target",
        server.url,
        "--scenario",
        str(scenario),
        "--data",
        DATA,
        "--out",
        str(tmp_path / "out"),
    ]
    drill = subprocess.Popen(
        command, env={**os.environ, "RECDRILL_ADMIN_KEY": KEY}, stderr=subprocess.PIPE, text=True
    )
    with httpx.Client(base_url=server.url, headers={"X-API-Key": KEY}) as admin:
        deadline = time.monotonic() + 60
        while not admin.get("/admin/faults").json() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert admin.get("/admin/faults").json(), "the drill never injected its fault"
        drill.send_signal(signal.SIGINT)
        _, err = drill.communicate(timeout=60)
        assert drill.returncode == 130, err
        assert admin.get("/admin/faults").json() == []  # removed at once, not left to its 105 s TTL
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["status"] == "interrupted" and report["faults"][0]["reverted"] is True
