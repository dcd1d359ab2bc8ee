"""Benchmark ShopSim: the full 10k items x 20k users x 500k events shop against its 60 s budget.

A small shop (500 items, 300 users, 5k events) runs alongside as a baseline, so fixed costs and
per-event costs can be told apart. Two full-size runs with the same seed must give identical arrays;
the script exits non-zero when they do not.

Usage:
    .venv/bin/python benchmarks/bench_shopsim.py [--repeats 3] [--output benchmarks/results/shopsim.json]
    .venv/bin/python benchmarks/bench_shopsim.py --quick   # a smoke run: a 20k-event "full" shop, 2 runs
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from harness import parse_args, quick_path, run_main
from recdrill.data.dataset import Dataset
from recdrill.data.shopsim import ShopSim, ShopSimConfig

BUDGET_S = 60.0
RESULTS = Path(__file__).resolve().parent / "results" / "shopsim.json"
CONFIGS = {
    "full": ShopSimConfig(),
    "small": ShopSimConfig(n_items=500, n_users=300, n_events=5_000),
}
QUICK_CONFIGS = {**CONFIGS, "full": ShopSimConfig(n_items=1000, n_users=1000, n_events=20_000)}
QUICK = {"repeats": 2, "output": quick_path("shopsim.json")}


def time_generation(config: ShopSimConfig, repeats: int) -> tuple[list[float], list[Dataset]]:
    """Seconds per run of ``ShopSim(config).generate()`` and the datasets (kept for the determinism check)."""
    seconds, datasets = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        datasets.append(ShopSim(config).generate())
        seconds.append(time.perf_counter() - start)
    return seconds, datasets


def differing_columns(a: Dataset, b: Dataset) -> list[str]:
    """Names of the arrays that differ between two datasets (empty when identical)."""
    pairs: dict[str, tuple[Any, Any]] = {"user_ids": (a.user_ids, b.user_ids)}
    for column in ("user", "item", "timestamp", "event", "query", "price"):
        pairs[f"interactions.{column}"] = (getattr(a.interactions, column), getattr(b.interactions, column))
    for column in ("item_ids", "title", "category", "category_parent", "brand", "price"):
        pairs[f"catalog.{column}"] = (getattr(a.catalog, column), getattr(b.catalog, column))
    if a.catalog.attributes is not None and b.catalog.attributes is not None:
        pairs["catalog.attributes"] = (a.catalog.attributes.values, b.catalog.attributes.values)
    if a.judgements is not None and b.judgements is not None:
        for column in ("query", "item", "grade"):
            pairs[f"judgements.{column}"] = (getattr(a.judgements, column), getattr(b.judgements, column))
    differ = [name for name, (x, y) in pairs.items() if not np.array_equal(x, y)]
    if a.queries != b.queries:
        differ.append("queries")
    if (a.catalog.category_names, a.catalog.brand_names) != (b.catalog.category_names, b.catalog.brand_names):
        differ.append("catalog names")
    return differ


def summarise(name: str, config: ShopSimConfig, seconds: list[float]) -> dict[str, Any]:
    median = statistics.median(seconds)
    return {
        "name": name,
        "n_items": config.n_items,
        "n_users": config.n_users,
        "n_events": config.n_events,
        "repeats": len(seconds),
        "seconds": [round(s, 4) for s in seconds],
        "best_s": round(min(seconds), 4),
        "median_s": round(median, 4),
        "events_per_s": round(config.n_events / median),
        "budget_ratio": round(median / BUDGET_S, 5),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per config (at least 2)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parse_args(parser, QUICK, argv)
    repeats = max(2, args.repeats)  # the determinism check needs two full-size runs
    configs = QUICK_CONFIGS if args.quick else CONFIGS

    rows, deterministic = [], True
    for name, config in configs.items():
        seconds, datasets = time_generation(config, repeats)
        rows.append(summarise(name, config, seconds))
        if name == "full":
            differ = differing_columns(datasets[0], datasets[1])
            deterministic = not differ
            if differ:
                print(f"NOT DETERMINISTIC at full size: {', '.join(differ)} differ", file=sys.stderr)
        del datasets

    print(f"{'config':<7} {'items':>7} {'users':>7} {'events':>9} {'median s':>9} {'best s':>8} "
          f"{'events/s':>11} {'of 60 s':>8}")  # fmt: skip
    for row in rows:
        print(f"{row['name']:<7} {row['n_items']:>7,} {row['n_users']:>7,} {row['n_events']:>9,} "
              f"{row['median_s']:>9.3f} {row['best_s']:>8.3f} {row['events_per_s']:>11,} "
              f"{row['budget_ratio']:>8.2%}")  # fmt: skip
    print(f"full-size determinism (same seed, two runs): {'identical' if deterministic else 'DIFFERENT'}")

    result = {
        "benchmark": "shopsim",
        "budget_s": BUDGET_S,
        "deterministic_full_size": deterministic,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "cpus": os.cpu_count(),
        },
        "quick": args.quick,
        "full_config": asdict(configs["full"]),
        "runs": rows,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.output}")
    over_budget = rows[0]["median_s"] > BUDGET_S
    return 0 if deterministic and not over_budget else 1


if __name__ == "__main__":
    run_main(main)
