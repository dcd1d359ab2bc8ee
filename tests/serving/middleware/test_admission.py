"""Admission control on a real server: beyond the limit a fast 429 with Retry-After, never a 5xx."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from starlette.types import Message, Receive, Scope, Send

from recdrill.cli import main
from recdrill.serving.metrics import ServingMetrics
from recdrill.serving.middleware.admission import AdmissionControl
from recdrill.serving.runtime.local_process import ServerProcess
from tests.serving.test_app import metric

ADMIN = {"X-API-Key": "admission-key"}
LIMIT = 2
BURST = 10


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("admission")
    shop = "shopsim:n_items=500,n_users=400,n_events=8000"
    assert main(["train", "--data", shop, "--model", "itemknn", "--out", str(root / "model")]) == 0
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RECDRILL_MAX_IN_FLIGHT", str(LIMIT))  # no CLI flag: reaches the worker by env
        server = ServerProcess(root / "model", root / "state", admin_key=ADMIN["X-API-Key"], deadline_ms=5000)
        server.start()
    try:
        yield server
    finally:
        server.stop()


def burst(url: str, n: int) -> list[httpx.Response]:
    """``n`` requests released at the same instant, each on its own connection."""
    gate = threading.Barrier(n)

    def one(_: int) -> httpx.Response:
        with httpx.Client(base_url=url, timeout=30.0) as client:
            gate.wait()
            return client.post("/v1/recommend", json={"user_id": "U-000001"})

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(one, range(n)))


def test_beyond_the_limit_requests_get_a_fast_429_and_none_a_5xx(
    server: ServerProcess, tmp_path: Path
) -> None:
    with httpx.Client(base_url=server.url, timeout=10.0) as client:
        # Every admitted request now holds its place for 1.5 s (the fault sleeps without blocking).
        fault = {"kind": "latency", "latency_ms": 1500, "ttl_s": 60}
        assert client.post("/admin/faults", json=fault, headers=ADMIN).status_code == 201
        before = client.get("/metrics").text
        started = time.perf_counter()
        responses = burst(server.url, BURST)
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [200] * LIMIT + [429] * (BURST - LIMIT)
        for refused in (r for r in responses if r.status_code == 429):
            assert refused.headers["retry-after"] == "1"
            assert refused.headers["content-type"] == "application/json"
            assert "overloaded" in refused.json()["error"] and refused.json()["retry_after_s"] == 1
            assert refused.elapsed.total_seconds() < 1.0  # refused at once, not after queueing
        assert time.perf_counter() - started < 10.0
        for fault_row in client.get("/admin/faults", headers=ADMIN).json():
            client.delete(f"/admin/faults/{fault_row['id']}", headers=ADMIN)
        after = client.get("/metrics").text
        # Once the load is gone, requests are admitted again.
        assert client.post("/v1/recommend", json={"user_id": "U-000001"}).status_code == 200

    def delta(sample: str, **labels: str) -> float:
        return metric(after, sample, **labels) - metric(before, sample, **labels)

    assert delta("recdrill_shed_total", route="/v1/recommend") == BURST - LIMIT
    assert delta("recdrill_requests_total", route="/v1/recommend", status="429") == BURST - LIMIT
    assert delta("recdrill_requests_total", route="/v1/recommend", status="200") == LIMIT
    assert delta("recdrill_errors_total") == 0
    assert metric(after, "recdrill_in_flight") == 0


def test_other_routes_are_not_limited(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.url, timeout=10.0) as client:
        fault = {"kind": "latency", "latency_ms": 1500, "ttl_s": 60}
        created = client.post("/admin/faults", json=fault, headers=ADMIN).json()
        try:
            with ThreadPoolExecutor(max_workers=LIMIT) as pool:
                held = [pool.submit(burst, server.url, LIMIT)]
                time.sleep(0.5)  # both places are taken now
                assert client.get("/healthz").status_code == 200
                assert client.get("/readyz").status_code == 200
                assert client.get("/metrics").status_code == 200
                assert all(r.status_code == 200 for r in held[0].result())
        finally:
            client.delete(f"/admin/faults/{created['id']}", headers=ADMIN)


class Holding:
    """An ASGI app whose requests hold their slot until the test releases them, in order."""

    def __init__(self) -> None:
        self.started: list[int] = []
        self.gates: dict[int, asyncio.Event] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        number = scope["number"]
        self.started.append(number)
        gate = self.gates.setdefault(number, asyncio.Event())
        await gate.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    def release(self, number: int) -> None:
        self.gates.setdefault(number, asyncio.Event()).set()


async def _call(control: AdmissionControl, number: int, statuses: dict[int, int]) -> None:
    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses[number] = message["status"]

    await control({"type": "http", "path": "/v1/recommend", "number": number}, receive, send)


def test_a_burst_waits_for_slots_first_come_first_served() -> None:
    async def scenario() -> None:
        inner = Holding()
        control = AdmissionControl(inner, limit=2, metrics=ServingMetrics(), wait_s=5.0)
        statuses: dict[int, int] = {}
        tasks = []
        for number in range(4):
            tasks.append(asyncio.create_task(_call(control, number, statuses)))
            await asyncio.sleep(0.01)  # arrive in order 0, 1, 2, 3
        assert inner.started == [0, 1] and control.in_flight == 2  # 2 and 3 wait
        inner.release(1)
        await asyncio.sleep(0.01)
        assert inner.started == [0, 1, 2] and control.in_flight == 2  # the slot went to 2, not 3
        inner.release(0)
        await asyncio.sleep(0.01)
        assert inner.started == [0, 1, 2, 3]
        inner.release(2)
        inner.release(3)
        await asyncio.gather(*tasks)
        assert statuses == {0: 200, 1: 200, 2: 200, 3: 200} and control.in_flight == 0

    asyncio.run(scenario())


def test_past_its_wait_a_request_gets_the_429_and_frees_nothing() -> None:
    async def scenario() -> None:
        inner = Holding()
        metrics = ServingMetrics()
        control = AdmissionControl(inner, limit=1, metrics=metrics, wait_s=0.05)
        statuses: dict[int, int] = {}
        holder = asyncio.create_task(_call(control, 0, statuses))
        await asyncio.sleep(0.01)
        started = time.perf_counter()
        await _call(control, 1, statuses)
        waited = time.perf_counter() - started
        assert statuses == {1: 429} and 0.05 <= waited < 1.0 and control.in_flight == 1
        inner.release(0)
        await holder
        assert statuses[0] == 200 and control.in_flight == 0
        assert metrics.shed.labels("/v1/recommend")._value.get() == 1

    asyncio.run(scenario())


def test_a_waiting_request_whose_client_leaves_gives_up_its_place() -> None:
    async def scenario() -> None:
        inner = Holding()
        control = AdmissionControl(inner, limit=1, metrics=ServingMetrics(), wait_s=5.0)
        statuses: dict[int, int] = {}
        holder = asyncio.create_task(_call(control, 0, statuses))
        await asyncio.sleep(0.01)
        leaver = asyncio.create_task(_call(control, 1, statuses))
        stayer = asyncio.create_task(_call(control, 2, statuses))
        await asyncio.sleep(0.01)
        leaver.cancel()  # the client disconnected while it waited
        await asyncio.sleep(0.01)
        inner.release(0)
        inner.release(2)
        await asyncio.gather(holder, stayer)
        assert leaver.cancelled() and inner.started == [0, 2]
        assert statuses == {0: 200, 2: 200} and control.in_flight == 0

    asyncio.run(scenario())
