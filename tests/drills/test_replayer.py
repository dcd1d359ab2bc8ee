"""The replayer's one retry, against a loopback HTTP server that fails in scripted ways.

The server stands in for a deployment whose worker dies mid-request (connection closed without a
response), or that answers 503, 429 or 500, or too slowly: user ``KIND-n``'s first request fails as
KIND says (``reset`` and ``s503``), or every request does (``s429``, ``s500``, ``slow``).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter

import pytest

from recdrill.drills.replayer import Replayer, ReplayPlan, RequestRecord, arrival_times

OK_BODY = json.dumps({"items": [{"item_id": "i1", "score": 1.0}], "served_by": "primary"}).encode()


class ScriptedServer:
    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()
        self.connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}

    async def close(self) -> None:
        """End every connection handler, so no socket outlives the test."""
        for task, writer in self.connections.items():
            task.cancel()
            writer.close()
        await asyncio.gather(*self.connections, return_exceptions=True)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.connections[task] = writer
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
                user = json.loads(await reader.readexactly(length))["user_id"]
                self.seen[user] += 1
                kind = user.split("-")[0]
                first = self.seen[user] == 1
                if kind == "reset" and first:
                    writer.close()  # read, then gone without an answer: a worker killed mid-request
                    return
                if kind == "slow":
                    await asyncio.sleep(2.5)  # past the 2 s client timeout
                status = {"s503": 503 if first else 200, "s429": 429, "s500": 500}.get(kind, 200)
                body = OK_BODY if status == 200 else b'{"error": "scripted"}'
                writer.write(
                    f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


def replay(kind: str, retry: bool, users: int = 40) -> tuple[list[RequestRecord], ScriptedServer]:
    script = ScriptedServer()

    async def run() -> list[RequestRecord]:
        server = await asyncio.start_server(script.handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        names = tuple(f"{kind}-{i}" for i in range(users))
        replayer = Replayer(f"http://127.0.0.1:{port}", ReplayPlan(names, names), timeout_s=2.0, retry=retry)
        async with server:
            try:
                return await replayer.run(rate=40, duration_s=1.0, seed=2)
            finally:
                await script.close()

    return asyncio.run(run()), script


def test_a_request_cut_off_mid_way_is_retried_once_and_counted_as_a_first_try_failure() -> None:
    records, server = replay("reset", retry=True)
    assert records and all(r.ok for r in records)
    firsts = [r for r in records if r.retried]
    assert len(firsts) == len(server.seen)  # each user's first request failed, then its retry succeeded
    assert all(r.first_status == 0 for r in firsts) and all(r.ok_first_try for r in records if not r.retried)
    assert sum(server.seen.values()) == len(records) + len(firsts)


def test_without_retry_the_failures_stay_failures() -> None:
    records, server = replay("reset", retry=False)
    failed = [r for r in records if not r.ok]
    assert len(failed) == len(server.seen) and not any(r.retried for r in records)
    assert all(r.status == 0 and "RemoteProtocolError" in (r.error or "") for r in failed)


def test_503_is_retried() -> None:
    records, server = replay("s503", retry=True)
    assert all(r.ok for r in records) and sum(r.first_status == 503 for r in records) == len(server.seen)


@pytest.mark.parametrize(("kind", "status"), [("s429", 429), ("s500", 500), ("slow", 0)])
def test_429_500_and_timeouts_are_not_retried(kind: str, status: int) -> None:
    records, server = replay(kind, retry=True, users=5)
    assert records and all(r.status == status and not r.retried for r in records)
    assert sum(server.seen.values()) == len(records)  # one attempt each


def test_shaped_arrivals_follow_the_rate_over_time() -> None:
    import numpy as np

    from recdrill.drills.replayer import shaped_arrival_times

    def spike(t: np.ndarray) -> np.ndarray:
        return np.where((t >= 20) & (t < 30), 250.0, 50.0)

    times = shaped_arrival_times(spike, 250.0, 40.0, seed=3)
    before, during, after = (
        int(((times >= a) & (times < b)).sum()) for a, b in [(0, 20), (20, 30), (30, 40)]
    )
    assert abs(before - 1000) < 150 and abs(during - 2500) < 250 and abs(after - 500) < 100
    assert np.all(np.diff(times) >= 0)


def test_a_replayer_short_of_cpu_skips_the_requests_it_is_late_for() -> None:
    """The event loop blocked for 0.8 s (the process got no CPU): the requests due meanwhile are
    skipped and kept apart, not sent late in a burst; each scheduled request is either."""
    script = ScriptedServer()
    stalled: list[float] = []

    def stall() -> None:
        stalled.append(time.monotonic())
        time.sleep(0.8)

    async def run() -> Replayer:
        server = await asyncio.start_server(script.handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        names = tuple(f"ok-{i}" for i in range(10))
        replayer = Replayer(f"http://127.0.0.1:{port}", ReplayPlan(names, names), timeout_s=2.0)
        t0 = time.monotonic()
        asyncio.get_running_loop().call_at(t0 + 0.3, stall)
        async with server:
            try:
                await replayer.run(rate=100, duration_s=1.5, seed=2, started=t0)
            finally:
                await script.close()
        stalled[0] -= t0
        return replayer

    replayer = asyncio.run(run())
    scheduled = arrival_times(100, 1.5, 2)
    assert len(replayer.records) + len(replayer.skipped) == len(scheduled)
    assert sorted([r.scheduled_s for r in replayer.records] + replayer.skipped) == scheduled.tolist()
    assert sum(script.seen.values()) == len(replayer.records)  # skipped ones never reached the server
    assert replayer.pacer.counts()["skipped_late"] == len(replayer.skipped) > 0
    # Due in the first half of the stall: late by more than the 0.25 s slack once it ended.
    start = stalled[0]
    due_in_stall = [t for t in scheduled.tolist() if start + 0.01 <= t <= start + 0.5]
    assert due_in_stall and set(due_in_stall) <= set(replayer.skipped)
    assert all(r.ok for r in replayer.records)
