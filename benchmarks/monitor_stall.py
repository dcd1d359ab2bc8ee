"""How long a worker's background passes hold its event loop: the stall every request in flight waits.

Issue #17 found seconds-long stalls in ``make demo`` beside a CPU-burning process and suspected the
server's periodic work. A server runs three kinds of it beside its requests, each in a thread
(``asyncio.to_thread``), so the event loop only shares the GIL with them:

* ``drift_pass``: the live drift monitor's pass over a full window (``--window`` recommend answers
  and as many feedback events buffered since the last pass: what a burst leaves behind);
* ``drift_reference``: its rebuild of the reference after a reload (2,000 reference histories
  scored by the primary and the fallback);
* ``anomaly_poll``: the anomaly monitor's poll over ``--window`` new feedback rows in SQLite.

For each, an asyncio task on the same loop asks for a 1 ms timer again and again while the pass
runs, and records how late each fired (the loop lag a request would have seen; the same measure as
the server's own ``recdrill_event_loop_lag_seconds``). Side by side, in the same run and rounds,
the **baseline** is the same timer with no pass running. Reported per kind: pass duration, lag p50,
p99 and max during passes, the baseline's, and their differences.

``--burners N`` runs the whole measurement again beside N processes spinning on the CPU (a noisy
neighbour); its figures are reported next to the quiet ones.

Run: ``python benchmarks/monitor_stall.py [--rounds 5] [--burners 1]`` (about a minute), writes
``benchmarks/results/monitor_stall.json``; ``--quick``: a smoke run into ``results/quick/``.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry

from common import write_report
from harness import parse_args, quick_path, run_main
from recdrill.data.dataset import Dataset
from recdrill.data.loading import load_dataset
from recdrill.data.snapshot import ShopSnapshot
from recdrill.monitor.anomaly.monitor import AnomalyMonitor
from recdrill.monitor.anomaly.watch import anomaly_watch  # noqa: F401  (what a worker loads first)
from recdrill.monitor.live import LiveMonitor, LiveMonitorConfig
from recdrill.monitor.replay.shop import HISTORY_LENGTH, observe_events, train_models
from recdrill.serving.feedback.log import FeedbackLog
from recdrill.serving.feedback.schema import FeedbackEvent
from recdrill.serving.observers import ObserverContext, ServedModels

RESULTS = Path(__file__).resolve().parent / "results" / "monitor_stall.json"
TIMER_S = 0.001
QUICK = {"data": "shopsim:n_items=500,n_users=400,n_events=8000", "window": 500, "rounds": 2, "burners": 0}


def _burn() -> None:
    while True:
        pass


@contextmanager
def burners(n: int) -> Iterator[None]:
    """``n`` processes spinning on the CPU for the duration of the block."""
    procs = [multiprocessing.Process(target=_burn, daemon=True) for _ in range(n)]
    for proc in procs:
        proc.start()
    try:
        yield
    finally:
        for proc in procs:
            proc.terminate()
            proc.join()


async def _probe(stop: asyncio.Event, lags: list[float]) -> None:
    while not stop.is_set():
        asked = time.perf_counter()
        await asyncio.sleep(TIMER_S)
        lags.append(time.perf_counter() - asked - TIMER_S)


async def lag_during(work: Callable[[], object] | None, idle_s: float) -> tuple[float, list[float]]:
    """Run ``work`` in a thread (or sleep ``idle_s`` when None) beside the timer probe."""
    stop, lags = asyncio.Event(), []
    probe = asyncio.create_task(_probe(stop, lags))
    began = time.perf_counter()
    if work is None:
        await asyncio.sleep(idle_s)
    else:
        await asyncio.to_thread(work)
    spent = time.perf_counter() - began
    stop.set()
    await probe
    return spent, lags


class Workload:
    """The three passes of one shop, each callable again and again with fresh input."""

    def __init__(self, dataset: Dataset, window: int, state: Path, seed: int = 0) -> None:
        self.dataset, self.window = dataset, window
        stamps = dataset.interactions.timestamp
        self.train_end = int(np.quantile(stamps, 0.8))
        self.train, self.primary, self.fallback = train_models(dataset, self.train_end)
        self.served = self._served()
        config = LiveMonitorConfig(window=window, min_current=min(300, window))
        context = ObserverContext(CollectorRegistry(), state, lambda: self.served)
        self.monitor = LiveMonitor(context, config)
        self.monitor.process(now=0.0)  # the first reference, outside the timing
        self.live = np.flatnonzero(stamps >= self.train_end)
        self.rng = np.random.default_rng(seed)
        self.log = FeedbackLog(state / "feedback.db", sealer=None)
        self.anomaly = AnomalyMonitor(self.log, CollectorRegistry())
        self.now = time.time()

    def _served(self) -> ServedModels:
        snapshot = ShopSnapshot.from_dataset(self.train, HISTORY_LENGTH)
        return ServedModels(uuid.uuid4().hex, snapshot, self.primary, self.fallback)

    def prepare(self, kind: str) -> Callable[[], object]:
        """Fill what ``kind``'s pass will work through, outside the timing; return the pass."""
        if kind == "drift_pass":
            batch = self.rng.choice(self.live, self.window)
            observe_events(self.dataset, self.monitor, self.served, batch, 1.0)
            return lambda: self.monitor.process(now=1.0)
        if kind == "drift_reference":
            self.served = self._served()  # a reload: a new snapshot object
            return lambda: self.monitor.process(now=2.0)
        users = self.rng.integers(0, 5_000, self.window)
        items = self.rng.integers(0, 500, self.window)
        for i, (user, item) in enumerate(zip(users.tolist(), items.tolist(), strict=True)):
            self.log.append(FeedbackEvent(f"u{user}", f"i{item}", "click", self.now + i * 1e-3))
        self.now += self.window * 1e-3
        return self.anomaly.poll

    def close(self) -> None:
        self.log.close()


def summary(values: list[float]) -> dict[str, float]:
    ms = np.asarray(values, dtype=np.float64) * 1000.0
    if not len(ms):
        return {"n": 0}
    return {
        "n": len(ms),
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "max_ms": round(float(ms.max()), 3),
    }


async def measure(workload: Workload, rounds: int) -> dict[str, Any]:
    kinds = ("drift_pass", "drift_reference", "anomaly_poll")
    durations: dict[str, list[float]] = {kind: [] for kind in kinds}
    lags: dict[str, list[float]] = {kind: [] for kind in (*kinds, "baseline")}
    for _ in range(rounds):
        for kind in kinds:
            work = workload.prepare(kind)
            spent, seen = await lag_during(work, 0.0)
            durations[kind].append(spent)
            lags[kind].extend(seen)
            _, idle = await lag_during(None, spent)  # the baseline, as long, right after
            lags["baseline"].extend(idle)
    base = summary(lags["baseline"])
    report: dict[str, Any] = {"baseline": base}
    for kind in kinds:
        lag = summary(lags[kind])
        report[kind] = {
            "pass_ms": summary(durations[kind]),
            "lag": lag,
            "extra_p99_ms": round(lag["p99_ms"] - base["p99_ms"], 3),
            "extra_max_ms": round(lag["max_ms"] - base["max_ms"], 3),
        }
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="shopsim")
    parser.add_argument("--window", type=int, default=5000, help="observations per pass (a full window)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--burners", type=int, default=1, help="CPU burners of the second run (0: none)")
    args = parse_args(parser, QUICK)
    out = quick_path("monitor_stall.json") if args.quick else RESULTS
    dataset = load_dataset(args.data)
    result: dict[str, Any] = {"settings": vars(args), "timer_ms": TIMER_S * 1000.0}
    with tempfile.TemporaryDirectory() as state:
        workload = Workload(dataset, args.window, Path(state))
        try:
            result["quiet"] = asyncio.run(measure(workload, args.rounds))
            if args.burners:
                with burners(args.burners):
                    result[f"beside_{args.burners}_burners"] = asyncio.run(measure(workload, args.rounds))
        finally:
            workload.close()
    for run, figures in result.items():
        if isinstance(figures, dict) and "baseline" in figures:
            for kind in ("drift_pass", "drift_reference", "anomaly_poll"):
                row = figures[kind]
                print(
                    f"{run:>18} {kind:>16}: pass p50 {row['pass_ms']['p50_ms']:7.1f} ms, loop lag p99 "
                    f"{row['lag']['p99_ms']:6.2f} max {row['lag']['max_ms']:6.2f} ms (baseline p99 "
                    f"{figures['baseline']['p99_ms']:.2f} max {figures['baseline']['max_ms']:.2f})"
                )
    write_report(out, result)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    run_main(main)
