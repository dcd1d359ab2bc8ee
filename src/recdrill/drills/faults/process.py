"""Process faults: SIGKILL a serving worker, or freeze one (SIGSTOP, then SIGCONT on revert).

They act on this machine's processes, not through the HTTP API, so they need the target's worker
pids (``needs: workers``): a ``ServerProcess`` started by the caller, or a
:class:`~recdrill.drills.target.LocalServer` naming the pid of a running ``recdrill serve --workers N``
(N >= 2: with one worker there is no supervisor to replace it, and killing it ends the server).

Reverting: a kill leaves nothing to undo (uvicorn's supervisor starts a replacement); a freeze is
undone with SIGCONT, which the drill runner sends on schedule and again on every exit path. If the
runner itself dies, a stopped worker stays stopped only until the supervisor's health check gives up
on it (``WORKER_HEALTHCHECK_S``) and replaces it: the supervisor is the freeze's TTL. Signals go
through :class:`~recdrill.procs.ProcessRef`, so a worker that was replaced meanwhile is never
confused with a new process that reused its pid.
"""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Literal

from pydantic import Field

from recdrill.drills.faults.catalogue import FaultParams, FaultType, Observations, register
from recdrill.drills.target import DrillTarget, WorkerSource
from recdrill.errors import ProcessFaultError, ProcessGoneError
from recdrill.procs import ProcessRef, is_stopped

ProcessFaultKind = Literal["kill", "freeze"]
MIN_WORKERS = 2


def usable_workers(source: WorkerSource) -> list[int]:
    """The target's worker pids, if there are enough to fault one while the others serve.

    Raises:
        ProcessFaultError: fewer than two workers.
    """
    pids = source.worker_pids()
    if len(pids) < MIN_WORKERS:
        raise ProcessFaultError(
            f"process faults need a server with at least {MIN_WORKERS} workers (a supervisor replaces a "
            f"killed one), found {len(pids)}: serve with --workers {MIN_WORKERS} or more"
        )
    return pids


def signal_worker(source: WorkerSource, kind: ProcessFaultKind, index: int) -> ProcessRef:
    """SIGKILL (``kill``) or SIGSTOP (``freeze``) worker ``index`` of the sorted pids; return it.

    Raises:
        ProcessFaultError: too few workers, ``index`` out of range, or the worker vanished.
    """
    pids = usable_workers(source)
    if index >= len(pids):
        raise ProcessFaultError(f"worker {index} asked for, but the target has {len(pids)} workers")
    try:
        worker = ProcessRef.of(pids[index])
    except ProcessGoneError:
        worker = None
    if worker is None or not worker.signal(signal.SIGKILL if kind == "kill" else signal.SIGSTOP):
        raise ProcessFaultError(f"worker {pids[index]} exited before it could be signalled")
    return worker


def continue_worker(worker: ProcessRef) -> str:
    """Undo a freeze; returns what happened, for the journal. Safe to call more than once."""
    if worker.signal(signal.SIGCONT):
        return "continued"
    return "already gone: the supervisor replaced the stopped worker"


def stopped_workers(source: WorkerSource) -> int:
    """How many of the target's workers are stopped (SIGSTOP): a clean drill leaves none."""
    return sum(is_stopped(pid) for pid in source.worker_pids())


def replacement(source: WorkerSource, killed: int, before: list[int]) -> int | None:
    """A worker pid that was not there before the kill, if one runs now."""
    new = set(source.worker_pids()) - set(before) - {killed}
    return min(new) if new else None


REPLACEMENT_WAIT_S = 60.0


class WorkerParams(FaultParams):
    worker: int = Field(0, ge=0, le=1023, description="index into the target's worker pids, sorted")


@dataclass
class KilledWorker:
    """A killed worker and, once the supervisor started it, its replacement."""

    worker: ProcessRef
    before: list[int]
    killed_at: float = field(default_factory=time.monotonic)
    replacement_pid: int | None = None
    replaced_s: float | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def watch(self, source: WorkerSource) -> None:
        """Poll for the replacement in a daemon thread (the drill reads it at revert)."""

        def poll() -> None:
            while not self._stop.wait(0.05):
                pid = replacement(source, self.worker.pid, self.before)
                if pid is not None:
                    self.replacement_pid, self.replaced_s = pid, time.monotonic() - self.killed_at
                    return
                if time.monotonic() - self.killed_at > REPLACEMENT_WAIT_S:
                    return

        threading.Thread(target=poll, name="recdrill-replacement-watch", daemon=True).start()


def inject_kill(target: DrillTarget, params: WorkerParams) -> KilledWorker:
    source = target.need_workers("worker-kill")
    before = source.worker_pids()
    killed = KilledWorker(signal_worker(source, "kill", params.worker), before)
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


def inject_freeze(target: DrillTarget, params: WorkerParams) -> ProcessRef:
    return signal_worker(target.need_workers("worker-freeze"), "freeze", params.worker)


def revert_freeze(target: DrillTarget, _: WorkerParams, worker: ProcessRef) -> Observations:
    return {"pid": worker.pid, "revert": continue_worker(worker)}


def enough_workers(target: DrillTarget, _: WorkerParams) -> None:
    """At least two workers: with one there is no supervisor to replace it, and killing it ends the server."""
    usable_workers(target.need_workers("worker-kill"))


def stopped(target: DrillTarget) -> list[str]:
    if target.workers is None:
        return []
    count = stopped_workers(target.workers)
    return [f"{count} worker(s) stopped (SIGSTOP)"] if count else []


register(
    FaultType(
        name="worker-kill",
        kind="infrastructure",
        summary="SIGKILL one serving worker (a Ray Serve replica: see recdrill.serving.runtime.ray_process)",
        params=WorkerParams,
        inject=inject_kill,
        revert=revert_kill,
        needs=frozenset({"workers"}),
        effect="its in-flight requests fail (retried once); the supervisor starts a replacement",
        detected_by=frozenset({"server-errors", "shedding"}),
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
        detected_by=frozenset({"server-errors", "shedding"}),
        leftovers=stopped,
        preflight=enough_workers,
    )
)
