"""A worker SIGKILLed under 50% load: how many requests fail on first try, after one retry, and how
long until the server is back to full capacity.

One ``recdrill serve --workers N`` process on a free loopback port serves a saved ItemKNN, for N = 3,
then N = 2 (``--workers``). Its capacity is measured first (closed loop, ``--connections`` concurrent
requests, enough to keep every worker busy); then two open-loop
runs at half that rate send the same evenly spaced schedule of ``/v1/recommend`` requests with the
light keep-alive client of ``light_client.py`` (open loop, latency from the scheduled send time,
one retry on a fresh connection after a lost or refused connection or a 502/503/504, as the drill
replayer does, or after the ``Retry-After`` of a 429 shed while one worker carries the load; a
first try on an idle connection the server had closed counts as a failure too):

* baseline: nothing happens (side by side, same server, same run);
* kill: worker 0 is SIGKILLed a third of the way in; uvicorn's supervisor starts a replacement.

Why two worker counts: on 2 cores, 2 workers already use both cores, so the one left after a kill
must carry half the capacity alone, its own capacity, until the replacement answers (1.2-2.1 s here):
it sheds the excess with 429s, and retries after the 1 s ``Retry-After`` can still land inside that
window. Three workers on the same 2 cores (N+1) lose little capacity with one gone. The top-level
figures are the first count's; ``runs`` holds both.

``recovery_s`` is the time from the kill until the replacement answers requests (each worker tags its
responses with ``X-Recdrill-Worker``), i.e. until every worker serves again; ``replacement_spawned_s``
is when its process appeared; ``per_second`` shows answers and p99 around the kill. The first version
of this benchmark drove the load with the drill replayer (httpx): on these 2 cores the client itself
could not offer half the capacity (p50 3 s with no fault at all), so its numbers measured the client.
Statuses other than HTTP codes: 0 the client gave up (10 s), -1 no connection, -2 connection lost.
Results: ``benchmarks/results/worker_kill.json``.

Run: ``python benchmarks/worker_kill.py [--duration 30] [--data shopsim]``; ``--quick``: a smoke run
(one server of 2 workers, 4 s runs, a tiny shop) into ``benchmarks/results/quick/``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from common import K, machine_brief, percentile, sample_users, train_itemknn, write_report
from harness import QUICK_SHOP, parse_args, quick_path, run_main
from light_client import Outcome, bodies, closed_loop, open_loop
from recdrill.procs import ProcessRef, wait_for_workers
from recdrill.serving.config import ServeConfig
from recdrill.serving.runtime.local_process import ServerProcess

RESULTS = Path(__file__).resolve().parent / "results" / "worker_kill.json"
QUICK = {
    "duration": 4.0, "capacity_s": 1.0, "workers": "2", "data": QUICK_SHOP,
    "out": quick_path("worker_kill.json"),
}  # fmt: skip


def capacity(url: tuple[str, int], requests: list[bytes], seconds: float, connections: int) -> float:
    """Closed-loop requests per second the server answers (200) with ``connections`` in flight."""
    return asyncio.run(closed_loop(url, requests, seconds, connections))


def summarise(outcomes: list[Outcome]) -> dict[str, Any]:
    latency = np.array([o.latency_s for o in outcomes]) * 1000.0
    first = [o.first_status for o in outcomes if o.first_status != 200]
    final = [o.status for o in outcomes if o.status != 200]
    return {
        "requests": len(outcomes),
        "failed_first_try": len(first),
        "failed_after_retry": sum(o.status != 200 for o in outcomes),
        "first_try_failures_by_status": {str(s): first.count(s) for s in sorted(set(first))},
        "failures_after_retry_by_status": {str(s): final.count(s) for s in sorted(set(final))},
        "p50_ms": percentile(latency, 50),
        "p99_ms": percentile(latency, 99),
        "max_ms": percentile(latency, 100),
    }


def per_second(outcomes: list[Outcome], since: float, seconds: int) -> list[dict[str, Any]]:
    """Answers (200) and p99 in each second from ``since - 2`` on, by scheduled send time."""
    rows = []
    for offset in range(-2, seconds):
        window = [o for o in outcomes if since + offset <= o.scheduled < since + offset + 1]
        latency = [o.latency_s * 1000.0 for o in window if o.status == 200]
        rows.append(
            {
                "second": offset,
                "sent": len(window),
                "ok": len(latency),
                "failed_first_try": sum(o.first_status != 200 for o in window),
                "p99_ms": percentile(latency, 99),
            }
        )
    return rows


def replay(url: tuple[str, int], requests: list[bytes], rate: float, seconds: float) -> list[Outcome]:
    outcomes, _ = asyncio.run(open_loop(url, [("run", rate, seconds)], requests, timeout_s=10.0, retry=True))
    return outcomes


def kill_run(
    server: ServerProcess, requests: list[bytes], rate: float, seconds: float, workers: int
) -> tuple[list[Outcome], dict[str, float | int | None]]:
    """Replay while a thread kills worker 0 at ``seconds / 3`` and times its replacement."""
    timing: dict[str, float | int | None] = {"recovery_s": None, "replacement_spawned_s": None}

    def killer() -> None:
        time.sleep(seconds / 3)
        before = server.worker_pids()
        victim = ProcessRef.of(before[0])
        victim.signal(signal.SIGKILL)
        killed_at = time.monotonic()
        timing["killed_pid"], timing["killed_at"] = victim.pid, killed_at
        pids = wait_for_workers(server.pid, workers, timeout_s=120, without=frozenset({victim.pid}))
        timing["replacement_spawned_s"] = time.monotonic() - killed_at
        (new,) = set(pids) - set(before)
        server.answering_pids({new}, timeout_s=120)
        timing["recovery_s"] = time.monotonic() - killed_at

    thread = threading.Thread(target=killer)
    thread.start()
    outcomes = replay(("127.0.0.1", server.port), requests, rate, seconds)
    thread.join()
    return outcomes, timing


def measure(args: argparse.Namespace, model: Path, work: Path, workers: int) -> dict[str, Any]:
    """Capacity, then the baseline and the kill run at ``args.load`` of it, on one fresh server."""
    requests = bodies(sample_users(model), K)
    with ServerProcess(model, work / f"state-{workers}", workers=workers) as server:
        url = ("127.0.0.1", server.port)
        capacity(url, requests, 2.0, args.connections)  # warm-up, not measured
        rps = capacity(url, requests, args.capacity_s, args.connections)
        rate = args.load * rps
        print(f"capacity {rps:.0f} req/s with {workers} workers; replaying at {rate:.0f} req/s", flush=True)
        baseline = summarise(replay(url, requests, rate, args.duration))
        print(f"baseline: {baseline}", flush=True)
        outcomes, timing = kill_run(server, requests, rate, args.duration, workers)
        killed = summarise(outcomes)
        killed_at = timing.pop("killed_at")
        assert killed_at is not None
        timeline = per_second(outcomes, killed_at, int(args.duration / 3))
        print(f"kill: {killed} {timing}", flush=True)
    return {
        "workers": workers,
        "requests": killed["requests"],
        "failed_first_try": killed["failed_first_try"],
        "failed_after_retry": killed["failed_after_retry"],
        "recovery_s": timing["recovery_s"],
        "replacement_spawned_s": timing["replacement_spawned_s"],
        "capacity_rps": rps,
        "rate_rps": rate,
        "kill": killed,
        "baseline": baseline,
        "per_second": timeline,
        "ratios": {
            "p99_kill_over_baseline": killed["p99_ms"] / baseline["p99_ms"],
            "p50_kill_over_baseline": killed["p50_ms"] / baseline["p50_ms"],
            "availability_first_try_kill_over_baseline": (
                (1 - killed["failed_first_try"] / killed["requests"])
                / (1 - baseline["failed_first_try"] / baseline["requests"])
            ),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=30.0, help="Seconds of traffic per run.")
    parser.add_argument("--capacity-s", type=float, default=8.0, help="Seconds of the capacity probe.")
    parser.add_argument(
        "--connections", type=int, default=32, help="Closed-loop concurrency (keeps every worker busy)."
    )
    parser.add_argument("--load", type=float, default=0.5, help="Share of capacity to replay at.")
    parser.add_argument(
        "--workers",
        default="3,2",
        help="Worker counts, one server each; the first gives the top-level figures.",
    )
    parser.add_argument("--data", default="shopsim:n_items=5000,n_users=5000,n_events=150000")
    parser.add_argument(
        "--max-in-flight", type=int, default=ServeConfig.max_in_flight, help="recdrill's admission limit."
    )
    parser.add_argument(
        "--admission-wait-ms",
        type=float,
        default=ServeConfig.admission_wait_ms,
        help="How long a request past the limit waits for a slot before its 429.",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parse_args(parser, QUICK)

    # The admission settings are read by the workers; the benchmark sets them through the environment.
    os.environ["RECDRILL_MAX_IN_FLIGHT"] = str(args.max_in_flight)
    os.environ["RECDRILL_ADMISSION_WAIT_MS"] = str(args.admission_wait_ms)
    work = Path(tempfile.mkdtemp(prefix="worker_kill-"))
    model = work / "model"
    train_itemknn(args.data, model)
    runs = [measure(args, model, work, int(n)) for n in args.workers.split(",")]
    first = runs[0]
    report = {
        **{key: first[key] for key in ("requests", "failed_first_try", "failed_after_retry", "recovery_s")},
        "workers": first["workers"],
        "runs": runs,
        "max_in_flight": args.max_in_flight,
        "admission_wait_ms": args.admission_wait_ms,
        "load": args.load,
        "duration_s": args.duration,
        "client": "light_client (asyncio keep-alive, open loop, retry once)",
        "data": args.data,
        "machine": machine_brief(),
    }
    write_report(args.out, report)
    for run in runs:
        keys = ("workers", "requests", "failed_first_try", "failed_after_retry", "recovery_s")
        print(json.dumps({k: run[k] for k in keys}))


if __name__ == "__main__":
    run_main(main)
