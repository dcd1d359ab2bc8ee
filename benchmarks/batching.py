"""Micro-batching of model calls, on against off, under the same concurrent load in one run.

Two recdrill servers load the same saved ItemKNN (trained here on the default ShopSim: 10k items,
20k users, 500k events) and differ only in ``RECDRILL_BATCHING``: on, concurrent requests' histories
are scored together (up to ``--batch-max`` per model call, waiting at most ``--batch-wait-ms``); off,
each request's history is scored alone, still in the worker thread. Both get a 1 s deadline and a
high admission limit, so every answer comes from the primary model (checked: ``served_by``) and the
comparison is of the same work. They are driven one after the other, in alternating rounds, by the
same closed-loop load (``wrk`` when on PATH, else an asyncio httpx client) with ``--connections``
concurrent connections. Results: ``benchmarks/results/batching.json`` with ``on_rps``, ``off_rps``,
``ratio`` (on / off), p50/p99 of each, and the mean histories per model call.

Run: ``python benchmarks/batching.py [--duration 30] [--connections 32]``; ``--quick``: a smoke run
(seconds, a tiny shop) into ``benchmarks/results/quick/``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from common import (
    LoadResult,
    combine,
    drive,
    load_settings,
    metric_samples,
    model_settings,
    pick_tool,
    sample_users,
    schedule,
    served_by,
    start_server_with_env,
    train_itemknn,
    write_report,
)
from harness import QUICK_SHOP, parse_args, quick_path, run_main

RESULTS = Path(__file__).resolve().parent / "results" / "batching.json"
QUICK = {"duration": 2.0, "rounds": 2, "warmup": 0.5, "data": QUICK_SHOP, "out": quick_path("batching.json")}


def batch_stats(url: str) -> dict[str, float]:
    """Model calls and histories scored by the primary tier, from the server's metrics."""
    names = ("recdrill_model_batch_size_count", "recdrill_model_batch_size_sum")
    values = {s.name: s.value for s in metric_samples(url, *names) if s.labels.get("tier") == "primary"}
    calls, histories = (values.get(name, 0.0) for name in names)
    return {"model_calls": calls, "histories": histories, "mean_batch": histories / calls if calls else 0.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=30.0, help="Measured seconds per setting.")
    parser.add_argument("--rounds", type=int, default=4, help="Alternating rounds the duration is split in.")
    parser.add_argument("--warmup", type=float, default=3.0, help="Unmeasured seconds per setting first.")
    parser.add_argument("--connections", type=int, default=32, help="Concurrent connections.")
    parser.add_argument("--batch-max", type=int, default=16)
    parser.add_argument("--batch-wait-ms", type=float, default=1.0)
    parser.add_argument("--data", default="shopsim", help="Data to train on (recdrill train --data).")
    parser.add_argument("--tool", choices=["auto", "wrk", "httpx"], default="auto")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parse_args(parser, QUICK)
    tool = pick_tool(args.tool)
    load_before = os.getloadavg()

    with tempfile.TemporaryDirectory(prefix="recdrill-batching-") as tmp:
        work = Path(tmp)
        model_dir = work / "itemknn"
        train_itemknn(args.data, model_dir)
        users = sample_users(model_dir)
        # Both arms call the model in the worker thread: inline calls (a fast model's default) would
        # measure something else than batching.
        shared = {
            "RECDRILL_MAX_IN_FLIGHT": str(max(1024, 4 * args.connections)),
            "RECDRILL_INLINE_BELOW_MS": "0",
        }
        settings = {
            "on": {
                **shared,
                "RECDRILL_BATCHING": "on",
                "RECDRILL_BATCH_MAX": str(args.batch_max),
                "RECDRILL_BATCH_WAIT_MS": str(args.batch_wait_ms),
            },
            "off": {**shared, "RECDRILL_BATCHING": "off"},
        }
        servers = {
            name: start_server_with_env(model_dir, work / f"state-{name}", knobs, deadline_ms=1000.0)
            for name, knobs in settings.items()
        }
        rounds: dict[str, list[LoadResult]] = {name: [] for name in servers}
        try:
            for server in servers.values():
                drive(server.url, users, args.warmup, args.connections, tool, work)
            warm = {name: batch_stats(server.url) for name, server in servers.items()}
            for i, name in schedule(("on", "off"), args.rounds):
                print(f"round {i + 1}/{args.rounds}: batching {name} under {tool} ...", file=sys.stderr)
                url, seconds = servers[name].url, args.duration / args.rounds
                rounds[name].append(drive(url, users, seconds, args.connections, tool, work))
            tiers = {name: served_by(server.url) for name, server in servers.items()}
            stats = {name: batch_stats(server.url) for name, server in servers.items()}
        finally:
            for server in servers.values():
                server.stop()

    results = {name: combine(each) for name, each in rounds.items()}
    measured = {  # model calls during the measured rounds only (warm-up subtracted)
        name: {key: stats[name][key] - warm[name][key] for key in ("model_calls", "histories")}
        for name in stats
    }
    for each in measured.values():
        each["mean_batch"] = each["histories"] / each["model_calls"] if each["model_calls"] else 0.0
    report: dict[str, Any] = {
        "on_rps": results["on"].rps,
        "off_rps": results["off"].rps,
        "ratio": results["on"].rps / results["off"].rps,
        "on_p50_ms": results["on"].p50_ms,
        "on_p99_ms": results["on"].p99_ms,
        "off_p50_ms": results["off"].p50_ms,
        "off_p99_ms": results["off"].p99_ms,
        "p99_ratio": results["on"].p99_ms / results["off"].p99_ms,
        "on_mean_batch": measured["on"]["mean_batch"],
        "off_mean_batch": measured["off"]["mean_batch"],
        "on": asdict(results["on"]),
        "off": asdict(results["off"]),
        "rounds": {name: [asdict(r) for r in each] for name, each in rounds.items()},
        "model_calls": measured,
        "served_by": tiers,
        "batch_max": args.batch_max,
        "batch_wait_ms": args.batch_wait_ms,
        **load_settings(args, tool),
        "workers": 1,
        **model_settings(args.data, load_before),
    }
    write_report(args.out, report)

    print(f"{'batching':<10}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}{'batch':>8}")
    for name, r in results.items():
        print(
            f"{name:<10}{r.rps:>10.0f}{r.p50_ms:>10.2f}{r.p99_ms:>10.2f}{r.errors:>8}"
            f"{measured[name]['mean_batch']:>8.1f}"
        )
    print(f"ratio on/off = {report['ratio']:.3f} (rps), p99 on/off = {report['p99_ratio']:.3f}")
    print(f"served_by {tiers}")


if __name__ == "__main__":
    run_main(main)
