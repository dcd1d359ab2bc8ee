"""The Chaos Toolkit actions against a live server: inject, revert by id, revert all, clear errors."""

from __future__ import annotations

import pytest

from recdrill.chaos import actions
from recdrill.chaos.probes import active_faults
from recdrill.errors import ConfigError, FaultUnavailableError
from recdrill.serving.runtime.local_process import ServerProcess
from tests.chaos.conftest import server_faults


def test_inject_then_revert_by_id(server: ServerProcess) -> None:
    injected = actions.inject_fault(
        "ranker-latency", {"latency_ms": 150, "ttl_s": 60}, base_url=server.url, fault_id="slow"
    )
    assert injected == {
        "fault_id": "slow",
        "name": "ranker-latency",
        "params": {"rate": 1.0, "ttl_s": 60.0, "latency_ms": 150.0},
    }
    (held,) = server_faults(server.url)
    assert (held["point"], held["kind"], held["latency_ms"]) == ("ranker", "latency", 150.0)
    assert actions.active_fault_ids() == ["slow"]

    reverted = actions.revert_fault("slow")
    assert (reverted["reverted"], reverted["name"]) == (True, "ranker-latency")
    assert reverted["active_s"] >= 0
    assert server_faults(server.url) == []
    assert actions.active_fault_ids() == []
    again = actions.revert_fault("slow")  # a rollback after a revert is harmless
    assert again["reverted"] is False and "no active fault 'slow'" in again["note"]


def test_revert_all_removes_every_fault_this_process_holds(server: ServerProcess) -> None:
    first = actions.inject_fault("ranker-error", {"rate": 0.5}, base_url=server.url)
    second = actions.inject_fault("fallback-nan", base_url=server.url)
    assert first["fault_id"].startswith("ranker-error-") and first["fault_id"] != second["fault_id"]
    assert active_faults(server.url) == 2
    result = actions.revert_all()
    assert result["reverted"] == [second["fault_id"], first["fault_id"]]  # newest first
    assert server_faults(server.url) == [] and active_faults(server.url) == 0
    assert actions.revert_all() == {"reverted": [], "faults": {}}


def test_a_fault_id_in_use_is_refused(server: ServerProcess) -> None:
    actions.inject_fault("ranker-nan", base_url=server.url, fault_id="nan")
    try:
        with pytest.raises(ConfigError, match="fault id 'nan' is still active"):
            actions.inject_fault("ranker-nan", base_url=server.url, fault_id="nan")
        assert len(server_faults(server.url)) == 1  # the refused second one injected nothing
    finally:
        actions.revert_fault("nan")


def test_bad_requests_fail_before_anything_is_injected(
    server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError, match="no fault named 'ranker-slowness'"):
        actions.inject_fault("ranker-slowness", base_url=server.url)
    with pytest.raises(ConfigError, match="fault 'ranker-latency': latency_ms"):
        actions.inject_fault("ranker-latency", {"latency_ms": -5}, base_url=server.url)
    with pytest.raises(ConfigError, match="base_url must be an http"):
        actions.inject_fault("ranker-latency", base_url="127.0.0.1:8000")
    # Process faults need the server's pid: said before anything is signalled.
    with pytest.raises(FaultUnavailableError, match="worker-kill"):
        actions.inject_fault("worker-kill", base_url=server.url)
    monkeypatch.delenv("RECDRILL_ADMIN_KEY")
    with pytest.raises(ConfigError, match="RECDRILL_ADMIN_KEY holds no admin key"):
        actions.inject_fault("ranker-latency", base_url=server.url)
    monkeypatch.setenv("OTHER_KEY", "wrong")
    with pytest.raises(Exception, match=r"HTTP 40[13]"):  # the server refuses a wrong key
        actions.inject_fault("ranker-latency", base_url=server.url, admin_key_env="OTHER_KEY")
    assert server_faults(server.url) == [] and actions.active_fault_ids() == []
