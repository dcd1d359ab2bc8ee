"""Process faults (kill, freeze) on real child processes standing in for a server's workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from recdrill.drills.faults.catalogue import fault_type
from recdrill.drills.faults.process import (
    continue_worker,
    replacement,
    signal_worker,
    stopped_workers,
    usable_workers,
)
from recdrill.drills.target import DrillTarget
from recdrill.errors import ConfigError, FaultUnavailableError, ProcessFaultError
from recdrill.procs import is_stopped
from tests.drills.test_target import Pids
from tests.test_procs import eventually

SLEEP = "import time; time.sleep(60)"


@pytest.fixture
def workers() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Two sleeping children, the 'workers'."""
    children = [subprocess.Popen([sys.executable, "-c", SLEEP]) for _ in range(2)]
    try:
        yield children
    finally:
        for child in children:
            if child.poll() is None:
                os.kill(child.pid, signal.SIGCONT)
                child.kill()
            child.wait()


def pids_of(children: list[subprocess.Popen[bytes]]) -> Pids:
    return Pids(*(c.pid for c in children))


def test_fewer_than_two_workers_cannot_be_faulted(workers: list[subprocess.Popen[bytes]]) -> None:
    with pytest.raises(ProcessFaultError, match=r"at least 2 workers .* found 1: serve with --workers 2"):
        usable_workers(Pids(workers[0].pid))
    assert usable_workers(pids_of(workers)) == sorted(c.pid for c in workers)


def test_a_worker_index_past_the_end_is_refused(workers: list[subprocess.Popen[bytes]]) -> None:
    with pytest.raises(ProcessFaultError, match="worker 2 asked for, but the target has 2 workers"):
        signal_worker(pids_of(workers), "kill", 2)
    assert all(c.poll() is None for c in workers)


def test_kill_signals_the_worker_at_the_index_of_the_sorted_pids(
    workers: list[subprocess.Popen[bytes]],
) -> None:
    by_pid = {c.pid: c for c in workers}
    ref = signal_worker(pids_of(workers), "kill", 1)
    assert ref.pid == max(by_pid)
    assert by_pid[ref.pid].wait(timeout=30) == -signal.SIGKILL
    assert by_pid[min(by_pid)].poll() is None


def test_freeze_stops_the_worker_and_continue_undoes_it_safely_twice(
    workers: list[subprocess.Popen[bytes]],
) -> None:
    source = pids_of(workers)
    ref = signal_worker(source, "freeze", 0)
    eventually(lambda: is_stopped(ref.pid), "the worker stopped")
    assert stopped_workers(source) == 1
    assert continue_worker(ref) == "continued"
    eventually(lambda: not is_stopped(ref.pid), "the worker running again")
    assert stopped_workers(source) == 0
    assert continue_worker(ref) == "continued"  # SIGCONT again is harmless


def test_continuing_a_worker_the_supervisor_replaced_touches_nothing(
    workers: list[subprocess.Popen[bytes]],
) -> None:
    ref = signal_worker(pids_of(workers), "freeze", 0)
    frozen = next(c for c in workers if c.pid == ref.pid)
    frozen.kill()
    frozen.wait()
    assert continue_worker(ref) == "already gone: the supervisor replaced the stopped worker"


def test_a_worker_that_vanished_is_a_process_fault(workers: list[subprocess.Popen[bytes]]) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    source = Pids(gone.pid, workers[0].pid)  # still listed, but no process by that pid any more
    with pytest.raises(ProcessFaultError, match=f"worker {gone.pid}"):
        signal_worker(source, "kill", source.worker_pids().index(gone.pid))


def test_replacement_is_a_new_pid_that_was_not_there_before() -> None:
    assert replacement(Pids(11, 12), killed=10, before=[10, 11]) == 12
    assert replacement(Pids(11, 12, 13), killed=10, before=[10, 11]) == 12  # the lowest new one
    assert replacement(Pids(11), killed=10, before=[10, 11]) is None
    assert replacement(Pids(10, 11), killed=10, before=[11]) is None  # the killed pid is no replacement


def test_worker_freeze_from_the_catalogue_is_a_leftover_until_reverted(
    workers: list[subprocess.Popen[bytes]],
) -> None:
    ftype = fault_type("worker-freeze")
    target = DrillTarget("http://127.0.0.1:9", "key", workers=pids_of(workers))
    params = ftype.parse({"worker": 1})
    assert ftype.preflight is not None and ftype.leftovers is not None
    ftype.preflight(target, params)
    ref = ftype.inject(target, params)
    eventually(lambda: is_stopped(ref.pid), "the worker stopped")
    assert ftype.leftovers(target) == ["1 worker(s) stopped (SIGSTOP)"]
    assert ftype.revert(target, params, ref) == {"pid": ref.pid, "revert": "continued"}
    eventually(lambda: not ftype.leftovers(target), "no stopped worker left")  # type: ignore[misc]
    assert ftype.leftovers(DrillTarget("http://127.0.0.1:9", "key")) == []  # no workers known: none


def test_worker_kill_from_the_catalogue_reports_the_replacement(
    workers: list[subprocess.Popen[bytes]],
) -> None:
    ftype = fault_type("worker-kill")
    source = pids_of(workers)
    target = DrillTarget("http://127.0.0.1:9", "key", workers=source)
    params = ftype.parse({})
    killed = ftype.inject(target, params)
    victim = next(c for c in workers if c.pid == killed.worker.pid)
    assert victim.wait(timeout=30) == -signal.SIGKILL
    newcomer = subprocess.Popen([sys.executable, "-c", SLEEP])
    workers.append(newcomer)  # the fixture kills it too
    source.pids = [p for p in source.pids if p != victim.pid] + [newcomer.pid]  # the supervisor's doing
    observed = ftype.revert(target, params, killed)
    assert observed is not None
    assert (observed["pid"], observed["replacement_pid"]) == (victim.pid, newcomer.pid)
    assert observed["replaced_s"] >= 0


def test_process_faults_need_workers_and_at_least_two(workers: list[subprocess.Popen[bytes]]) -> None:
    for name in ("worker-kill", "worker-freeze"):
        ftype = fault_type(name)
        assert ftype.preflight is not None
        with pytest.raises(FaultUnavailableError, match="needs the server's worker pids"):
            ftype.preflight(DrillTarget("http://x", "k"), ftype.parse({}))
        with pytest.raises(ProcessFaultError, match="found 1"):
            ftype.preflight(DrillTarget("http://x", "k", workers=Pids(workers[0].pid)), ftype.parse({}))
        with pytest.raises(ConfigError, match=f"fault '{name}': worker: Input should be less than or equal"):
            ftype.parse({"worker": 1024})
