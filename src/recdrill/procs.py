"""Processes on this machine, through psutil: named by pid and start time, their state, children,
CPU time and environment, and the host's available memory.

Serving (its supervisor and workers) and drills (process and host faults, the cleanliness check)
both need these; neither owns them, so they live here, below both. A pid alone can be reused by an
unrelated process once its owner dies, so signals go through :class:`ProcessRef`, which remembers
the process's start time and refuses to signal a different process that got the same pid.

uvicorn's supervisor starts each worker with multiprocessing's *spawn* method, so a worker is a child
of the supervisor whose command line holds ``--multiprocessing-fork``; the supervisor's other child,
multiprocessing's resource tracker, is not a worker (:func:`worker_pids`).

Example:
    >>> import os
    >>> me = ProcessRef.of(os.getpid())
    >>> me.alive(), is_stopped(me.pid), cpu_seconds(me.pid) > 0
    (True, False, True)
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass

import psutil

from recdrill.errors import ProcessGoneError

SPAWNED_WORKER_FLAG = "--multiprocessing-fork"
_GONE = (psutil.NoSuchProcess, psutil.AccessDenied, ProcessLookupError, PermissionError)


def _process(pid: int) -> psutil.Process | None:
    try:
        return psutil.Process(pid)
    except _GONE:
        return None


def _status(pid: int) -> str | None:
    process = _process(pid)
    if process is None:
        return None
    try:
        status: str = process.status()
    except _GONE:
        return None
    return status


def is_stopped(pid: int) -> bool:
    """Stopped by SIGSTOP (or a debugger), as a frozen worker is."""
    return _status(pid) in (psutil.STATUS_STOPPED, psutil.STATUS_TRACING_STOP)


def is_running(pid: int) -> bool:
    """Alive and not a zombie. Does not reap a child, so its CPU time stays readable."""
    return _status(pid) not in (None, psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)


def start_time(pid: int) -> float | None:
    """When the process started (seconds since the epoch): with the pid, a unique name for it."""
    process = _process(pid)
    if process is None:
        return None
    try:
        started: float = process.create_time()
    except _GONE:
        return None
    return started


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time of a live or zombie process; None when it is gone."""
    process = _process(pid)
    if process is None:
        return None
    try:
        times = process.cpu_times()
    except _GONE:
        return None
    return float(times.user + times.system)


def environ(pid: int) -> dict[str, str] | None:
    """The environment the process was started with; None when gone or not ours to read."""
    process = _process(pid)
    if process is None:
        return None
    try:
        return dict(process.environ())
    except _GONE:
        return None


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, their children, ...), sorted; empty when it is gone."""
    process = _process(pid)
    if process is None:
        return []
    try:
        return sorted(child.pid for child in process.children(recursive=True))
    except _GONE:
        return []


def command_line(pid: int) -> list[str]:
    """The process's arguments (``argv``); empty when gone or not readable."""
    process = _process(pid)
    if process is None:
        return []
    try:
        return list(process.cmdline())
    except _GONE:
        return []


def worker_pids(supervisor_pid: int) -> list[int]:
    """Pids of the live (not zombie) spawned workers directly under ``supervisor_pid``, sorted."""
    supervisor = _process(supervisor_pid)
    if supervisor is None:
        return []
    try:
        children = supervisor.children()
    except _GONE:
        return []
    return sorted(
        child.pid
        for child in children
        if is_running(child.pid) and SPAWNED_WORKER_FLAG in command_line(child.pid)
    )


def wait_for_workers(
    supervisor_pid: int, count: int, timeout_s: float, *, without: frozenset[int] = frozenset()
) -> list[int]:
    """Wait until ``count`` workers run under ``supervisor_pid``, none of them in ``without``.

    Raises:
        ProcessGoneError: not so after ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        pids = worker_pids(supervisor_pid)
        if len(pids) == count and not without.intersection(pids):
            return pids
        if time.monotonic() > deadline:
            raise ProcessGoneError(f"expected {count} workers under pid {supervisor_pid}, found {pids}")
        time.sleep(0.05)


def mem_available_mib() -> int | None:
    """Memory available to new processes without swapping (``MemAvailable``), in MiB."""
    try:
        return int(psutil.virtual_memory().available) // (1024 * 1024)
    except (OSError, RuntimeError):
        return None


@dataclass(frozen=True)
class ProcessRef:
    """A process named by pid *and* start time, so a recycled pid is never signalled by mistake."""

    pid: int
    started: float

    @classmethod
    def of(cls, pid: int) -> ProcessRef:
        """The process running as ``pid`` now.

        Raises:
            ProcessGoneError: there is none.
        """
        started = start_time(pid)
        if started is None:
            raise ProcessGoneError(f"no process {pid}")
        return cls(pid, started)

    def alive(self) -> bool:
        """Still the same process, and not a zombie."""
        return start_time(self.pid) == self.started and is_running(self.pid)

    def signal(self, signum: int) -> bool:
        """Send ``signum``; False (nothing sent) when the process is gone or its pid was reused."""
        if not self.alive():
            return False
        try:
            os.kill(self.pid, signum)
        except ProcessLookupError:
            return False
        return True


def stop_processes(refs: list[ProcessRef], timeout_s: float = 5.0) -> list[int]:
    """SIGTERM every process of ``refs`` still alive, then SIGKILL those still alive after
    ``timeout_s``; the pids that were alive (a pid reused by another process is left alone).

    A SIGCONT goes with the SIGTERM: a stopped process (a frozen worker) acts on neither until it runs.
    """
    alive = [ref for ref in refs if ref.alive()]
    for ref in alive:
        ref.signal(signal.SIGTERM)
        ref.signal(signal.SIGCONT)
    deadline = time.monotonic() + timeout_s
    while any(ref.alive() for ref in alive) and time.monotonic() < deadline:
        time.sleep(0.05)
    for ref in alive:
        ref.signal(signal.SIGKILL)  # refused (False) by a ref that has gone meanwhile
    return [ref.pid for ref in alive]
