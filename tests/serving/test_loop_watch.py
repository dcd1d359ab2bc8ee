"""The event-loop watch: lag from an injected clock, a held loop named by its stack, and the watch
running in every worker of a real server."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from recdrill.cli import main
from recdrill.serving.loop_watch import LoopWatch
from recdrill.serving.runtime.local_process import ServerProcess


def lag_count(registry: CollectorRegistry, le: str | None = None) -> float:
    if le is None:
        return registry.get_sample_value("recdrill_event_loop_lag_seconds_count") or 0.0
    return registry.get_sample_value("recdrill_event_loop_lag_seconds_bucket", {"le": le}) or 0.0


def test_a_timer_that_fires_late_is_recorded_as_lag() -> None:
    registry = CollectorRegistry()
    watch = LoopWatch(registry, interval_s=0.05, stall_s=0.25, clock=lambda: 0.0)
    assert watch.tick(before=1.0, after=1.05) == 0.0  # on time
    assert watch.tick(before=2.0, after=2.01) == 0.0  # early (a coarse clock): never negative
    assert watch.tick(before=3.0, after=3.45) == pytest.approx(0.4)
    assert lag_count(registry) == 3
    assert lag_count(registry, le="0.001") == 2
    assert lag_count(registry, le="0.25") == 2  # the 400 ms one is above it
    assert registry.get_sample_value("recdrill_event_loop_lag_seconds_sum") == pytest.approx(0.4)


def blocking_call_of_the_loop(entered: threading.Event, release: threading.Event) -> None:
    entered.set()
    release.wait(30)


def test_a_held_loop_is_reported_once_with_the_holding_call() -> None:
    now = [100.0]
    registry = CollectorRegistry()
    watch = LoopWatch(registry, interval_s=0.05, stall_s=0.25, clock=lambda: now[0])
    entered, release = threading.Event(), threading.Event()
    reports: list[str | None] = []

    async def loop_body() -> None:
        ticking = asyncio.create_task(watch.run())
        await asyncio.sleep(0)  # the watch starts and learns its thread
        blocking_call_of_the_loop(entered, release)  # holds the loop, as a synchronous commit would
        ticking.cancel()

    loop_thread = threading.Thread(target=asyncio.run, args=(loop_body(),))
    loop_thread.start()
    try:
        assert entered.wait(30)
        reports.append(watch.check(now[0] + 0.1))  # 100 ms late: not a stall yet
        now[0] += 0.4
        reports.append(watch.check(now[0]))
        reports.append(watch.check(now[0] + 1.0))  # the same stall: reported once
    finally:
        release.set()
        loop_thread.join(30)
    assert reports[0] is None and reports[2] is None
    assert reports[1] is not None and "blocking_call_of_the_loop" in reports[1]
    assert registry.get_sample_value("recdrill_event_loop_stalls_total") == 1
    watch.tick(before=now[0], after=now[0] + 0.05)  # the loop ran again: the next stall is new
    assert watch.check(now[0] + 1.0) is not None
    assert registry.get_sample_value("recdrill_event_loop_stalls_total") == 2


def lag_samples(client: httpx.Client) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(client.get("/metrics").text)
        for sample in family.samples
        if sample.name == "recdrill_event_loop_lag_seconds_count"
    )


def test_a_real_server_measures_its_loop(tmp_path: Path) -> None:
    model = tmp_path / "model"
    shop = "shopsim:n_items=200,n_users=100,n_events=2000"
    assert main(["train", "--data", shop, "--model", "pop", "--out", str(model)]) == 0
    with ServerProcess(model, tmp_path / "state") as server, httpx.Client(base_url=server.url) as client:
        first = lag_samples(client)
        deadline = time.monotonic() + 30.0
        while lag_samples(client) <= first and time.monotonic() < deadline:
            time.sleep(0.2)
        assert lag_samples(client) > first
