"""A/B of two versions of recdrill's server: the same model and load, alternating rounds.

Each side is ``recdrill serve`` run from a source tree (``--before SRC`` and ``--after SRC``: the
``src`` folder of two checkouts, e.g. a ``git worktree`` of an older commit), one uvicorn worker, the
live monitor off, driven by the same closed-loop load (``wrk`` when on PATH, else the httpx client)
against ``POST /v1/recommend`` for known users. Rounds alternate the order so drift of the shared
machine falls on both sides. Results: ``benchmarks/results/code_ab.json`` with the ratio after/before.

Run: ``git worktree add /tmp/before 3b74dda && python benchmarks/code_ab.py --before /tmp/before/src
--after src --model runs/demo/model``. ``--quick``: a smoke run (2 rounds of 1 s) of the tree this
process imports recdrill from against itself, with an ItemKNN trained here on a tiny shop (each
option given still wins), into ``benchmarks/results/quick/``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import recdrill
from common import combine, drive, machine, pick_tool, sample_users, train_itemknn, write_report
from harness import QUICK_SHOP, parse_args, quick_path, run_main
from recdrill.serving.runtime.local_process import ServerProcess

RESULTS = Path(__file__).resolve().parent / "results" / "code_ab.json"
THIS_TREE = Path(recdrill.__file__).resolve().parents[1]  # the src folder recdrill is imported from
QUICK = {
    "before": THIS_TREE, "after": THIS_TREE, "rounds": 2, "duration": 1.0, "warmup": 0.5,
    "out": quick_path("code_ab.json"),
}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="src folder of the baseline (required)")
    parser.add_argument("--after", type=Path, help="src folder of the version measured (required)")
    parser.add_argument("--model", type=Path, help="a saved model folder with its snapshot (required)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=3.0, help="Unmeasured seconds per server first.")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--tool", choices=["auto", "wrk", "httpx"], default="auto")
    args = parse_args(parser, QUICK)
    missing = [f"--{name}" for name in ("before", "after", "model") if getattr(args, name) is None]
    if missing and not (args.quick and missing == ["--model"]):
        parser.error(f"the following arguments are required: {', '.join(missing)}")
    tool = pick_tool(args.tool)
    trees = {"before": args.before.resolve(), "after": args.after.resolve()}
    rounds: dict[str, list] = {name: [] for name in trees}
    loadavg = os.getloadavg()
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        if args.model is None:  # --quick without --model: a tiny ItemKNN, trained here
            args.model = work / "itemknn"
            train_itemknn(QUICK_SHOP, args.model)
        users = sample_users(args.model)
        for r in range(args.rounds):
            for name in ("before", "after") if r % 2 == 0 else ("after", "before"):
                os.environ["PYTHONPATH"] = str(trees[name])  # the server process imports this tree
                state = work / f"state-{name}-{r}"
                with ServerProcess(args.model, state, extra_args=["--no-monitor"]) as server:
                    drive(server.url, users, args.warmup, args.connections, tool, work)  # warm-up
                    result = drive(server.url, users, args.duration, args.connections, tool, work)
                rounds[name].append(result)
                print(f"round {r} {name}: {result.rps:.0f} req/s, p99 {result.p99_ms:.1f} ms", flush=True)
    combined = {name: combine(results) for name, results in rounds.items()}
    report = {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "trees": {name: str(path) for name, path in trees.items()},
        "model": str(args.model),
        "load": {"tool": tool, "connections": args.connections, "duration_s": args.duration},
        "machine": machine(loadavg),
        **{name: asdict(result) for name, result in combined.items()},
        "rounds_rps": {name: [r.rps for r in results] for name, results in rounds.items()},
        "ratio_rps_after_over_before": combined["after"].rps / combined["before"].rps,
        "ratio_p99_after_over_before": combined["after"].p99_ms / combined["before"].p99_ms,
    }
    write_report(args.out, report)
    print(f"after/before: {report['ratio_rps_after_over_before']:.3f} x throughput, "
          f"{report['ratio_p99_after_over_before']:.3f} x p99")  # fmt: skip


if __name__ == "__main__":
    run_main(main)
