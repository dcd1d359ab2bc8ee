"""Process faults for drills: SIGKILL a serving worker, or SIGSTOP one and SIGCONT it later.

These act on the operating system, not through the HTTP API, so they need the target's worker pids:
a :class:`ServerProcess` started by the caller, or :class:`LocalServer` naming the pid of a running
``recdrill serve --workers N`` (N >= 2: with one worker there is no supervisor to replace it, and
killing it ends the server).

Reverting: a kill leaves nothing to undo (uvicorn's supervisor starts a replacement); a pause is undone
with SIGCONT, which the drill runner sends on schedule and again on every exit path. If the runner
itself dies, a stopped worker stays stopped only until the supervisor's health check gives up on it
(``WORKER_HEALTHCHECK_S``) and replaces it: the supervisor is the pause's TTL. Signals go through
:class:`WorkerRef`, so a worker that was replaced meanwhile is never confused with a new process that
reused its pid.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from typing import Literal, Protocol

from recdrill.errors import RecdrillError
from recdrill.serving.workers import WorkerRef, process_state, worker_pids

ProcessFaultKind = Literal["kill", "pause"]
MIN_WORKERS = 2


class ProcessFaultError(RecdrillError):
    """A process fault could not be injected: no such worker, or too few to fault one safely."""


class WorkerSource(Protocol):
    """Anything that can list the pids of a server's workers (``ServerProcess`` does)."""

    def worker_pids(self) -> list[int]: ...


@dataclass(frozen=True)
class LocalServer:
    """A ``recdrill serve --workers N`` running on this machine, named by its supervisor's pid."""

    pid: int

    def worker_pids(self) -> list[int]:
        return worker_pids(self.pid)


def check_workers(source: WorkerSource) -> list[int]:
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


def inject(source: WorkerSource, kind: ProcessFaultKind, index: int) -> WorkerRef:
    """SIGKILL (``kill``) or SIGSTOP (``pause``) worker ``index`` of the sorted pids; return it.

    Raises:
        ProcessFaultError: too few workers, ``index`` out of range, or the worker vanished.
    """
    pids = check_workers(source)
    if index >= len(pids):
        raise ProcessFaultError(f"worker {index} asked for, but the target has {len(pids)} workers")
    worker = WorkerRef.of(pids[index])
    if not worker.signal(signal.SIGKILL if kind == "kill" else signal.SIGSTOP):
        raise ProcessFaultError(f"worker {worker.pid} exited before it could be signalled")
    return worker


def revert(kind: ProcessFaultKind, worker: WorkerRef) -> str:
    """Undo a fault; returns what happened, for the journal. Safe to call more than once."""
    if kind == "kill":
        return "nothing to undo: the supervisor replaces a killed worker"
    if worker.signal(signal.SIGCONT):
        return "continued"
    return "already gone: the supervisor replaced the stopped worker"


def stopped_workers(source: WorkerSource) -> int:
    """How many of the target's workers are stopped (SIGSTOP): a clean drill leaves none."""
    return sum(process_state(pid) == "T" for pid in source.worker_pids())


def replacement(source: WorkerSource, killed: int, before: list[int]) -> int | None:
    """A worker pid that was not there before the kill, if one runs now."""
    new = set(source.worker_pids()) - set(before) - {killed}
    return min(new) if new else None
