"""recdrill.procs on real child processes: refs, stopped and zombie states, CPU, workers, environ."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import psutil
import pytest

from recdrill.errors import ProcessGoneError
from recdrill.procs import (
    SPAWNED_WORKER_FLAG,
    ProcessRef,
    command_line,
    cpu_seconds,
    descendants,
    environ,
    is_running,
    is_stopped,
    mem_available_mib,
    start_time,
    stop_processes,
    wait_for_workers,
    worker_pids,
)

SLEEP = "import time; time.sleep(60)"
GONE_PID = 2**22 + 1  # above any pid_max: never a process


def eventually(condition: Callable[[], bool], what: str, timeout_s: float = 20.0) -> None:
    """Wait for a state change the kernel makes asynchronously (a signal being delivered)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"never: {what}")
        time.sleep(0.02)


@contextmanager
def child(
    code: str = SLEEP, *args: str, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen([sys.executable, "-c", code, *args], env=env)
    try:
        yield process
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGCONT)  # a stopped child must run to die of SIGKILL promptly
            process.kill()
        process.wait()


# A parent that starts a spawned-worker look-alike, a plain helper (as the resource tracker is) and
# a worker look-alike that exits at once (left a zombie: the parent never reaps it), then prints
# their pids and sleeps.
SUPERVISOR = f"""
import subprocess, sys, time
sleep = {SLEEP!r}
worker = subprocess.Popen([sys.executable, "-c", sleep, {SPAWNED_WORKER_FLAG!r}])
helper = subprocess.Popen([sys.executable, "-c", sleep])
dead = subprocess.Popen([sys.executable, "-c", "pass", {SPAWNED_WORKER_FLAG!r}])
print(worker.pid, helper.pid, dead.pid, flush=True)
time.sleep(60)
"""


@pytest.fixture
def supervisor() -> Iterator[tuple[int, int, int, int]]:
    """(supervisor pid, worker pid, helper pid, zombie worker pid)."""
    process = subprocess.Popen([sys.executable, "-c", SUPERVISOR], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    pids = [int(p) for p in process.stdout.readline().split()]
    try:
        worker, helper, dead = pids
        eventually(lambda: not is_running(dead), "the worker look-alike that exits is a zombie")
        yield process.pid, worker, helper, dead
    finally:
        for pid in pids[:2]:  # the third exited already (a zombie until its parent goes)
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        process.kill()
        process.wait()
        process.stdout.close()


# -- ProcessRef ---------------------------------------------------------------------------------------


def test_a_ref_names_a_live_process_and_signals_it() -> None:
    with child() as process:
        ref = ProcessRef.of(process.pid)
        assert ref.pid == process.pid and ref.started == start_time(process.pid)
        assert ref.alive()
        assert ref.signal(signal.SIGTERM) is True
        assert process.wait(timeout=30) == -signal.SIGTERM


def test_a_ref_refuses_to_signal_a_process_that_exited() -> None:
    with child() as process:
        ref = ProcessRef.of(process.pid)
        process.kill()
        process.wait()
        assert not ref.alive()
        assert ref.signal(signal.SIGKILL) is False


def test_a_ref_refuses_to_signal_a_process_that_reused_its_pid() -> None:
    with child() as process:
        stale = ProcessRef(process.pid, ProcessRef.of(process.pid).started - 10.0)  # an older owner's
        assert not stale.alive()
        assert stale.signal(signal.SIGKILL) is False
        time.sleep(0.1)
        assert process.poll() is None  # the new owner of the pid was left alone


def test_of_a_pid_without_a_process_raises_process_gone() -> None:
    with pytest.raises(ProcessGoneError, match=f"no process {GONE_PID}"):
        ProcessRef.of(GONE_PID)


# -- states and times ---------------------------------------------------------------------------------


def test_is_stopped_after_sigstop_and_not_after_sigcont() -> None:
    with child() as process:
        assert not is_stopped(process.pid)
        os.kill(process.pid, signal.SIGSTOP)
        eventually(lambda: is_stopped(process.pid), "stopped after SIGSTOP")
        assert is_running(process.pid)  # stopped is not gone
        os.kill(process.pid, signal.SIGCONT)
        eventually(lambda: not is_stopped(process.pid), "running again after SIGCONT")


def test_a_zombie_is_not_running_but_keeps_its_cpu_time() -> None:
    process = subprocess.Popen([sys.executable, "-c", "sum(range(10**6))"])
    try:
        eventually(lambda: psutil.Process(process.pid).status() == psutil.STATUS_ZOMBIE, "a zombie")
        assert not is_running(process.pid)
        assert not ProcessRef(process.pid, psutil.Process(process.pid).create_time()).alive()
        seconds = cpu_seconds(process.pid)
        assert seconds is not None and seconds > 0
    finally:
        process.wait()
    assert not is_running(process.pid) and cpu_seconds(process.pid) is None  # reaped: gone


def test_cpu_seconds_grow_for_a_busy_child() -> None:
    with child("while True: pass") as process:
        first = cpu_seconds(process.pid)
        assert first is not None
        eventually(lambda: (cpu_seconds(process.pid) or 0.0) > first + 0.05, "CPU time growing")


def test_a_gone_pid_has_no_state_time_children_or_command_line() -> None:
    assert not is_running(GONE_PID) and not is_stopped(GONE_PID)
    assert start_time(GONE_PID) is None and cpu_seconds(GONE_PID) is None
    assert environ(GONE_PID) is None
    assert descendants(GONE_PID) == [] and worker_pids(GONE_PID) == [] and command_line(GONE_PID) == []


def test_environ_reads_the_environment_a_child_was_started_with() -> None:
    env = {**os.environ, "RECDRILL_PROBE_VALUE": "blue=green"}
    with child(SLEEP, env=env) as process:
        eventually(lambda: "RECDRILL_PROBE_VALUE" in (environ(process.pid) or {}), "environment readable")
        seen = environ(process.pid)
        assert seen is not None and seen["RECDRILL_PROBE_VALUE"] == "blue=green"
        assert command_line(process.pid) == [sys.executable, "-c", SLEEP]


def test_mem_available_is_a_share_of_the_machines_memory() -> None:
    available = mem_available_mib()
    assert available is not None
    assert 0 < available <= psutil.virtual_memory().total // (1024 * 1024)


# -- workers and descendants ------------------------------------------------------------------------


def test_worker_pids_are_only_the_live_children_with_the_spawn_flag(
    supervisor: tuple[int, int, int, int],
) -> None:
    parent, worker, helper, dead = supervisor
    assert not is_running(dead)  # a zombie child with the flag is no worker
    assert worker_pids(parent) == [worker]
    assert {worker, helper} <= set(descendants(parent))
    assert descendants(parent) == sorted(descendants(parent))
    assert worker_pids(worker) == [] and descendants(worker) == []


def test_descendants_reach_grandchildren() -> None:
    code = (
        "import subprocess, sys, time; "
        f"p = subprocess.Popen([sys.executable, '-c', {SUPERVISOR!r}], stdout=subprocess.PIPE, text=True); "
        "print(p.pid, p.stdout.readline().strip(), flush=True); time.sleep(60)"
    )
    top = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert top.stdout is not None
    pids = [int(p) for p in top.stdout.readline().split()]
    try:
        middle, worker, helper, dead = pids
        eventually(lambda: not is_running(dead), "the worker look-alike that exits is a zombie")
        assert {middle, worker, helper} <= set(descendants(top.pid))
        assert worker_pids(top.pid) == []  # the worker is a grandchild, not a child
        assert worker_pids(middle) == [worker]
    finally:
        for pid in (pids[1], pids[2], pids[0]):  # the workers, then their parent (never the zombie)
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        top.kill()
        top.wait()
        top.stdout.close()


def test_wait_for_workers_returns_them_once_there(supervisor: tuple[int, int, int, int]) -> None:
    parent, worker, _, _ = supervisor
    assert wait_for_workers(parent, 1, timeout_s=20.0) == [worker]


def test_wait_for_workers_raises_process_gone_on_timeout(supervisor: tuple[int, int, int, int]) -> None:
    parent, worker, _, _ = supervisor
    with pytest.raises(ProcessGoneError, match=rf"expected 2 workers under pid {parent}, found \[{worker}\]"):
        wait_for_workers(parent, 2, timeout_s=0.1)
    with pytest.raises(ProcessGoneError, match="expected 1 workers"):  # the one there is excluded
        wait_for_workers(parent, 1, timeout_s=0.1, without=frozenset({worker}))


def ignores_sigterm(pid: int) -> bool:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigIgn:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)))
    return False


def test_stop_processes_ends_the_live_ones_and_leaves_a_reused_pid_alone() -> None:
    with (
        child() as stubborn,
        child("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)") as deaf,
    ):
        refs = [ProcessRef.of(stubborn.pid), ProcessRef.of(deaf.pid)]
        os.kill(stubborn.pid, signal.SIGSTOP)  # stopped: it must be continued to act on SIGTERM
        eventually(lambda: is_stopped(stubborn.pid), "the child stopped")
        impostor = ProcessRef(os.getpid(), 0.0)  # this process's pid under another start time
        eventually(lambda: ignores_sigterm(deaf.pid), "the deaf child ignores SIGTERM")
        assert stop_processes([*refs, impostor], timeout_s=1.0) == [stubborn.pid, deaf.pid]
        assert stubborn.wait(10) == -signal.SIGTERM
        assert deaf.wait(10) == -signal.SIGKILL  # it ignored SIGTERM: killed after the timeout
    assert stop_processes(refs) == []  # gone: nothing to stop
