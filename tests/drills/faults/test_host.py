"""Host faults on this machine next to a live server: the CPU hog's children really burn CPU, the
memory child really holds its pages, both end by themselves after ttl_s, and revert reaps them."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from recdrill.cli import main
from recdrill.drills.faults.catalogue import fault_type
from recdrill.drills.faults.host import HostFaultProcesses, memory_refusal
from recdrill.drills.target import DrillTarget
from recdrill.errors import ConfigError, FaultRefusedError, FaultUnavailableError
from recdrill.procs import cpu_seconds, mem_available_mib
from recdrill.serving.runtime.local_process import ServerProcess

DATA = "shopsim:n_items=600,n_users=500,n_events=10000"
KEY = "host-fault-key"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    model = tmp_path_factory.mktemp("host") / "model"
    assert main(["train", "--data", DATA, "--model", "itemknn", "--out", str(model)]) == 0
    with ServerProcess(model, model.parent / "state", admin_key=KEY) as running:
        yield running


@pytest.fixture
def target(server: ServerProcess) -> DrillTarget:
    return DrillTarget(server.url, KEY, local=True)


def gone(pid: int) -> bool:
    return not Path(f"/proc/{pid}").exists()


def wait_until(check: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def test_cpu_hog_children_burn_cpu_and_revert_reaps_them(target: DrillTarget) -> None:
    fault = fault_type("cpu-hog")
    params = fault.parse({"processes": 2, "ttl_s": 60})
    handle = fault.inject(target, params)
    assert isinstance(handle, HostFaultProcesses) and len(handle.pids) == 2
    assert fault.leftovers is not None and len(fault.leftovers(target)) == 2
    # The machine is shared (and tests run niced, which the children inherit): wait for a clear
    # amount of CPU rather than assume a share of it.
    assert wait_until(lambda: sum(cpu_seconds(p) or 0 for p in handle.pids) >= 0.5, 30), "hog used no CPU"
    # The server still answers while it competes for CPU.
    assert httpx.get(target.base_url + "/healthz", timeout=30).status_code == 200
    observed = fault.revert(target, params, handle)
    assert observed is not None and observed["processes"] == 2
    assert observed["cpu_s"] >= 0.5 and observed["alive_s"] > 0
    assert all(gone(pid) for pid in handle.pids)  # killed and reaped: not even a zombie
    assert fault.leftovers(target) == []
    assert fault.revert(target, params, handle) == observed  # a second revert changes nothing


def test_cpu_hog_defaults_to_one_process_per_cpu_and_exits_after_its_ttl(target: DrillTarget) -> None:
    fault = fault_type("cpu-hog")
    params = fault.parse({"ttl_s": 0.5})
    handle = fault.inject(target, params)
    assert len(handle.pids) == (os.cpu_count() or 1)
    leftovers = fault.leftovers
    assert leftovers is not None
    assert wait_until(lambda: leftovers(target) == [], 20), "children outlived ttl_s"
    observed = fault.revert(target, params, handle)
    assert observed is not None and observed["processes"] == len(handle.pids)
    assert all(gone(pid) for pid in handle.pids)


def test_memory_pressure_holds_resident_memory_until_reverted(target: DrillTarget) -> None:
    fault = fault_type("memory-pressure")
    params = fault.parse({"mib": 64, "ttl_s": 60})
    handle = fault.inject(target, params)  # returns once the pages are touched
    (pid,) = handle.pids
    assert rss_mib(pid) >= 0.9 * 64
    assert fault.leftovers is not None and fault.leftovers(target) == [f"memory-pressure process {pid}"]
    observed = fault.revert(target, params, handle)
    assert observed is not None and (observed["processes"], observed["mib"]) == (1, 64)
    assert gone(pid) and fault.leftovers(target) == []


def test_memory_pressure_exits_after_its_ttl(target: DrillTarget) -> None:
    fault = fault_type("memory-pressure")
    params = fault.parse({"mib": 16, "ttl_s": 0.5})
    handle = fault.inject(target, params)
    leftovers = fault.leftovers
    assert leftovers is not None
    assert wait_until(lambda: leftovers(target) == [], 20), "child outlived ttl_s"
    fault.revert(target, params, handle)
    assert gone(handle.pids[0])


def test_memory_pressure_refuses_more_than_the_host_can_spare(target: DrillTarget) -> None:
    assert memory_refusal(800, 1000) is None
    refusal = memory_refusal(801, 1000)
    assert refusal is not None and "80% of this host's available memory (1000 MiB)" in refusal
    assert "at most 800" in refusal
    available = mem_available_mib()
    assert available is not None and available > 0
    fault = fault_type("memory-pressure")
    if available < 8192 / 0.8:  # this host cannot spare the maximum: the fault says so
        with pytest.raises(FaultRefusedError, match="available memory"):
            fault.inject(target, fault.parse({"mib": 8192}))
    with pytest.raises(ConfigError, match=r"memory-pressure.*mib"):
        fault.parse({"mib": 100_000})
    assert fault.leftovers is not None and fault.leftovers(target) == []


def test_host_faults_need_a_local_deployment(server: ServerProcess) -> None:
    remote = DrillTarget(server.url, KEY)
    for name in ("cpu-hog", "memory-pressure"):
        fault = fault_type(name)
        assert fault.kind == "infrastructure" and fault.needs == frozenset({"local"})
        with pytest.raises(FaultUnavailableError, match="on this machine"):
            fault.inject(remote, fault.parse({"ttl_s": 1}))
    with pytest.raises(ConfigError, match=r"cpu-hog.*processes"):
        fault_type("cpu-hog").parse({"processes": 257})
