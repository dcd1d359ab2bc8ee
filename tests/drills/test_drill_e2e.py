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
from recdrill.drills.faults.process import stopped_workers
from recdrill.drills.replayer import ReplayPlan
from recdrill.drills.report import write_report
from recdrill.drills.runner import DrillRunner
from recdrill.drills.scenario import parse_scenario
from recdrill.drills.target import DrillTarget
from recdrill.errors import DrillError
from recdrill.procs import is_stopped
from recdrill.serving.runtime.local_process import ServerProcess

DATA = "shopsim:n_items=600,n_users=500,n_events=10000"
KEY = "drill-test-key"

SCENARIO = """
name: one-slow-ranker
traffic: {rate: 30, duration_s: 28, seed: 5}
baseline_s: 8
after_s: 6
window_s: 2
# The "after" window (22-28 s) starts 6 s after the revert: the primary's circuit breaker may have
# re-opened just before the revert and stays open for its 3 s cool-down before probing.
faults:
  - {name: slow-ranker, at_s: 8, duration_s: 8, kind: latency, latency_ms: 200}
hypotheses:
  - {name: available, metric: availability, min: 0.99}
  - {name: mostly-primary, metric: fallback_share, max: 0.1}
"""


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("drill") / "model"
    assert main(["train", "--data", DATA, "--model", "itemknn", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def server(model_dir: Path) -> Iterator[ServerProcess]:
    with ServerProcess(model_dir, model_dir.parent / "state", admin_key=KEY) as running:
        yield running


def finish(drill: subprocess.Popen[str], timeout_s: float = 60.0) -> tuple[str, str]:
    """The drill's output once it exits; if it does not within ``timeout_s``, kill it and fail with
    its signal state and what it printed (a drill that outlives its SIGINT is the bug under test)."""
    status = Path(f"/proc/{drill.pid}/status")
    masks = (
        [line for line in status.read_text().splitlines() if line.startswith("Sig")]
        if status.exists()
        else []
    )
    try:
        out, err = drill.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        drill.kill()
        out, err = drill.communicate()
        pytest.fail(f"the drill outlived SIGINT by {timeout_s} s; {masks}; stderr:\n{err[-3000:]}")
    return out or "", err or ""


@pytest.fixture(scope="module")
def plan() -> ReplayPlan:
    return ReplayPlan.from_fold(leave_one_out(load_dataset(DATA)).test)


def test_drill_with_a_fault_past_the_deadline(
    server: ServerProcess, plan: ReplayPlan, tmp_path: Path
) -> None:
    journal = DrillRunner(parse_scenario(SCENARIO), DrillTarget(server.url, KEY, plan=plan)).run()
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
    # Recovery waits out the breaker's 3 s cool-down, then shows in the next 2 s window.
    assert fault["recover_s"] is not None and fault["recover_s"] <= 6

    rows = {row["t"]: row for row in report["timeline"]}
    assert set(rows) == set(range(28))
    assert set(rows[0]) >= {"t", "rps", "p99_ms", "error_rate", "served_by", "ndcg10"}
    fallbacks = sum(v for tier, v in rows[12]["served_by"].items() if tier != "primary")
    assert fallbacks > 0 and rows[12]["served_by"].get("primary", 0) == 0
    assert rows[3]["served_by"].get("primary", 0) > 0 and rows[3]["error_rate"] == 0.0
    assert report["baseline"]["ndcg10"] > 0  # the model's answers hit held-out items
    clean = report["cleanliness"]
    assert clean["ok"] and clean["leftovers"] == [] and clean["all_reverted"] and clean["ready"]
    assert clean["stopped_workers"] is None  # no worker source: not checked
    assert clean["model_version"]["same"] is True
    assert fault["fault"] == "ranker-latency" and fault["observed"] == {}
    assert fault["quality_kept"] is not None and fault["availability"] >= 0.99
    (row,) = report["scorecard"]
    assert row["fault"] == "slow-ranker" and row["detect_s"] == fault["detect_s"]
    assert row["events_lost"] == 0 and report["feedback"]["acknowledged"] > 0  # audited feedback, none lost
    assert report["summary"]["availability_first_try"] <= report["summary"]["availability"]

    page = html_path.read_text()
    assert "data:image/png;base64," in page and "slow-ranker" in page and "deviated" in page


def test_interrupted_drill_still_reverts_its_fault(server: ServerProcess, tmp_path: Path) -> None:
    scenario = tmp_path / "long.yaml"
    scenario.write_text(
        SCENARIO.replace("duration_s: 28", "duration_s: 120")
        .replace("duration_s: 8,", "duration_s: 100,")
        .replace("baseline_s: 8", "baseline_s: 2")
        .replace("at_s: 8", "at_s: 2")
    )
    command = [
        sys.executable,
        "-m",
        "recdrill",
        "drill",
        "run",
        str(scenario),
        "--target",
        server.url,
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
        _, err = finish(drill)
        assert drill.returncode == 130, err
        assert admin.get("/admin/faults").json() == []  # removed at once, not left to its 105 s TTL
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["status"] == "aborted" and report["faults"][0]["reverted"] is True
    assert report["aborted"]["reason"] == "stopped" and report["aborted"]["detail"] == "stopped by SIGINT"


PROCESS_SCENARIO = """
name: worker-faults
traffic: {rate: 20, duration_s: 22, seed: 3, timeout_s: 6}
baseline_s: 5
after_s: 5
window_s: 2
faults:
  - {name: kill-worker-0, at_s: 5, duration_s: 5, kind: kill, worker: 0}
  - {name: pause-worker-1, at_s: 12, duration_s: 2, kind: pause, worker: 1}
hypotheses:
  - {name: available, metric: availability, min: 0.99}
"""


def test_drill_kills_and_pauses_workers_and_leaves_none_stopped(
    model_dir: Path, plan: ReplayPlan, tmp_path: Path
) -> None:
    with ServerProcess(model_dir, tmp_path / "state", workers=2, admin_key=KEY) as server:
        before = server.worker_pids()
        target = DrillTarget(server.url, KEY, plan=plan, workers=server)
        journal = DrillRunner(parse_scenario(PROCESS_SCENARIO), target).run()
        after = server.worker_pids()
    json_path, html_path = write_report(journal, tmp_path)
    report = json.loads(json_path.read_text())

    kill, pause = report["faults"]
    assert kill["observed"]["pid"] == before[0] and kill["observed"]["replacement_pid"] in after
    assert before[0] not in after and 0 < kill["observed"]["replaced_s"] < 10
    # Worker 1 of the pids sorted when the pause began (the replacement may sort either side).
    assert pause["observed"]["pid"] in after and pause["observed"]["revert"] == "continued"
    assert pause["reverted_at"] - pause["injected_at"] == pytest.approx(2.0, abs=0.5)
    assert before[1] in after  # continued, not replaced: 2 s is inside the supervisor's health check
    clean = report["cleanliness"]
    assert clean["ok"] and clean["stopped_workers"] == 0 and clean["workers"] == {"before": 2, "after": 2}
    summary = report["summary"]
    # Requests the killed worker held fail on first try; one retry on another connection rescues them.
    assert summary["failed_after_retry"] == 0, summary
    assert summary["failed_first_try"] == summary["retried"]
    # Requests on a connection to the stopped worker (if the pool held one) waited for SIGCONT,
    # inside the 6 s client timeout: slow, not failed.
    assert "replacement_pid" in html_path.read_text()


def test_process_faults_need_a_worker_source(server: ServerProcess, plan: ReplayPlan) -> None:
    scenario = parse_scenario(PROCESS_SCENARIO)
    with pytest.raises(DrillError, match="needs the server's worker pids"):
        DrillRunner(scenario, DrillTarget(server.url, KEY, plan=plan)).run()
    with pytest.raises(DrillError, match="at least 2 workers"):  # one worker: nothing would replace it
        DrillRunner(scenario, DrillTarget(server.url, KEY, plan=plan, workers=server)).run()


def test_interrupted_drill_continues_its_paused_worker(model_dir: Path, tmp_path: Path) -> None:
    scenario = tmp_path / "pause.yaml"
    scenario.write_text(
        PROCESS_SCENARIO.replace("duration_s: 22", "duration_s: 120")
        .replace("baseline_s: 5", "baseline_s: 2")
        .replace("  - {name: kill-worker-0, at_s: 5, duration_s: 5, kind: kill, worker: 0}\n", "")
        .replace("at_s: 12, duration_s: 2", "at_s: 2, duration_s: 100")
    )
    with ServerProcess(model_dir, tmp_path / "state", workers=2, admin_key=KEY) as server:
        command = [
            *(sys.executable, "-m", "recdrill", "drill", "run", str(scenario), "--target", server.url),
            *("--data", DATA, "--out", str(tmp_path / "out"), "--server-pid", str(server.pid)),
        ]
        drill = subprocess.Popen(
            command, env={**os.environ, "RECDRILL_ADMIN_KEY": KEY}, stderr=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + 60
        while stopped_workers(server) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert stopped_workers(server) == 1, "the drill never paused a worker"
        stopped = [pid for pid in server.worker_pids() if is_stopped(pid)]
        drill.send_signal(signal.SIGINT)
        _, err = finish(drill)
        assert drill.returncode == 130, err
        assert stopped_workers(server) == 0  # continued at once, not left stopped
        assert stopped[0] in server.worker_pids()  # the same process, running again
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    (fault,) = report["faults"]
    assert report["status"] == "aborted" and report["aborted"]["reason"] == "stopped"
    assert fault["reverted"] and fault["observed"]["revert"] == "continued"
    assert report["cleanliness"]["stopped_workers"] == 0


ABORTING = """
name: blast-radius
traffic: {rate: 20, duration_s: 60, seed: 4, timeout_s: 2}
baseline_s: 3
after_s: 3
faults:
  - {name: cut-network, fault: network-drop, at_s: 3, duration_s: 50, params: {rate: 1.0}}
hypotheses:
  - {name: available, metric: availability, min: 0.99}
abort:
  - {metric: availability, min: 0.5, for_s: 3}
rollbacks:
  - {action: remove-server-faults}
  - {action: continue-workers}
"""


def test_an_abort_condition_stops_the_drill_and_everything_is_reverted(
    server: ServerProcess, plan: ReplayPlan
) -> None:
    started = time.monotonic()
    journal = DrillRunner(parse_scenario(ABORTING), DrillTarget(server.url, KEY, plan=plan)).run()
    assert time.monotonic() - started < 30  # stopped early, not after its 60 s of traffic
    assert journal["status"] == "aborted"
    assert journal["aborted"]["condition"]["metric"] == "availability"
    assert 5 <= journal["aborted"]["t"] <= 15  # 3 s of failures after the fault began at 3 s
    (fault,) = journal["faults"]
    assert fault["reverted"] and fault["observed"]["dropped"] > 0  # the proxy really cut requests
    assert [r["action"] for r in journal["rollbacks"]] == ["remove-server-faults", "continue-workers"]
    assert all(r["status"] == "succeeded" for r in journal["rollbacks"])
    assert journal["cleanliness"]["ok"], journal["cleanliness"]


LOADED = """
name: beside-busy-neighbours
traffic: {rate: 30, duration_s: 8, seed: 6}
baseline_s: 2
after_s: 2
window_s: 2
faults:
  - {name: surge, fault: traffic-surge, at_s: 2, duration_s: 4, params: {multiplier: 5}}
hypotheses:
  - {name: answered, metric: availability, min: 0.5}
rollbacks:
  - {action: remove-server-faults}
"""


def test_a_drill_beside_two_cpu_burning_processes_ends_within_its_deadline_with_a_report(
    server: ServerProcess, plan: ReplayPlan, tmp_path: Path
) -> None:
    """The peak-day hang in small: a drill whose process shares the CPU with two busy loops (on a
    2-core host, all of it) and sends a 5x surge from a thread of its own. It must end within its
    deadline, with a report that counts what it could not send."""
    scenario = parse_scenario(LOADED)
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        started = time.monotonic()
        journal = DrillRunner(scenario, DrillTarget(server.url, KEY, plan=plan)).run()
        elapsed = time.monotonic() - started
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()
    json_path, html_path = write_report(journal, tmp_path)
    assert elapsed < scenario.deadline_s, elapsed
    report = json.loads(json_path.read_text())
    assert report["status"] == "completed" or report["aborted"]["reason"] == "deadline", report["aborted"]
    summary = report["summary"]
    assert summary["requests"] > 0 and summary["requests"] + summary["skipped"] > 0
    assert {"skipped", "skipped_share", "judgement_weak"} <= set(summary)
    (surge,) = report["faults"]
    assert surge["reverted"] and {"skipped_late", "skipped_busy"} <= set(surge["observed"])
    assert report["cleanliness"]["ok"], report["cleanliness"]
    assert "not counted against availability" in html_path.read_text()
