"""Host faults: CPU hog and memory pressure on this machine, next to a local deployment.

Each starts child Python processes (``sys.executable -I -c ...``) that burn CPU or hold touched
memory. They compete with the server at normal priority (a niced hog would only use idle cores
and show nothing), and they end by themselves: after ``ttl_s``, or as soon as the drill process
that started them is gone (they watch their parent pid), so a dead drill leaves nothing behind.
Revert kills and reaps them and reports what they consumed. ``needs: local``: pressure on this
host matters only when the deployment runs here.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from pydantic import Field

from recdrill.drills.faults.catalogue import FaultParams, FaultType, Observations, register
from recdrill.drills.target import DrillTarget
from recdrill.errors import FaultRefusedError
from recdrill.procs import cpu_seconds, is_running, mem_available_mib

MAX_MEMORY_SHARE = 0.8  # of MemAvailable: leave the server (and the machine) room to live
READY_TIMEOUT_S = 30.0  # plus 1 s per 100 MiB to touch

# Busy-loop until the TTL or until the parent is gone (checked every 0.1 s: cheap, and prompt).
HOG_CODE = """
import os, sys, time
ttl, parent = float(sys.argv[1]), int(sys.argv[2])
end = time.monotonic() + ttl
check = 0.0
while True:
    now = time.monotonic()
    if now >= end:
        break
    if now >= check:
        if os.getppid() != parent:
            break
        check = now + 0.1
"""

# Allocate and write one byte per page, so every page is resident (not just reserved), then hold.
MEMORY_CODE = """
import mmap, os, sys, time
ttl, parent, mib = float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
end = time.monotonic() + ttl
block = bytearray(mib << 20)
for offset in range(0, len(block), mmap.PAGESIZE):
    block[offset] = 1
sys.stdout.write("ready\\n")
sys.stdout.flush()
while time.monotonic() < end and os.getppid() == parent:
    time.sleep(0.1)
"""


class CpuHogParams(FaultParams):
    # 0 rather than None for "one per CPU": an optional int would hide its bounds from ``drill list``.
    processes: int = Field(0, ge=0, le=256, description="busy processes; 0: one per CPU")
    ttl_s: float = Field(600.0, gt=0, le=3600, description="each process exits by itself after this")


class MemoryParams(FaultParams):
    mib: int = Field(
        512,
        ge=1,
        le=8192,
        description=f"memory held and touched; at most {MAX_MEMORY_SHARE:.0%} of MemAvailable",
    )
    ttl_s: float = Field(600.0, gt=0, le=3600, description="the process exits by itself after this")


@dataclass
class HostFaultProcesses:
    """The child processes of one injected host fault."""

    fault: str
    procs: list[subprocess.Popen[bytes]]
    started: float = field(default_factory=time.monotonic)
    result: dict[str, float | int | None] | None = None  # set by the first revert

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]


# Every child this module started and has not reaped: leftovers() names the live ones.
_CHILDREN: list[HostFaultProcesses] = []
_LOCK = threading.Lock()


def _spawn(code: str, *args: object, stdout: int = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-I", "-c", code, *(str(a) for a in args)],
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=subprocess.DEVNULL,
    )


def _track(children: HostFaultProcesses) -> HostFaultProcesses:
    with _LOCK:
        _CHILDREN.append(children)
    return children


def _reap(children: HostFaultProcesses) -> tuple[float | None, float]:
    """Kill and reap every child; their total CPU seconds (None where unreadable) and time alive."""
    total: float | None = 0.0
    for proc in children.procs:
        used = cpu_seconds(proc.pid) if proc.returncode is None else None  # read before reaping
        total = None if total is None or used is None else total + used
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGKILL)
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    with _LOCK:
        if children in _CHILDREN:
            _CHILDREN.remove(children)
    return total, time.monotonic() - children.started


def inject_cpu_hog(target: DrillTarget, params: CpuHogParams) -> HostFaultProcesses:
    target.need_local("cpu-hog")
    count = params.processes or os.cpu_count() or 1
    procs: list[subprocess.Popen[bytes]] = []
    children = _track(HostFaultProcesses("cpu-hog", procs))
    try:
        for _ in range(count):
            procs.append(_spawn(HOG_CODE, params.ttl_s, os.getpid()))
    except OSError:
        _reap(children)  # no half-started hog: revert is never called for a failed inject
        raise
    return children


def revert_cpu_hog(_: DrillTarget, __: CpuHogParams, children: HostFaultProcesses) -> Observations:
    if children.result is None:
        cpu_s, alive_s = _reap(children)
        children.result = {
            "processes": len(children.procs),
            "cpu_s": None if cpu_s is None else round(cpu_s, 2),
            "alive_s": round(alive_s, 2),
        }
    return dict(children.result)


def memory_refusal(mib: int, available_mib: int | None) -> str | None:
    """Why holding ``mib`` MiB is refused on a host with ``available_mib`` available; None if fine."""
    if available_mib is None or mib <= MAX_MEMORY_SHARE * available_mib:
        return None
    return (
        f"memory-pressure: mib={mib} is more than {MAX_MEMORY_SHARE:.0%} of this host's available "
        f"memory ({available_mib} MiB); ask for at most {int(MAX_MEMORY_SHARE * available_mib)}"
    )


def inject_memory(target: DrillTarget, params: MemoryParams) -> HostFaultProcesses:
    target.need_local("memory-pressure")
    refusal = memory_refusal(params.mib, mem_available_mib())
    if refusal:
        raise FaultRefusedError(refusal)
    proc = _spawn(MEMORY_CODE, params.ttl_s, os.getpid(), params.mib, stdout=subprocess.PIPE)
    children = _track(HostFaultProcesses("memory-pressure", [proc]))
    # Return only once the memory is resident: the drill times the fault from here.
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], READY_TIMEOUT_S + params.mib / 100)
    line = proc.stdout.readline() if ready else b""
    if line.strip() != b"ready":
        _reap(children)
        raise FaultRefusedError(
            f"memory-pressure: the child holding {params.mib} MiB did not get ready "
            f"(exit code {proc.returncode}; out of memory, or a memory limit?)"
        )
    return children


def revert_memory(target: DrillTarget, params: MemoryParams, children: HostFaultProcesses) -> Observations:
    if children.result is None:
        _, alive_s = _reap(children)
        children.result = {"processes": len(children.procs), "mib": params.mib, "alive_s": round(alive_s, 2)}
    return dict(children.result)


def _live(fault: str) -> list[str]:
    with _LOCK:
        owned = [c for c in _CHILDREN if c.fault == fault]
    live = [p.pid for c in owned for p in c.procs if is_running(p.pid)]
    return [f"{fault} process {pid}" for pid in live]


def cpu_hog_leftovers(_: DrillTarget) -> list[str]:
    return _live("cpu-hog")


def memory_leftovers(_: DrillTarget) -> list[str]:
    return _live("memory-pressure")


register(
    FaultType(
        name="cpu-hog",
        kind="infrastructure",
        summary="busy-looping processes (one per CPU by default) compete with the server for CPU",
        params=CpuHogParams,
        inject=inject_cpu_hog,
        revert=revert_cpu_hog,
        needs=frozenset({"local"}),
        effect="server latency rises (queueing for CPU); deadlines push more requests to fallback tiers",
        detected_by=frozenset({"server-errors", "shedding"}),
        leftovers=cpu_hog_leftovers,
    )
)
register(
    FaultType(
        name="memory-pressure",
        kind="infrastructure",
        summary="a process holds mib MiB of touched memory",
        params=MemoryParams,
        inject=inject_memory,
        revert=revert_memory,
        needs=frozenset({"local"}),
        effect="less memory for the server and page cache; past the host's limit, the OOM killer acts",
        detected_by=frozenset({"server-errors", "shedding"}),
        leftovers=memory_leftovers,
    )
)
