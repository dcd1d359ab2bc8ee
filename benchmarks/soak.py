"""A long soak of recdrill at 70% of its measured capacity, recommendations and feedback writes
mixed: does anything creep over time (memory, file descriptors, threads, tail latency) or fail?

A leak too slow for the short benchmarks to see (an unbounded cache, a connection or thread never
released, a feedback path keeping what it committed) shows only under long steady load. So one
``recdrill serve --workers 2`` on loopback serves a saved ItemKNN (default ShopSim). A closed-loop
probe (``--probe-s``, 16 clients, as in ``surge.py``) measures what it answers per second of the
soak's own mix (a feedback commit costs other work than a recommendation); then an open-loop
schedule offers ``--share`` of that for ``--minutes``, one request every ``1 / rate`` seconds sent on
time whatever the earlier ones are doing (latency counts from the scheduled send time). A
``--feedback-share`` of them, spread evenly (0.2: one per four recommendations), are ``POST
/v1/feedback`` (real users and items, a unique ``event_id``, ``ts`` the client's clock; answered once
committed), the rest ``POST /v1/recommend``; a client gives up after ``--timeout-s``. Every
``--sample-s`` the RSS, open fds and threads of each worker and of the supervisor are read (psutil);
a worker pid not seen before, or one gone before the end, is a restart.

The checks of issue #17, each a boolean under ``checks``, ``passed`` all of them: ``zero_errors``
(a 429, a 5xx, a timeout, a refused or lost connection is an error); ``no_worker_restarts``;
``rss_growth_under_10pct`` (each worker's RSS at the end against the end of ``--warmup-s``);
``fds_flat`` and ``threads_flat`` (after the warm-up, each process's least-squares slope, reported
per hour with min and max, times the time measured, within ``LIMITS``; the fds judged are those
other than established TCP connections, which come and go with the load, as do pool threads);
``p99_last_within_20pct_of_first`` (the recommendations' p99 over the last ``--window-s`` at most
1.2 times that of the first; a faster end passes). The exit code is 0 when a check fails (this is a
measurement): each check prints one line.

The load comes from the keep-alive client of ``light_client.py`` (httpx costs about a millisecond
of CPU per request, too much beside two workers on two cores), its outcomes folded into
``--bucket-s`` buckets as they come: the client's memory stays small over a long run.

Results: ``benchmarks/results/soak.json``: the checks, capacity and offered rate, errors by kind,
feedback posted and acknowledged, a per-minute p50/p99 series, each process's RSS, fds and threads.

Run: ``python benchmarks/soak.py [--minutes 30] [--share 0.7]`` (about 32 minutes: training, the
probe, the soak); ``--quick``: a smoke run (about 30 s, a tiny shop, every window scaled down) into
``benchmarks/results/quick/``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import sqlite3
import sys
import tempfile
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psutil

import common
from common import K, percentile, sample_users, start_server_with_env, train_itemknn
from harness import QUICK_SHOP, parse_args, quick_path, run_main
from host_cpu import CpuLedger
from light_client import LOST, REFUSED, TIMEOUT, Client, Outcome, bodies, timed
from recdrill.data.snapshot import ShopSnapshot
from recdrill.serving.runtime.local_process import ServerProcess

Json = dict[str, Any]
RESULTS = Path(__file__).resolve().parent / "results" / "soak.json"
QUICK = {
    "minutes": 0.35, "warmup_s": 4.0, "window_s": 6.0, "bucket_s": 3.0, "sample_s": 1.0,
    "probe_s": 2.0, "data": QUICK_SHOP, "out": quick_path("soak.json"),
}  # fmt: skip
# The checks' limits. A drift is what a process gained or lost over the time measured (slope x time)
# and may still count as flat: connections and pool threads come and go with the load.
LIMITS = {"rss_growth_pct": 10.0, "p99_ratio": 1.2, "fd_drift": 10.0, "thread_drift": 4.0}
PROBE_CONCURRENCY = 16  # as surge.py's probe
EVENTS = ("view", "view", "view", "click", "click", "cart", "purchase")
N_ITEMS = 2000
COLUMNS = ("t_s", "rss_mb", "fds", "fds_other", "threads")  # fds_other: not established TCP
KINDS = ("recommend", "feedback")


class Mix:
    """The schedule's requests: the i-th is a feedback post for a ``feedback_share`` of them, spread
    evenly, else a recommendation. A feedback body is built when sent: a fresh ``ts``, a new id."""

    def __init__(self, model_dir: Path, feedback_share: float, seed: int = 0) -> None:
        self.users = users = sample_users(model_dir, seed=seed)
        catalogue = ShopSnapshot.load(model_dir).item_ids  # feedback on items the shop has
        self.items = np.random.default_rng(seed).permutation(catalogue)[:N_ITEMS].tolist()
        self.share = feedback_share
        self.recommend_bodies = bodies(users, K)
        self.feedback_sent = 0

    def request(self, i: int) -> tuple[str, bytes]:
        if math.floor((i + 1) * self.share) > math.floor(i * self.share):
            n = self.feedback_sent
            self.feedback_sent += 1
            body = {
                "user_id": self.users[n % len(self.users)], "item_id": self.items[n * 7919 % len(self.items)],
                "event": EVENTS[n % len(EVENTS)], "ts": time.time(), "event_id": f"soak-{n}",
            }  # fmt: skip
            return "feedback", json.dumps(body).encode()
        return "recommend", self.recommend_bodies[i % len(self.recommend_bodies)]


@dataclass
class Bucket:
    """The outcomes of the requests scheduled in one ``bucket_s`` of the soak."""

    ms: dict[str, array[float]] = field(default_factory=lambda: {k: array("d") for k in KINDS})  # 200s
    requests: int = 0
    errors: int = 0


@dataclass
class Tally:
    """Every outcome, folded in as it comes: statuses per kind, latencies per bucket."""

    bucket_s: float
    start: float = 0.0  # the event loop's clock when the schedule began
    buckets: dict[int, Bucket] = field(default_factory=dict)
    statuses: dict[str, Counter[int]] = field(default_factory=lambda: {k: Counter() for k in KINDS})
    client_exceptions: int = 0

    def add(self, outcome: Outcome) -> None:
        bucket = self.buckets.setdefault(int((outcome.scheduled - self.start) // self.bucket_s), Bucket())
        bucket.requests += 1
        self.statuses[outcome.phase][outcome.status] += 1
        if outcome.status == 200:
            bucket.ms[outcome.phase].append(outcome.latency_s * 1000.0)
        else:
            bucket.errors += 1


@dataclass
class Sampler:
    """RSS, open fds and threads of the supervisor and each worker, one sample at a time."""

    server: ServerProcess
    series: dict[int, Json] = field(default_factory=dict)  # pid -> role, rows of COLUMNS
    cpu: CpuLedger = field(default_factory=CpuLedger)  # whose CPU: a wave caused by another job shows
    restarts: int = 0  # worker pids that appeared after the first sample

    def sample(self, t_s: float) -> None:
        workers = self.server.worker_pids()
        self.cpu.sample(t_s, [self.server.pid, *workers])
        if self.series:
            self.restarts += sum(pid not in self.series for pid in workers)
        for pid, role in [(self.server.pid, "supervisor"), *((pid, "worker") for pid in workers)]:
            try:
                process = psutil.Process(pid)
                with process.oneshot():
                    rss, fds, threads = process.memory_info().rss, process.num_fds(), process.num_threads()
                tcp = process.net_connections("tcp")  # open client connections come and go with the load
            except psutil.Error:  # gone between the listing and the reading
                continue
            other = fds - sum(c.status == psutil.CONN_ESTABLISHED for c in tcp)
            found = self.series.setdefault(pid, {"role": role, "columns": COLUMNS, "rows": []})
            found["rows"].append([round(t_s, 3), rss / 2**20, fds, other, threads])

    async def every(self, period_s: float, start: float, end: float) -> None:
        """A sample every ``period_s`` from ``start`` (the loop's clock) and one at ``end``."""
        loop = asyncio.get_running_loop()
        for at in [*np.arange(start, end, period_s).tolist(), end]:
            await asyncio.sleep(max(0.0, at - loop.time()))
            self.sample(loop.time() - start)


def clients_for(url: tuple[str, int], max_connections: int) -> dict[str, Client]:
    """A keep-alive client per kind of request (``light_client.Client`` posts to one path)."""
    feedback = Client(*url, max_connections, path="/v1/feedback")
    return {"recommend": Client(*url, max_connections), "feedback": feedback}


async def probe(url: tuple[str, int], mix: Mix, seconds: float) -> float:
    """Answers per second of the soak's own mix with ``PROBE_CONCURRENCY`` clients each sending the
    next request as soon as one returns: ``light_client.closed_loop``, feedback among the requests."""
    clients = clients_for(url, PROBE_CONCURRENCY)
    answered = sent = 0
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal answered, sent
        while time.perf_counter() < stop:
            kind, body = mix.request(sent)
            sent += 1
            status = await clients[kind].post(body)  # then count: ``+=`` would read before the await
            answered += status == 200

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(PROBE_CONCURRENCY)))
    for client in clients.values():
        client.close()
    return answered / (time.perf_counter() - started)


async def offer(
    url: tuple[str, int], rate: float, seconds: float, mix: Mix, tally: Tally, sampler: Sampler, args: Any
) -> int:
    """The open-loop soak: ``rate`` requests/s for ``seconds``, on schedule, sampling as it goes.
    Returns how many requests were resent because their idle keep-alive connection had closed."""
    loop = asyncio.get_running_loop()
    clients = clients_for(url, 4096)
    pending: set[asyncio.Task[Outcome]] = set()

    def done(task: asyncio.Task[Outcome]) -> None:
        pending.discard(task)
        if task.exception() is not None:
            tally.client_exceptions += 1
        else:
            tally.add(task.result())

    tally.start = next_at = loop.time() + 0.05
    end = next_at + seconds
    sampling = asyncio.create_task(sampler.every(args.sample_s, next_at, end))
    interval, sent = 1.0 / rate, 0
    while next_at < end:
        now = loop.time()
        while next_at <= now and next_at < end:  # everything due: sleep granularity is ~1 ms
            kind, body = mix.request(sent)
            task = asyncio.create_task(timed(clients[kind], body, kind, next_at, args.timeout_s))
            pending.add(task)
            task.add_done_callback(done)
            sent += 1
            next_at += interval
        await asyncio.sleep(max(0.0, min(next_at, end) - loop.time()))
    await sampling
    if pending:
        await asyncio.wait(set(pending))
    for client in clients.values():
        client.close()
    return sum(client.stale_retries for client in clients.values())


def bucket_series(tally: Tally, n_buckets: int, cpu: CpuLedger) -> list[Json]:
    """Per bucket (per minute in the full run): requests, errors, the p50/p99 of the 200s, and the
    cores used by the server and client, by other processes, and stolen."""
    rows = []
    for i, cores in enumerate(cpu.per_bucket(tally.bucket_s, n_buckets)):
        b = tally.buckets.get(i, Bucket())
        rows.append({**cores,
            "t_s": i * tally.bucket_s, "requests": b.requests, "errors": b.errors,
            "p50_ms": percentile(b.ms["recommend"], 50), "p99_ms": percentile(b.ms["recommend"], 99),
            "feedback_p50_ms": percentile(b.ms["feedback"], 50),
            "feedback_p99_ms": percentile(b.ms["feedback"], 99),
        })  # fmt: skip
    return rows


def p99_windows(tally: Tally, n_buckets: int, window_s: float) -> Json:
    """The recommendations' p99 over the first and the last ``window_s`` (whole buckets)."""
    width = max(1, min(n_buckets, math.ceil(window_s / tally.bucket_s - 1e-9)))
    p_first, p_last = (
        percentile(
            [ms for b in range(i, i + width) for ms in tally.buckets.get(b, Bucket()).ms["recommend"]], 99
        )
        for i in (0, n_buckets - width)
    )
    ratio = p_last / p_first if p_first and p_last is not None else None
    return {
        "window_s": width * tally.bucket_s, "p99_first_ms": p_first, "p99_last_ms": p_last,
        "ratio_last_over_first": ratio,
    }  # fmt: skip


def errors_by_kind(tally: Tally) -> Json:
    """Every request not answered 200 in time, by kind (429s count: this load is below capacity)."""
    total: Counter[int] = sum(tally.statuses.values(), Counter())
    http = {status: n for status, n in total.items() if status > 0 and status != 200}
    return {
        "total": sum(n for status, n in total.items() if status != 200) + tally.client_exceptions,
        "http_429": total[429], "http_5xx": sum(n for status, n in http.items() if status >= 500),
        "http_other": sum(n for status, n in http.items() if status != 429 and status < 500),
        "timeouts": total[TIMEOUT], "connection_refused": total[REFUSED], "connection_lost": total[LOST],
        "client_exceptions": tally.client_exceptions,
        "by_status": {str(status): n for status, n in sorted(http.items())},
        "by_request": {kind: sum(n for s, n in c.items() if s != 200) for kind, c in tally.statuses.items()},
    }  # fmt: skip


def trend(t_hours: np.ndarray, values: np.ndarray) -> Json:
    """Least-squares slope per hour, the drift it implies over the time measured, min and max."""
    span = float(t_hours[-1] - t_hours[0])
    slope = float(np.polyfit(t_hours, values, 1)[0]) if span > 0 else 0.0
    return {
        "slope_per_hour": slope, "drift": slope * span, "min": float(values.min()),
        "max": float(values.max()), "first": float(values[0]), "last": float(values[-1]),
    }  # fmt: skip


def process_summary(series: Json, warmup_s: float, end_s: float) -> Json:
    """One process after the warm-up: RSS at its end and at the end of the run (``end_s``, the last
    sample's time), and the trends of RSS, fds and threads."""
    rows = np.asarray(series["rows"], dtype=float).reshape(-1, len(COLUMNS))
    t, rss, fds, other, threads = rows[rows[:, 0] >= warmup_s].T
    summary: Json = {"role": series["role"], "samples": len(t)}
    summary["lasted"] = bool(len(rows)) and bool(rows[-1, 0] >= end_s)  # not replaced before the end
    if len(t) < 2:
        return summary
    hours = t / 3600.0
    summary.update({
        "rss_mb_warmup_end": float(rss[0]),
        "rss_mb_end": float(rss[-1]),
        "rss_growth_pct": float(100.0 * (rss[-1] / rss[0] - 1.0)),
        "rss_mb": trend(hours, rss),
        "fds": trend(hours, fds),
        "fds_other": trend(hours, other),
        "threads": trend(hours, threads),
    })  # fmt: skip
    return summary


def judge(errors: Json, restarts: int, procs: Json, p99: Json) -> dict[str, bool]:
    """Each acceptance criterion of issue #17 as a boolean, and ``passed``: all of them."""
    measured = [p for p in procs.values() if "fds" in p]
    workers = [p for p in measured if p["role"] == "worker" and p["lasted"]]
    ratio = p99["ratio_last_over_first"]
    fds, threads = ([abs(p[key]["drift"]) for p in measured] for key in ("fds_other", "threads"))
    checks = {
        "zero_errors": errors["total"] == 0,
        "no_worker_restarts": restarts == 0 and all(p["lasted"] for p in procs.values()),
        "rss_growth_under_10pct": bool(workers)
        and max(p["rss_growth_pct"] for p in workers) < LIMITS["rss_growth_pct"],
        "fds_flat": bool(fds) and max(fds) <= LIMITS["fd_drift"],
        "threads_flat": bool(threads) and max(threads) <= LIMITS["thread_drift"],
        "p99_last_within_20pct_of_first": ratio is not None and ratio <= LIMITS["p99_ratio"],
    }
    checks = {name: bool(ok) for name, ok in checks.items()}
    checks["passed"] = all(checks.values())
    return checks


def feedback_rows(db: Path) -> int | None:
    """Rows in the server's feedback log once it has stopped (None when it cannot be read)."""
    with contextlib.suppress(sqlite3.Error), contextlib.closing(sqlite3.connect(db)) as connection:
        return int(connection.execute("SELECT COUNT(*) FROM feedback").fetchone()[0])
    return None


def print_checks(report: Json) -> None:
    """One line per check: PASS or FAIL, and the figures behind it."""
    procs, p99, err = report["processes"], report["p99"], report["errors"]
    drift = {
        key: max((abs(p[key]["drift"]) for p in procs.values() if key in p), default=math.nan)
        for key in ("fds_other", "threads")
    }
    growth = [f"{name} {p['rss_growth_pct']:+.1f}%" for name, p in procs.items() if "rss_growth_pct" in p]
    p_first, p_last, ratio = (
        p99[key] or math.nan for key in ("p99_first_ms", "p99_last_ms", "ratio_last_over_first")
    )
    why = {
        "zero_errors": f"{err['total']} errors in {report['requests']} requests (429 {err['http_429']}, "
        f"5xx {err['http_5xx']}, timeouts {err['timeouts']}, "
        f"connection {err['connection_refused'] + err['connection_lost']})",
        "no_worker_restarts": f"{report['worker_restarts']} restarts",
        "rss_growth_under_10pct": f"RSS after warm-up to the end: {', '.join(growth) or 'not measured'}",
        "fds_flat": f"largest drift of other fds {drift['fds_other']:.1f} (limit {LIMITS['fd_drift']:g})",
        "threads_flat": f"largest thread drift {drift['threads']:.1f} (limit {LIMITS['thread_drift']:g})",
        "p99_last_within_20pct_of_first": f"p99 first {p_first:.1f} ms, last {p_last:.1f} ms, "
        f"ratio {ratio:.2f}",
    }
    for name, ok in report["checks"].items():
        if name != "passed":
            print(f"soak check {name}: {'PASS' if ok else 'FAIL'}: {why[name]}")
    print(f"soak: {'PASSED' if report['checks']['passed'] else 'FAILED'} -> {report['out']}")


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="Length of the soak.")
    parser.add_argument("--share", type=float, default=0.7, help="Offered rate as a share of capacity.")
    parser.add_argument("--feedback-share", type=float, default=0.2, help="Share that is feedback.")
    parser.add_argument("--warmup-s", type=float, default=120.0, help="RSS, fd, thread baselines from.")
    parser.add_argument("--window-s", type=float, default=300.0, help="First and last p99 windows.")
    parser.add_argument("--bucket-s", type=float, default=60.0, help="Width of the latency series' buckets.")
    parser.add_argument("--sample-s", type=float, default=10.0, help="Period of the process samples.")
    parser.add_argument("--probe-s", type=float, default=20.0, help="Closed-loop capacity probe.")
    parser.add_argument("--timeout-s", type=float, default=2.0, help="When a client gives up.")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-monitor", action="store_true", help="Serve without the live monitors.")
    parser.add_argument("--data", default="shopsim", help="Data to train on (recdrill train --data).")
    parser.add_argument("--out", type=Path, default=RESULTS)
    return parse_args(parser, QUICK)


def soak(args: argparse.Namespace, work: Path) -> tuple[Json, Tally, Sampler]:
    """Train, start the server, probe its capacity, soak it: the run's figures, its outcomes and its
    process samples."""
    model_dir = work / "itemknn"
    train_itemknn(args.data, model_dir)
    mix = Mix(model_dir, args.feedback_share)
    extra = ["--no-monitor"] if args.no_monitor else []
    server = start_server_with_env(model_dir, work / "state", {}, workers=args.workers, extra_args=extra)
    tally, sampler = Tally(args.bucket_s), Sampler(server)
    try:
        url = ("127.0.0.1", server.port)
        asyncio.run(probe(url, mix, 1.0))  # warm-up
        capacity = asyncio.run(probe(url, mix, args.probe_s))
        rate = capacity * args.share
        print(f"capacity {capacity:.0f} req/s, soak at {rate:.0f} for {args.minutes:g} min", file=sys.stderr)
        stale = asyncio.run(offer(url, rate, args.minutes * 60.0, mix, tally, sampler, args))
    finally:
        server.stop()
    feedback = {
        "share": args.feedback_share,
        "posted": sum(tally.statuses["feedback"].values()),
        "acknowledged": tally.statuses["feedback"][200],
        "rows_in_log_probe_included": feedback_rows(work / "state" / "feedback.db"),
    }
    figures = {"capacity_rps": capacity, "offered_rps": rate, "stale_connection_resends": stale}
    return {**figures, "feedback": feedback}, tally, sampler


def main() -> None:
    args = parse()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="recdrill-soak-") as tmp:
        figures, tally, sampler = soak(args, Path(tmp))
    duration_s = args.minutes * 60.0
    end_s = max((s["rows"][-1][0] for s in sampler.series.values() if s["rows"]), default=duration_s)
    n_buckets = max(1, math.ceil(duration_s / args.bucket_s - 1e-9))
    errors = errors_by_kind(tally)
    p99 = p99_windows(tally, n_buckets, args.window_s)
    procs = {
        f"{s['role']}-{pid}": process_summary(s, args.warmup_s, end_s) for pid, s in sampler.series.items()
    }
    report = {
        "checks": judge(errors, sampler.restarts, procs, p99),
        **figures,
        "share": args.share,
        "duration_s": duration_s,
        "requests": sum(sum(c.values()) for c in tally.statuses.values()),
        "ok": sum(c[200] for c in tally.statuses.values()),
        "errors": errors,
        "p99": p99,
        "series": bucket_series(tally, n_buckets, sampler.cpu),
        "cpu": sampler.cpu.summary(),
        "worker_restarts": sampler.restarts,
        "processes": procs,
        "samples": {f"{s['role']}-{pid}": s for pid, s in sampler.series.items()},
        "settings": {key: value for key, value in vars(args).items() if key != "out"},
        "limits": LIMITS,
        "probe_concurrency": PROBE_CONCURRENCY,
        **common.model_settings(args.data, load_before),
        "out": str(args.out),
    }
    common.write_report(args.out, report)
    print_checks(report)
    cpu = report["cpu"]
    if "other_cores_mean" in cpu:
        print(
            f"soak cpu: server and client {cpu['ours_cores_mean']:.2f} cores, other processes "
            f"{cpu['other_cores_mean']:.2f} (busiest sample {cpu['other_cores_max_interval']:.2f}), "
            f"stolen {cpu['steal_cores_mean']:.2f}, of {cpu['cores']}"
        )


if __name__ == "__main__":
    run_main(main)
