"""Anomaly rule throughput: events per second per core of ``update``, against straightforward code.

A live monitor hands the rules one second of feedback at a time. This feeds a shop of 1,000 events/s
(20,000 users at their own rates, 5,000 Zipf-popular items, a third of events clicks) in one-second
batches, with a scraper (5 events/s for 20 s) and a poisoned item (3 accounts, 2 clicks/s for a
minute) injected, and times each rule. Side by side in the same run, on the same batches:

* user rule baseline: the textbook streaming code, a Python loop over events with a deque of recent
  times per user and one for all traffic (the same rule, event by event);
* item rule baseline: the window recomputed from scratch with pandas at every batch (``groupby``:
  clicks and distinct users per item), then the same Poisson and distinct-share tests against the
  same reference rates.

Both sides must agree on what they flag (checked and reported). Rules and baselines alternate in
rounds (AB, BA) so a busy machine slows both alike. Single core: ``OMP_NUM_THREADS=1`` is set before
numpy loads. Writes ``benchmarks/results/anomaly_throughput.json`` (``results/quick/`` with
``--quick``, a smoke run that never overwrites the real figures).

    .venv/bin/python benchmarks/anomaly_throughput.py           # the real run (a few minutes)
    .venv/bin/python benchmarks/anomaly_throughput.py --quick   # a smoke run
"""

from __future__ import annotations

import os

if __name__ == "__main__":  # a script's setting, never an importer's (harness.py)
    for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_name] = "1"  # per-core figures: before numpy starts its thread pools

import argparse
import json
import platform
import time
from collections import defaultdict, deque
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import poisson

from harness import QUICK_HELP, quick_path, run_main
from recdrill.monitor.anomaly.monitor import EventBatch, ItemClickSpikeRule, UserBurstRule

RESULTS = Path(__file__).resolve().parent / "results"
FULL = {"seconds": 900, "rate": 1000, "rounds": 2}
QUICK = {"seconds": 420, "rate": 200, "rounds": 1}
N_USERS, N_ITEMS = 20_000, 5_000
KINDS = np.array(["view", "click", "cart"], dtype=object)


def traffic(seconds: int, rate: int, seed: int = 0) -> list[EventBatch]:
    """One batch per second of event time, attacks included."""
    rng = np.random.default_rng(seed)
    n = seconds * rate
    weights = rng.gamma(2.0, 1.0, N_USERS)
    users = np.char.add("u", rng.choice(N_USERS, n, p=weights / weights.sum()).astype(str)).astype(object)
    popularity = 1.0 / np.arange(1, N_ITEMS + 1)
    items = np.char.add("i", rng.choice(N_ITEMS, n, p=popularity / popularity.sum()).astype(str)).astype(
        object
    )
    ts = np.sort(rng.uniform(0, seconds, n))
    kinds = rng.choice(KINDS, n)
    attack_at = seconds - 90.0
    bot_ts = attack_at + np.arange(100) / 5
    k = np.arange(120)
    users = np.concatenate([users, ["bot"] * 100, np.array(["b0", "b1", "b2"], dtype=object)[k % 3]])
    items = np.concatenate([items, ["i1"] * 100, ["poison"] * 120])
    kinds = np.concatenate([kinds, ["view"] * 100, ["click"] * 120])
    ts = np.concatenate([ts, bot_ts, attack_at + k / 2])
    order = np.argsort(ts, kind="stable")
    users, items, kinds, ts = users[order], items[order], kinds[order], ts[order]
    cuts = np.searchsorted(ts, np.arange(1, seconds))
    return [
        EventBatch.create(u, i, e, t)
        for u, i, e, t in zip(*(np.split(a, cuts) for a in (users, items, kinds, ts)), strict=True)
    ]


def rule_users(batches: list[EventBatch]) -> set[str]:
    detector = UserBurstRule()
    found: set[str] = set()
    for batch in batches:
        detector.update(batch)
        found |= {f.key for f in detector.flags}
    return found


def baseline_users(batches: list[EventBatch]) -> set[str]:
    """The same rule, event by event, as one would first write it."""
    d = UserBurstRule()
    recent: dict[str, deque[float]] = defaultdict(deque)
    everyone: deque[float] = deque()
    found: set[str] = set()
    for batch in batches:
        for user, t in zip(batch.users.tolist(), batch.ts.tolist(), strict=True):
            mine = recent[user]
            mine.append(t)
            everyone.append(t)
            while mine[0] <= t - d.window_s:
                mine.popleft()
            while everyone[0] <= t - d.window_s:
                everyone.popleft()
            share = len(everyone) >= d.min_window_events and len(mine) > d.max_share * len(everyone)
            if len(mine) > d.max_events or share:
                found.add(user)
    return found


def rule_items(batches: list[EventBatch]) -> set[str]:
    detector = ItemClickSpikeRule()
    found: set[str] = set()
    for batch in batches:
        detector.update(batch)
        found |= {f.key for f in detector.flags}
    return found


def baseline_items(batches: list[EventBatch]) -> set[str]:
    """The window rebuilt with pandas every second; reference rates from the same decayed counts."""
    d = ItemClickSpikeRule()
    frames: deque[pd.DataFrame] = deque()
    reference: dict[str, float] = defaultdict(float)  # decayed counts as of time 0
    start = float(batches[0].ts.min())
    found: set[str] = set()
    for batch in batches:
        clicks = batch.events == "click"
        frames.append(
            pd.DataFrame({"item": batch.items[clicks], "user": batch.users[clicks], "ts": batch.ts[clicks]})
        )
        now = float(batch.ts.max())
        edge = now - d.window_s
        while frames and (frames[0].empty or frames[0]["ts"].max() <= edge):
            old = frames.popleft()
            weights = np.exp((old["ts"].to_numpy() - start) / d.reference_s)
            for item, weight in zip(old["item"], weights, strict=True):
                if item not in found:  # flagged clicks stay out of the reference (approximately)
                    reference[item] += weight
        if now - start < d.min_reference_s:
            continue
        window = pd.concat(frames)
        window = window[window["ts"] > edge]
        stats = window.groupby("item").agg(clicks=("user", "size"), users=("user", "nunique"))
        stats = stats[stats["clicks"] >= d.min_clicks]
        seen = -np.expm1(-(edge - start) / d.reference_s)
        decay = np.exp(-(edge - start) / d.reference_s)
        rate = np.array([reference[i] for i in stats.index]) * decay / (d.reference_s * seen)
        expected = np.maximum(rate * d.window_s, d.min_expected)
        hit = (poisson.sf(stats["clicks"] - 1, expected) < d.p_value) & (
            stats["users"] < d.max_distinct_share * stats["clicks"]
        )
        found |= set(stats.index[hit.to_numpy()])
    return found


def timed(function: Any, batches: list[EventBatch]) -> tuple[float, set[str]]:
    began = time.process_time()
    found = function(batches)
    return time.process_time() - began, found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=QUICK_HELP)
    quick = parser.parse_args().quick
    plan = QUICK if quick else FULL
    batches = traffic(plan["seconds"], plan["rate"])
    events = sum(b.size for b in batches)
    report: dict[str, Any] = {
        "quick": quick,
        "plan": plan,
        "events": events,
        "machine": platform.processor() or platform.machine(),
    }
    pairs = {"user_burst": (rule_users, baseline_users), "item_click_spike": (rule_items, baseline_items)}
    for kind, (rule, baseline) in pairs.items():
        seconds = {"rule": [], "baseline": []}
        for round_ in range(plan["rounds"]):
            order = [("rule", rule), ("baseline", baseline)]
            for name, function in order if round_ % 2 == 0 else order[::-1]:
                spent, found = timed(function, batches)
                seconds[name].append(spent)
                report.setdefault(kind, {})[f"{name}_flagged"] = sorted(found)
        best = {name: min(values) for name, values in seconds.items()}
        entry = report[kind]
        entry.update(
            rule_events_per_s=events / best["rule"],
            baseline_events_per_s=events / best["baseline"],
            speedup=best["baseline"] / best["rule"],
            agree=entry["rule_flagged"] == entry["baseline_flagged"],
        )
        print(
            f"{kind}: {entry['rule_events_per_s']:,.0f} events/s vs baseline "
            f"{entry['baseline_events_per_s']:,.0f} ({entry['speedup']:.1f}x); "
            f"flagged {entry['rule_flagged']} (baseline agrees: {entry['agree']})"
        )
    out = quick_path("anomaly_throughput.json") if quick else RESULTS / "anomaly_throughput.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    run_main(main)
