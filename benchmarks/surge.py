"""A 5x traffic surge against recdrill with admission control, and the same surge without it.

A peak-day surge is open-loop: shoppers keep arriving whether or not the server keeps up. So the
load here is an open-loop Poisson-free schedule (one request every ``1 / rate`` seconds, sent on
time whatever the previous ones are doing; latency counts from the scheduled send time, so a client
stuck behind a slow server is not hidden). First a short closed-loop probe measures what the server
answers per second; the base rate is ``--base-share`` of that, and the surge is ``--multiplier``
times the base rate (well past capacity with the defaults): base for ``--base-s``, surge for
``--surge-s``, base again for ``--after-s``. A client gives up after ``--timeout-s``.

Two servers get the same schedule, one after the other, from the same saved ItemKNN (default
ShopSim): recdrill as configured (admission control: ``max_in_flight`` per worker, 429 beyond), and
the baseline, the same server with admission control effectively off (a limit of 100,000).

Results: ``benchmarks/results/surge.json``. Top-level keys describe the admission-controlled server
over the whole run: ``multiplier``, ``requests``, ``ok``, ``shed_429``, ``errors_5xx``,
``availability`` (share answered 200 or 429 within the timeout) and ``p99_ms`` (of requests answered
200); ``surge`` the same for the surge phase only; ``baseline_no_admission`` both for the baseline.

The load generator is the small HTTP/1.1 keep-alive client of ``light_client.py``: httpx costs about
a millisecond of CPU per request, too much to offer a surge from the same two cores.

Run: ``python benchmarks/surge.py [--multiplier 5] [--surge-s 20]``; ``--quick``: a smoke run (seconds,
a tiny shop) into ``benchmarks/results/quick/``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from common import (
    K,
    model_settings,
    percentile,
    sample_users,
    start_server_with_env,
    train_itemknn,
    write_report,
)
from harness import QUICK_SHOP, parse_args, quick_path, run_main
from light_client import LOST, REFUSED, TIMEOUT, Outcome, bodies, closed_loop, open_loop
from recdrill.serving.config import ServeConfig

RESULTS = Path(__file__).resolve().parent / "results" / "surge.json"
QUICK = {
    "base_s": 1.0, "surge_s": 2.0, "after_s": 1.0, "probe_s": 1.0, "data": QUICK_SHOP,
    "out": quick_path("surge.json"),
}  # fmt: skip


def summarise(outcomes: list[Outcome]) -> dict[str, Any]:
    statuses = np.array([o.status for o in outcomes])
    ok = statuses == 200
    latency_ms = np.array([o.latency_s for o in outcomes]) * 1000.0
    accepted, shed = latency_ms[ok], latency_ms[statuses == 429]
    n = len(outcomes)
    return {
        "requests": n,
        "ok": int(ok.sum()),
        "shed_429": int((statuses == 429).sum()),
        "errors_5xx": int((statuses >= 500).sum()),
        "timeouts": int((statuses == TIMEOUT).sum()),
        "client_refused": int((statuses == REFUSED).sum()),
        "connection_lost": int((statuses == LOST).sum()),
        "other_status": int(
            ((statuses > 0) & (statuses != 200) & (statuses != 429) & (statuses < 500)).sum()
        ),
        "availability": float((ok | (statuses == 429)).sum() / n) if n else 0.0,
        "p50_ms": percentile(accepted, 50),
        "p99_ms": percentile(accepted, 99),
        "max_ms": percentile(accepted, 100),
        "shed_p99_ms": percentile(shed, 99),  # how fast a 429 comes
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--multiplier", type=float, default=5.0, help="Surge rate / base rate.")
    parser.add_argument("--base-share", type=float, default=0.33, help="Base rate as a share of capacity.")
    parser.add_argument("--base-s", type=float, default=10.0)
    parser.add_argument("--surge-s", type=float, default=20.0)
    parser.add_argument("--after-s", type=float, default=10.0)
    parser.add_argument("--probe-s", type=float, default=5.0, help="Closed-loop capacity probe.")
    parser.add_argument("--timeout-s", type=float, default=1.0, help="When a client gives up.")
    parser.add_argument(
        "--max-in-flight", type=int, default=ServeConfig.max_in_flight, help="recdrill's admission limit."
    )
    parser.add_argument("--data", default="shopsim", help="Data to train on (recdrill train --data).")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parse_args(parser, QUICK)
    load_before = os.getloadavg()

    with tempfile.TemporaryDirectory(prefix="recdrill-surge-") as tmp:
        work = Path(tmp)
        model_dir = work / "itemknn"
        train_itemknn(args.data, model_dir)
        requests = bodies(sample_users(model_dir), K)

        runs: dict[str, dict[str, Any]] = {}
        capacity = 0.0
        for name, limit in (("recdrill", args.max_in_flight), ("baseline_no_admission", 100_000)):
            # The admission limit is read by the worker; ``recdrill serve`` has no flag for it.
            knobs = {"RECDRILL_MAX_IN_FLIGHT": str(limit)}
            server = start_server_with_env(model_dir, work / f"state-{name}", knobs)
            try:
                url = ("127.0.0.1", server.port)
                if not capacity:  # one capacity, measured on recdrill, sets both schedules
                    asyncio.run(closed_loop(url, requests, 1.0, 16))  # warm-up
                    capacity = asyncio.run(closed_loop(url, requests, args.probe_s, 16))
                    base = capacity * args.base_share
                    phases = [
                        ("base", base, args.base_s),
                        ("surge", base * args.multiplier, args.surge_s),
                        ("after", base, args.after_s),
                    ]
                    print(
                        f"capacity {capacity:.0f} req/s; base {base:.0f}, surge {base * args.multiplier:.0f}",
                        file=sys.stderr,
                    )
                print(f"{name}: surge x{args.multiplier:g} ...", file=sys.stderr)
                outcomes, stale_retries = asyncio.run(open_loop(url, phases, requests, args.timeout_s))
                time.sleep(1.0)
            finally:
                server.stop()
            runs[name] = {
                **summarise(outcomes),
                "surge": summarise([o for o in outcomes if o.phase == "surge"]),
                "after": summarise([o for o in outcomes if o.phase == "after"]),
                "stale_connection_resends": stale_retries,
            }

    ours = runs["recdrill"]
    report = {
        "multiplier": args.multiplier,
        **{key: ours[key] for key in ("requests", "ok", "shed_429", "errors_5xx", "availability", "p99_ms")},
        "timeouts": ours["timeouts"],
        "client_refused": ours["client_refused"],
        "stale_connection_resends": ours["stale_connection_resends"],
        "surge": ours["surge"],
        "after": ours["after"],
        "baseline_no_admission": runs["baseline_no_admission"],
        "availability_vs_baseline": ours["availability"]
        / max(runs["baseline_no_admission"]["availability"], 1e-9),
        "capacity_rps": capacity,
        "base_rps": capacity * args.base_share,
        "surge_rps": capacity * args.base_share * args.multiplier,
        "phases_s": {"base": args.base_s, "surge": args.surge_s, "after": args.after_s},
        "timeout_s": args.timeout_s,
        "max_in_flight": args.max_in_flight,
        "admission_wait_ms": ServeConfig.admission_wait_ms,
        "workers": 1,
        **model_settings(args.data, load_before),
    }
    write_report(args.out, report)

    print(
        f"{'server':<24}{'requests':>9}{'200':>8}{'429':>8}{'5xx':>6}{'timeout':>8}{'avail':>8}{'p99 ms':>9}"
    )
    for name, r in runs.items():
        p99 = f"{r['p99_ms']:.1f}" if r["p99_ms"] is not None else "-"
        print(
            f"{name:<24}{r['requests']:>9}{r['ok']:>8}{r['shed_429']:>8}{r['errors_5xx']:>6}"
            f"{r['timeouts']:>8}{r['availability']:>8.4f}{p99:>9}"
        )


if __name__ == "__main__":
    run_main(main)
