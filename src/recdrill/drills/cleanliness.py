"""Leaving the target clean: rollback actions, and the check that nothing of the drill remains.

Chaos tools' users most often complain of faults left behind. After every drill, however it ended,
the runner reverts its own faults, runs the scenario's rollbacks, then checks: no fault of any
catalogue type is active (the server's fault table included), no worker is stopped, as many workers
serve as before and ``/readyz`` answers, and the served model version is the one the drill found.
"""

from __future__ import annotations

import contextlib
import signal
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from recdrill.drills.faults.catalogue import catalogue
from recdrill.drills.faults.process import stopped_workers
from recdrill.drills.faults.server_table import active_server_faults
from recdrill.drills.target import DrillTarget
from recdrill.errors import FaultUnavailableError, ProcessGoneError
from recdrill.procs import ProcessRef, is_stopped

WORKERS_BACK_S = 30.0  # a killed worker's replacement has this long to start before the check fails


@dataclass(frozen=True)
class TargetSnapshot:
    """What the drill found on the target, to compare with afterwards."""

    model_version: str | None
    workers: int | None

    @classmethod
    def of(cls, target: DrillTarget) -> TargetSnapshot:
        workers = None if target.workers is None else len(target.workers.worker_pids())
        return cls(target.model_version(), workers)


def run_rollback(target: DrillTarget, action: str, before: TargetSnapshot) -> dict[str, Any]:
    """Run one rollback action; returns ``{"action", "status": "succeeded"|"failed", "output", "start",
    "end"}`` (times in ISO 8601, UTC)."""
    start = datetime.now(UTC).isoformat()
    try:
        output, status = _ROLLBACKS[action](target, before), "succeeded"
    except (httpx.HTTPError, OSError, RuntimeError, ValueError) as exc:
        output, status = f"{type(exc).__name__}: {exc}", "failed"
    return {
        "action": action,
        "status": status,
        "output": output,
        "start": start,
        "end": datetime.now(UTC).isoformat(),
    }


def _remove_server_faults(target: DrillTarget, _: TargetSnapshot) -> str:
    with target.admin() as admin:
        response = admin.get("/admin/faults")
        response.raise_for_status()
        removed = 0
        for fault in response.json():
            if admin.delete(f"/admin/faults/{fault['id']}").status_code in (200, 404):
                removed += 1
    return f"removed {removed} fault(s)"


def _restore_model(target: DrillTarget, before: TargetSnapshot) -> str:
    now = target.model_version()
    if before.model_version is None or now == before.model_version:
        return f"model version {now} unchanged"
    with target.admin(timeout_s=120.0) as admin:
        response = admin.post("/admin/models/reload", json={})
    if response.status_code != 200:
        raise RuntimeError(f"reload of the configured model refused: HTTP {response.status_code}")
    return f"reloaded the configured model: {now} -> {response.json().get('model_version')}"


def _continue_workers(target: DrillTarget, _: TargetSnapshot) -> str:
    if target.workers is None:
        return "no worker pids known"
    stopped = [pid for pid in target.workers.worker_pids() if is_stopped(pid)]
    for pid in stopped:
        with contextlib.suppress(ProcessGoneError):  # replaced by the supervisor meanwhile
            ProcessRef.of(pid).signal(signal.SIGCONT)
    return f"continued {len(stopped)} worker(s)"


_ROLLBACKS = {
    "remove-server-faults": _remove_server_faults,
    "restore-model": _restore_model,
    "continue-workers": _continue_workers,
}


def leftovers(target: DrillTarget) -> list[str]:
    """Everything of any fault type still active on the target, the server's fault table included,
    without repeats. A fault type whose check needs what the target lacks (``state_dir``, ``local``,
    ...) is skipped; a check that fails counts as a leftover naming the failure, since "could not
    check" is not "clean"."""
    found: list[str] = list(active_server_faults(target))
    for ftype in catalogue():
        if ftype.leftovers is None:
            continue
        try:
            target.require(ftype.name, *sorted(ftype.needs))
        except FaultUnavailableError:
            continue
        try:
            items = ftype.leftovers(target)
        except Exception as exc:
            items = [f"{ftype.name}: cannot check: {type(exc).__name__}: {exc}"]
        found.extend(item for item in items if item not in found)
    return found


def cleanliness_report(target: DrillTarget, before: TargetSnapshot, all_reverted: bool) -> dict[str, Any]:
    """The cleanliness verdict (``ok`` plus what was checked)."""
    workers_after = _wait_for_workers(target, before.workers)
    # Wait for /readyz only where it answered before the drill: an unreachable target stays so.
    ready, version = _ready(target, patient=before.model_version is not None)
    remaining = _settled_leftovers(target, patient=ready)
    if ready:  # read again once settled: the first answer may have come from a worker still catching up
        version = target.model_version() or version
    stopped = None if target.workers is None else stopped_workers(target.workers)
    same_version = before.model_version is None or version == before.model_version
    workers_ok = before.workers is None or (workers_after is not None and workers_after >= before.workers)
    return {
        "ok": all_reverted and not remaining and not stopped and ready and same_version and workers_ok,
        "all_reverted": all_reverted,
        "leftovers": remaining,
        "active_faults": len(remaining),
        "stopped_workers": stopped,
        "workers": {"before": before.workers, "after": workers_after},
        "ready": ready,
        "model_version": {"before": before.model_version, "after": version, "same": same_version},
    }


def _settled_leftovers(target: DrillTarget, patient: bool) -> list[str]:
    """Leftovers once the target has had time to settle: a worker continued after a freeze follows
    the rolled-back model a second or two after the others (it missed the reload while stopped)."""
    deadline = time.monotonic() + (WORKERS_BACK_S if patient else 0.0)
    while True:
        remaining = leftovers(target)
        if not remaining or time.monotonic() > deadline:
            return remaining
        time.sleep(1.0)


def _wait_for_workers(target: DrillTarget, wanted: int | None) -> int | None:
    if target.workers is None:
        return None
    deadline = time.monotonic() + WORKERS_BACK_S
    count = len(target.workers.worker_pids())
    while wanted is not None and count < wanted and time.monotonic() < deadline:
        time.sleep(0.2)
        count = len(target.workers.worker_pids())
    return count


def _ready(target: DrillTarget, patient: bool) -> tuple[bool, str | None]:
    deadline = time.monotonic() + (WORKERS_BACK_S if patient else 0.0)
    while True:
        version = target.model_version()
        if version is not None or time.monotonic() > deadline:
            return version is not None, version
        time.sleep(0.5)
