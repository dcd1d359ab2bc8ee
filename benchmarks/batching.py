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

Run: ``python benchmarks/batching.py [--duration 30] [--connections 32]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from recdrill.cli import main as recdrill_main
from recdrill.data.snapshot import ShopSnapshot
from recdrill.serving.process import ServerProcess
from serving_overhead import LoadResult, combine, drive, machine, served_by

RESULTS = Path(__file__).resolve().parent / "results" / "batching.json"
N_USERS_CYCLED = 2000


def start_server(model_dir: Path, state: Path, knobs: dict[str, str]) -> ServerProcess:
    """A recdrill server whose workers see ``knobs`` (``recdrill serve`` has no flag for them)."""
    saved = {name: os.environ.get(name) for name in knobs}
    os.environ.update(knobs)
    try:
        return ServerProcess(
            model_dir, state, deadline_ms=1000.0, log_path=state.parent / f"{state.name}.log"
        ).start()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def batch_stats(url: str) -> dict[str, float]:
    """Model calls and histories scored by the primary tier, from the server's metrics."""
    text = httpx.get(url + "/metrics", timeout=10.0).text
    values = {
        s.name: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith("recdrill_model_batch_size_") and s.labels.get("tier") == "primary"
    }
    calls = values.get("recdrill_model_batch_size_count", 0.0)
    histories = values.get("recdrill_model_batch_size_sum", 0.0)
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
    args = parser.parse_args()
    tool = args.tool if args.tool != "auto" else ("wrk" if shutil.which("wrk") else "httpx")
    load_before = os.getloadavg()

    with tempfile.TemporaryDirectory(prefix="recdrill-batching-") as tmp:
        work = Path(tmp)
        model_dir = work / "itemknn"
        print(f"training itemknn on {args.data} ...", file=sys.stderr)
        if recdrill_main(["train", "--data", args.data, "--model", "itemknn", "--out", str(model_dir)]) != 0:
            raise SystemExit("training failed")
        snapshot = ShopSnapshot.load(model_dir)
        known = np.flatnonzero(snapshot.histories.lengths > 0)
        users = snapshot.user_ids[np.random.default_rng(0).permutation(known)[:N_USERS_CYCLED]].tolist()
        common = {"RECDRILL_MAX_IN_FLIGHT": str(max(1024, 4 * args.connections))}
        settings = {
            "on": {
                **common,
                "RECDRILL_BATCHING": "on",
                "RECDRILL_BATCH_MAX": str(args.batch_max),
                "RECDRILL_BATCH_WAIT_MS": str(args.batch_wait_ms),
            },
            "off": {**common, "RECDRILL_BATCHING": "off"},
        }
        servers = {
            name: start_server(model_dir, work / f"state-{name}", knobs) for name, knobs in settings.items()
        }
        rounds: dict[str, list[LoadResult]] = {name: [] for name in servers}
        try:
            for server in servers.values():
                drive(server.url, users, args.warmup, args, tool, work)
            warm = {name: batch_stats(server.url) for name, server in servers.items()}
            for i in range(args.rounds):
                for name in ("on", "off") if i % 2 == 0 else ("off", "on"):
                    print(f"round {i + 1}/{args.rounds}: batching {name} under {tool} ...", file=sys.stderr)
                    rounds[name].append(
                        drive(servers[name].url, users, args.duration / args.rounds, args, tool, work)
                    )
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
        "load_tool": tool,
        "duration_s": args.duration,
        "n_rounds": args.rounds,
        "connections": args.connections,
        "workers": 1,
        "data": args.data,
        "model": "itemknn",
        "machine": {**machine(), "loadavg_before": load_before, "loadavg_after": os.getloadavg()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")

    print(f"{'batching':<10}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}{'batch':>8}")
    for name, r in results.items():
        print(
            f"{name:<10}{r.rps:>10.0f}{r.p50_ms:>10.2f}{r.p99_ms:>10.2f}{r.errors:>8}"
            f"{measured[name]['mean_batch']:>8.1f}"
        )
    print(f"ratio on/off = {report['ratio']:.3f} (rps), p99 on/off = {report['p99_ratio']:.3f}")
    print(f"served_by {tiers}")


if __name__ == "__main__":
    main()
