"""The worker processes of a multi-worker ``recdrill serve``, found through ``/proc`` (Linux).

uvicorn's supervisor starts each worker with multiprocessing's *spawn* method, so a worker is a child
of the supervisor whose command line ends in ``--multiprocessing-fork``; the supervisor's other child,
multiprocessing's resource tracker, is not a worker. A pid alone can be reused by an unrelated
process once its owner dies, so signals aimed at a worker go through :class:`WorkerRef`, which also
remembers the process's start time and refuses to signal a different process with the same pid.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

from recdrill.errors import RecdrillError

PROC = Path("/proc")
SPAWNED_WORKER_FLAG = b"--multiprocessing-fork"


class WorkerError(RecdrillError):
    """A worker could not be found or signalled."""


def _stat_fields(pid: int) -> list[str] | None:
    """``/proc/PID/stat`` after the command name (which may hold spaces and parentheses)."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return text[text.rindex(")") + 2 :].split()


def process_state(pid: int) -> str | None:
    """One letter (``R`` running, ``S`` sleeping, ``T`` stopped, ``Z`` zombie...), or None if gone."""
    fields = _stat_fields(pid)
    return None if fields is None else fields[0]


def start_ticks(pid: int) -> int | None:
    """When the process started (clock ticks since boot): with the pid, a unique name for it."""
    fields = _stat_fields(pid)
    return None if fields is None else int(fields[19])


def worker_pids(supervisor_pid: int) -> list[int]:
    """Pids of the live (not zombie) spawned workers under ``supervisor_pid``, sorted."""
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is None or int(fields[1]) != supervisor_pid or fields[0] == "Z":
            continue
        with contextlib.suppress(FileNotFoundError, ProcessLookupError, PermissionError):
            if SPAWNED_WORKER_FLAG in (entry / "cmdline").read_bytes().split(b"\0"):
                found.append(int(entry.name))
    return sorted(found)


def wait_for_workers(
    supervisor_pid: int, count: int, timeout_s: float, *, without: frozenset[int] = frozenset()
) -> list[int]:
    """Wait until ``count`` workers run, none of them in ``without``; return their pids.

    Raises:
        WorkerError: not so after ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        pids = worker_pids(supervisor_pid)
        if len(pids) == count and not without.intersection(pids):
            return pids
        if time.monotonic() > deadline:
            raise WorkerError(f"expected {count} workers under pid {supervisor_pid}, found {pids}")
        time.sleep(0.05)


@dataclass(frozen=True)
class WorkerRef:
    """A process named by pid *and* start time, so a recycled pid is never signalled by mistake."""

    pid: int
    started: int

    @classmethod
    def of(cls, pid: int) -> WorkerRef:
        started = start_ticks(pid)
        if started is None:
            raise WorkerError(f"no process {pid}")
        return cls(pid, started)

    def alive(self) -> bool:
        return start_ticks(self.pid) == self.started and process_state(self.pid) not in (None, "Z")

    def signal(self, signum: int) -> bool:
        """Send ``signum``; False (nothing sent) when the process is gone or its pid was reused."""
        if not self.alive():
            return False
        try:
            os.kill(self.pid, signum)
        except ProcessLookupError:
            return False
        return True
