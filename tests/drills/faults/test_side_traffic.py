"""SideTraffic against a scripted loopback HTTP server: what it sends, how it counts each outcome,
and that stop() and the TTL really end it."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import numpy as np
import pytest

from recdrill.drills.faults import side_traffic
from recdrill.drills.faults.side_traffic import SideRequest, SideTraffic
from recdrill.drills.target import DrillTarget
from recdrill.errors import ConfigError

KEY = "side-key"
STATUSES = {"/ok": 200, "/shed": 429, "/bad": 400, "/err": 503}


class Scripted(BaseHTTPRequestHandler):
    """Answers by path: the statuses above; ``/slow`` past the client's timeout; ``/close`` hangs up
    without an answer. RequestTable what it was sent."""

    protocol_version = "HTTP/1.1"
    seen: ClassVar[Counter[str]] = Counter()
    bodies: ClassVar[list[tuple[str, str, bytes, str | None]]] = []
    lock = threading.Lock()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        with self.lock:
            self.seen[self.path] += 1
            self.bodies.append(
                (self.path, self.headers.get("content-type", ""), body, self.headers.get("x-api-key"))
            )
        if self.path == "/close":
            self.close_connection = True
            return
        if self.path == "/slow":
            time.sleep(0.6)
        payload = json.dumps({"path": self.path}).encode()
        self.send_response(STATUSES.get(self.path, 200))
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def target() -> Iterator[DrillTarget]:
    Scripted.seen = Counter()
    Scripted.bodies = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Scripted)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield DrillTarget(f"http://127.0.0.1:{server.server_address[1]}", KEY)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def cycle(paths: list[str]) -> side_traffic.RequestFactory:
    return lambda rng, i: SideRequest("POST", paths[i % len(paths)], {"i": i})


def test_counts_every_outcome_as_the_server_answered(target: DrillTarget) -> None:
    paths = ["/ok", "/ok", "/shed", "/bad", "/err", "/slow", "/close"]
    traffic = SideTraffic(target, 60, cycle(paths), name="t", timeout_s=0.3, seed=3).start()
    time.sleep(2.5)
    summary = traffic.stop()
    sent = summary["requests"]
    assert 80 <= sent <= 220, summary  # Poisson at 60/s for 2.5 s: ~150
    per_path = Counter(paths[i % len(paths)] for i in range(sent))
    assert summary["ok"] == per_path["/ok"]
    assert summary["status_429"] == per_path["/shed"]
    assert summary["status_4xx"] == per_path["/bad"]
    assert summary["status_5xx"] == per_path["/err"]
    assert summary["timeouts"] == per_path["/slow"]
    assert summary["connect_errors"] == per_path["/close"]
    assert summary["running"] is False and "failure" not in summary
    assert 0 < summary["p50_ms"] <= summary["p99_ms"] < 1000
    # Every request reached the server with the target's key, JSON-encoded.
    assert sum(Scripted.seen.values()) == sent
    assert {key for *_, key in Scripted.bodies} == {KEY}
    assert all(ctype == "application/json" for _, ctype, _, _ in Scripted.bodies)


def test_bytes_bodies_headers_and_observer_tags(target: DrillTarget) -> None:
    def make(rng: np.random.Generator, i: int) -> SideRequest:
        if i % 2:
            return SideRequest("POST", "/ok", b"not json", {"content-type": "text/plain"}, "raw")
        return SideRequest("POST", "/bad", {"k": int(rng.integers(10))}, None, "json")

    def observe(request: SideRequest, response: object) -> str:
        return f"{request.label}:{getattr(response, 'status_code', '?')}"

    traffic = SideTraffic(target, 40, make, name="t", observe=observe).start()
    time.sleep(1.5)
    summary = traffic.stop()
    tags = summary["tags"]
    assert set(tags) == {"raw:200", "json:400"}, tags
    assert sum(tags.values()) == summary["requests"]
    raw = [b for path, ctype, b, _ in Scripted.bodies if ctype == "text/plain"]
    assert raw and set(raw) == {b"not json"}


def test_stop_ends_the_traffic_and_is_safe_twice(target: DrillTarget) -> None:
    traffic = SideTraffic(target, 100, cycle(["/ok"]), name="stopper").start()
    time.sleep(0.5)
    assert traffic in side_traffic.running() and traffic.is_running
    first = traffic.stop()
    assert not traffic.is_running and traffic not in side_traffic.running()
    received = sum(Scripted.seen.values())
    time.sleep(0.5)
    assert sum(Scripted.seen.values()) == received == first["requests"]  # nothing after stop
    assert traffic.stop()["requests"] == first["requests"]
    with pytest.raises(RuntimeError, match="already started"):
        traffic.start()


def test_ttl_ends_it_without_stop(target: DrillTarget) -> None:
    traffic = SideTraffic(target, 50, cycle(["/ok"]), name="short", ttl_s=0.6).start()
    deadline = time.monotonic() + 10
    while traffic.is_running and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not traffic.is_running and traffic not in side_traffic.running()
    summary = traffic.summary()
    assert 0 < summary["requests"] < 100 and summary["elapsed_s"] < 8
    traffic.stop()


def test_a_dead_target_counts_connection_errors(target: DrillTarget) -> None:
    dead = DrillTarget("http://127.0.0.1:9", KEY)  # discard port: nothing listens
    summary = SideTraffic(dead, 30, cycle(["/ok"]), name="dead").start()
    time.sleep(0.8)
    out = summary.stop()
    assert out["requests"] > 0 and out["connect_errors"] == out["requests"] and out["ok"] == 0


@pytest.mark.parametrize(
    ("rate", "ttl_s", "problem"), [(0, 1, "rate"), (float("nan"), 1, "rate"), (1, 0, "ttl_s")]
)
def test_bad_settings_are_named(target: DrillTarget, rate: float, ttl_s: float, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        SideTraffic(target, rate, cycle(["/ok"]), ttl_s=ttl_s)


def test_a_thread_short_of_cpu_skips_what_it_is_late_for_instead_of_a_burst(target: DrillTarget) -> None:
    # The factory runs on the traffic's own loop: a 1 s sleep there is a thread that got no CPU.
    stall_at = 10

    def make(rng: np.random.Generator, i: int) -> SideRequest:
        if i == stall_at:
            time.sleep(1.0)
        return SideRequest("POST", "/ok", {"i": i})

    traffic = SideTraffic(target, 100, make, name="starved", seed=4).start()
    time.sleep(2.5)
    summary = traffic.stop()
    # About 100 requests fell due during the stall: skipped (late by more than the slack), not sent
    # late in a burst; every request that was sent reached the server and was counted once.
    assert summary["skipped_late"] >= 50, summary
    assert summary["requests"] == sum(Scripted.seen.values()), summary
    outcomes = ("ok", "timeouts", "connect_errors", "cancelled")
    assert sum(summary[key] for key in outcomes) == summary["requests"], summary
    assert summary["ok"] >= summary["requests"] - 5 and summary["running"] is False, summary
