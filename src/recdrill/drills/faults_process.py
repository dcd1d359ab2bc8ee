"""Process faults: SIGKILL a serving worker, or freeze one (SIGSTOP, then SIGCONT on revert).

They act on this machine's processes, so they need the target's worker pids (``needs: workers``);
see ``recdrill.drills.process_faults`` for the safety rules (at least two workers, pids checked
against their start time before each signal).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from pydantic import Field

from recdrill.drills import process_faults
from recdrill.drills.catalogue import FaultParams, FaultType, Observations, register
from recdrill.drills.process_faults import WorkerSource
from recdrill.drills.target import DrillTarget
from recdrill.serving.workers import WorkerRef

REPLACEMENT_WAIT_S = 60.0


class WorkerParams(FaultParams):
    worker: int = Field(0, ge=0, le=1023, description="index into the target's worker pids, sorted")


@dataclass
class KilledWorker:
    """A killed worker and, once the supervisor started it, its replacement."""

    worker: WorkerRef
    before: list[int]
    killed_at: float = field(default_factory=time.monotonic)
    replacement_pid: int | None = None
    replaced_s: float | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def watch(self, source: WorkerSource) -> None:
        """Poll for the replacement in a daemon thread (the drill reads it at revert)."""

        def poll() -> None:
            while not self._stop.wait(0.05):
                pid = process_faults.replacement(source, self.worker.pid, self.before)
                if pid is not None:
                    self.replacement_pid, self.replaced_s = pid, time.monotonic() - self.killed_at
                    return
                if time.monotonic() - self.killed_at > REPLACEMENT_WAIT_S:
                    return

        threading.Thread(target=poll, name="recdrill-replacement-watch", daemon=True).start()


def _workers(target: DrillTarget) -> WorkerSource:
    assert target.workers is not None  # checked by require()
    return target.workers


def inject_kill(target: DrillTarget, params: WorkerParams) -> KilledWorker:
    target.require("worker-kill", "workers")
    source = _workers(target)
    before = source.worker_pids()
    killed = KilledWorker(process_faults.inject(source, "kill", params.worker), before)
    killed.watch(source)
    return killed


def revert_kill(target: DrillTarget, _: WorkerParams, killed: KilledWorker) -> Observations:
    """Nothing to undo (the supervisor replaces the worker); wait briefly for the replacement."""
    deadline = time.monotonic() + 10.0
    while killed.replacement_pid is None and time.monotonic() < deadline:
        time.sleep(0.05)
    killed._stop.set()
    return {
        "pid": killed.worker.pid,
        "replacement_pid": killed.replacement_pid,
        "replaced_s": killed.replaced_s,
    }


def inject_freeze(target: DrillTarget, params: WorkerParams) -> WorkerRef:
    target.require("worker-freeze", "workers")
    return process_faults.inject(_workers(target), "pause", params.worker)


def revert_freeze(target: DrillTarget, _: WorkerParams, worker: WorkerRef) -> Observations:
    return {"pid": worker.pid, "revert": process_faults.revert("pause", worker)}


def enough_workers(target: DrillTarget, _: WorkerParams) -> None:
    """At least two workers: with one there is no supervisor to replace it, and killing it ends the server."""
    process_faults.check_workers(_workers(target))


def stopped(target: DrillTarget) -> list[str]:
    if target.workers is None:
        return []
    count = process_faults.stopped_workers(target.workers)
    return [f"{count} worker(s) stopped (SIGSTOP)"] if count else []


register(
    FaultType(
        name="worker-kill",
        kind="infrastructure",
        summary="SIGKILL one serving worker (a Ray Serve replica: see recdrill.serving.ray_process)",
        params=WorkerParams,
        inject=inject_kill,
        revert=revert_kill,
        needs=frozenset({"workers"}),
        effect="its in-flight requests fail (retried once); the supervisor starts a replacement",
        preflight=enough_workers,
    )
)
register(
    FaultType(
        name="worker-freeze",
        kind="infrastructure",
        summary="SIGSTOP one serving worker; SIGCONT on revert",
        params=WorkerParams,
        inject=inject_freeze,
        revert=revert_freeze,
        needs=frozenset({"workers"}),
        effect="requests routed to it hang until revert or the supervisor's health check replaces it",
        leftovers=stopped,
        preflight=enough_workers,
    )
)
