"""The network faults of the catalogue against a live server behind the loopback proxy: each one's
effect is seen by traffic through the proxy (and not by the admin API), and revert undoes it."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from recdrill.cli import main
from recdrill.drills.faults.catalogue import fault_type
from recdrill.drills.faults.proxy import LoopbackProxy
from recdrill.drills.target import DrillTarget
from recdrill.errors import ConfigError, FaultUnavailableError
from recdrill.serving.runtime.local_process import ServerProcess

DATA = "shopsim:n_items=600,n_users=500,n_events=10000"
KEY = "network-fault-key"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    model = tmp_path_factory.mktemp("network") / "model"
    assert main(["train", "--data", DATA, "--model", "itemknn", "--out", str(model)]) == 0
    with ServerProcess(model, model.parent / "state", admin_key=KEY) as running:
        yield running


@pytest.fixture
def target(server: ServerProcess) -> Iterator[DrillTarget]:
    with LoopbackProxy(server.url, seed=3) as proxy:
        yield DrillTarget(server.url, KEY, proxy=proxy)


def recommend(client: httpx.Client) -> float:
    """Seconds one recommendation took through the proxy; transport errors propagate."""
    start = time.perf_counter()
    response = client.post("/v1/recommend", json={"user_id": "net-user", "k": 5})
    assert response.status_code == 200
    return time.perf_counter() - start


def outcomes(client: httpx.Client, n: int) -> list[str]:
    """``ok`` or the transport error's class name, per request."""
    seen = []
    for _ in range(n):
        try:
            recommend(client)
            seen.append("ok")
        except httpx.TransportError as exc:
            seen.append(type(exc).__name__)
    return seen


def traffic(target: DrillTarget) -> httpx.Client:
    return httpx.Client(base_url=target.traffic_url, headers=target.headers, timeout=10)


def test_network_latency_slows_traffic_not_the_admin_api(target: DrillTarget) -> None:
    fault = fault_type("network-latency")
    params = fault.parse({"latency_ms": 250})
    with traffic(target) as client:
        recommend(client)
        handle = fault.inject(target, params)
        assert fault.leftovers is not None and len(fault.leftovers(target)) == 1
        slow = [recommend(client) for _ in range(3)]
        with target.admin() as admin:  # straight to the server: not delayed
            start = time.perf_counter()
            assert admin.get("/readyz").status_code == 200
            admin_s = time.perf_counter() - start
        observed = fault.revert(target, params, handle)
        fast = [recommend(client) for _ in range(3)]
    assert min(slow) >= 0.24 and admin_s < 0.24 and min(fast) < 0.24
    assert observed is not None and observed["removed"] and observed["delayed_chunks"] >= 3
    assert fault.leftovers(target) == []
    assert fault.revert(target, params, handle) is not None  # a second revert is harmless


@pytest.mark.parametrize(
    ("name", "error", "counter"),
    [
        ("network-drop", "RemoteProtocolError", "dropped"),
        ("network-reset", "ReadError", "reset"),
    ],
)
def test_drop_and_reset_fail_requests_until_reverted(
    target: DrillTarget, name: str, error: str, counter: str
) -> None:
    fault = fault_type(name)
    params = fault.parse({"rate": 1.0})
    with traffic(target) as client:
        assert outcomes(client, 2) == ["ok", "ok"]
        handle = fault.inject(target, params)
        during = outcomes(client, 4)
        observed = fault.revert(target, params, handle)
        after = outcomes(client, 3)
    assert set(during) <= {error, "RemoteProtocolError", "ReadError", "WriteError"} and error in during, (
        during
    )
    assert after == ["ok"] * 3
    assert observed is not None and observed[counter] == 4 and observed["seen"] == 4
    assert fault.leftovers is not None and fault.leftovers(target) == []


def test_a_partial_drop_rate_fails_about_that_share(target: DrillTarget) -> None:
    fault = fault_type("network-drop")
    params = fault.parse({"rate": 0.3})
    handle = fault.inject(target, params)
    with traffic(target) as client:
        seen = outcomes(client, 40)
    observed = fault.revert(target, params, handle)
    assert observed is not None
    assert 4 <= observed["dropped"] <= 24 and seen.count("ok") == 40 - observed["dropped"]


def test_leftovers_name_a_toxic_left_on_the_proxy(target: DrillTarget) -> None:
    fault = fault_type("network-reset")
    handle = fault.inject(target, fault.parse({"rate": 0.5}))
    assert fault.leftovers is not None
    assert fault.leftovers(target) == [f"proxy toxic {handle.id}"]
    assert fault_type("network-drop").leftovers(target) == []  # type: ignore[misc]
    fault.revert(target, fault.parse({}), handle)
    assert fault.leftovers(target) == []


def test_network_faults_need_the_proxy_and_bounded_params(server: ServerProcess) -> None:
    bare = DrillTarget(server.url, KEY)
    for name in ("network-latency", "network-drop", "network-reset"):
        fault = fault_type(name)
        assert fault.kind == "infrastructure" and "proxy" in fault.needs
        with pytest.raises(FaultUnavailableError, match="loopback proxy"):
            fault.inject(bare, fault.parse({}))
        assert fault.leftovers is not None and fault.leftovers(bare) == []
    with pytest.raises(ConfigError, match=r"network-drop.*rate"):
        fault_type("network-drop").parse({"rate": 2})
    with pytest.raises(ConfigError, match=r"network-latency.*latency_ms"):
        fault_type("network-latency").parse({"latency_ms": -5})
