"""Rollback actions, the leftovers check and the cleanliness verdict against a scripted target."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime

import pytest

from recdrill.drills import cleanliness
from recdrill.drills.cleanliness import TargetSnapshot, cleanliness_report, leftovers, run_rollback
from recdrill.drills.target import DrillTarget
from recdrill.procs import is_stopped
from tests.drills.test_target import KEY, FakeDeployment, Pids, closed_port_url
from tests.test_procs import eventually


@pytest.fixture
def fake() -> Iterator[FakeDeployment]:
    with FakeDeployment() as running:
        yield running


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield child
    finally:
        os.kill(child.pid, signal.SIGCONT)
        child.kill()
        child.wait()


class Broken:
    """A worker source that cannot list its workers."""

    def worker_pids(self) -> list[int]:
        raise RuntimeError("ps failed")


def add_fault(fake: FakeDeployment, point: str, kind: str) -> None:
    with fake.lock:
        fake.next_fault += 1
        fake.faults[f"f{fake.next_fault}"] = {"id": f"f{fake.next_fault}", "point": point, "kind": kind}


def test_the_snapshot_holds_the_served_version_and_the_worker_count(fake: FakeDeployment) -> None:
    assert TargetSnapshot.of(DrillTarget(fake.url, KEY)) == TargetSnapshot("v1", None)
    assert TargetSnapshot.of(DrillTarget(fake.url, KEY, workers=Pids(5, 6, 7))) == TargetSnapshot("v1", 3)
    assert TargetSnapshot.of(DrillTarget(closed_port_url(), KEY)) == TargetSnapshot(None, None)


# -- rollbacks ----------------------------------------------------------------------------------------


def test_remove_server_faults_deletes_every_fault_the_server_holds(fake: FakeDeployment) -> None:
    add_fault(fake, "ranker", "nan")
    add_fault(fake, "cache", "empty")
    result = run_rollback(DrillTarget(fake.url, KEY), "remove-server-faults", TargetSnapshot("v1", None))
    assert (result["action"], result["status"], result["output"]) == (
        "remove-server-faults",
        "succeeded",
        "removed 2 fault(s)",
    )
    assert fake.faults == {}
    assert datetime.fromisoformat(result["start"]) <= datetime.fromisoformat(result["end"])
    assert datetime.fromisoformat(result["start"]).utcoffset() is not None  # UTC, with its offset


def test_restore_model_reloads_the_configured_model_only_when_the_version_moved(
    fake: FakeDeployment,
) -> None:
    target = DrillTarget(fake.url, KEY)
    unchanged = run_rollback(target, "restore-model", TargetSnapshot("v1", None))
    assert unchanged["output"] == "model version v1 unchanged"
    assert fake.seen("POST", "/admin/models/reload") == []
    fake.serve("pushed-9")
    moved = run_rollback(target, "restore-model", TargetSnapshot("v1", None))
    assert (moved["status"], moved["output"]) == (
        "succeeded",
        "reloaded the configured model: pushed-9 -> v1",
    )
    assert fake.seen("POST", "/admin/models/reload") == [{}]
    assert target.model_version() == "v1"


def test_a_refused_reload_is_a_failed_rollback(fake: FakeDeployment) -> None:
    fake.serve("pushed-9")
    fake.reload_status = {"configured": 409}
    result = run_rollback(DrillTarget(fake.url, KEY), "restore-model", TargetSnapshot("v1", None))
    assert result["status"] == "failed"
    assert result["output"] == "RuntimeError: reload of the configured model refused: HTTP 409"


def test_continue_workers_sends_sigcont_to_stopped_workers(
    fake: FakeDeployment, sleeper: subprocess.Popen[bytes]
) -> None:
    os.kill(sleeper.pid, signal.SIGSTOP)
    eventually(lambda: is_stopped(sleeper.pid), "the worker stopped")
    target = DrillTarget(fake.url, KEY, workers=Pids(sleeper.pid))
    result = run_rollback(target, "continue-workers", TargetSnapshot("v1", 1))
    assert (result["status"], result["output"]) == ("succeeded", "continued 1 worker(s)")
    eventually(lambda: not is_stopped(sleeper.pid), "the worker running again")
    assert (
        run_rollback(target, "continue-workers", TargetSnapshot("v1", 1))["output"] == "continued 0 worker(s)"
    )
    no_pids = run_rollback(DrillTarget(fake.url, KEY), "continue-workers", TargetSnapshot("v1", None))
    assert no_pids["output"] == "no worker pids known"


def test_a_rollback_against_an_unreachable_target_fails_with_the_error() -> None:
    result = run_rollback(
        DrillTarget(closed_port_url(), KEY), "remove-server-faults", TargetSnapshot(None, None)
    )
    assert result["status"] == "failed" and result["output"].startswith("ConnectError: ")


# -- leftovers ----------------------------------------------------------------------------------------


def test_a_clean_target_has_no_leftovers(fake: FakeDeployment) -> None:
    assert leftovers(DrillTarget(fake.url, KEY)) == []


def test_a_server_fault_is_one_leftover_however_many_fault_types_see_it(fake: FakeDeployment) -> None:
    add_fault(fake, "ranker", "latency")
    assert leftovers(DrillTarget(fake.url, KEY)) == ["ranker/latency (f1)"]


def test_a_stopped_worker_is_a_leftover(fake: FakeDeployment, sleeper: subprocess.Popen[bytes]) -> None:
    os.kill(sleeper.pid, signal.SIGSTOP)
    eventually(lambda: is_stopped(sleeper.pid), "the worker stopped")
    assert leftovers(DrillTarget(fake.url, KEY, workers=Pids(sleeper.pid))) == [
        "1 worker(s) stopped (SIGSTOP)"
    ]


def test_a_check_that_fails_is_a_leftover_naming_the_failure(fake: FakeDeployment) -> None:
    found = leftovers(DrillTarget(fake.url, KEY, workers=Broken()))
    assert found == ["worker-freeze: cannot check: RuntimeError: ps failed"]


def test_an_unreachable_server_is_not_clean() -> None:
    assert leftovers(DrillTarget(closed_port_url(), KEY)) == ["cannot list the server's faults: ConnectError"]


# -- the verdict --------------------------------------------------------------------------------------


def test_a_clean_target_passes(fake: FakeDeployment) -> None:
    report = cleanliness_report(DrillTarget(fake.url, KEY), TargetSnapshot("v1", None), all_reverted=True)
    assert report == {
        "ok": True,
        "all_reverted": True,
        "leftovers": [],
        "active_faults": 0,
        "stopped_workers": None,
        "workers": {"before": None, "after": None},
        "ready": True,
        "model_version": {"before": "v1", "after": "v1", "same": True},
    }


def test_a_fault_not_reverted_fails_the_verdict(fake: FakeDeployment) -> None:
    report = cleanliness_report(DrillTarget(fake.url, KEY), TargetSnapshot("v1", None), all_reverted=False)
    assert report["ok"] is False and report["all_reverted"] is False and report["leftovers"] == []


def test_another_model_version_fails_the_verdict(fake: FakeDeployment) -> None:
    fake.serve("pushed-1")
    report = cleanliness_report(DrillTarget(fake.url, KEY), TargetSnapshot("v1", None), all_reverted=True)
    assert report["ok"] is False
    assert report["model_version"] == {"before": "v1", "after": "pushed-1", "same": False}


def test_a_server_fault_that_expires_while_settling_leaves_the_target_clean(fake: FakeDeployment) -> None:
    add_fault(fake, "cache", "stale")
    fake.faults_vanish_after = 1  # the server's TTL drops it after the first listing
    report = cleanliness_report(DrillTarget(fake.url, KEY), TargetSnapshot("v1", None), all_reverted=True)
    assert report["ok"] is True and report["leftovers"] == []


def test_an_unreachable_target_is_not_clean_and_not_waited_for() -> None:
    report = cleanliness_report(DrillTarget(closed_port_url(), KEY), TargetSnapshot(None, None), True)
    assert report["ok"] is False and report["ready"] is False
    assert report["leftovers"] == ["cannot list the server's faults: ConnectError"]
    assert report["active_faults"] == 1
    assert report["model_version"] == {"before": None, "after": None, "same": True}


def test_fewer_workers_than_before_fail_the_verdict(
    fake: FakeDeployment, sleeper: subprocess.Popen[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cleanliness, "WORKERS_BACK_S", 0.2)  # no replacement is coming: do not wait 30 s
    target = DrillTarget(fake.url, KEY, workers=Pids(sleeper.pid))
    report = cleanliness_report(target, TargetSnapshot("v1", 2), all_reverted=True)
    assert report["ok"] is False
    assert report["workers"] == {"before": 2, "after": 1}
    assert report["stopped_workers"] == 0
    assert cleanliness_report(target, TargetSnapshot("v1", 1), all_reverted=True)["ok"] is True
