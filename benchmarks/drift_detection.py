"""Live drift monitoring on ShopSim: false alerts over an hour of stationary traffic, and how many
requests an injected taste shift or price shock takes to detect.

Each scenario is one seeded shop whose drift starts halfway through its 30 days
(``DriftConfig.start=0.5``); the monitor's models are trained on the first 40% of the timeline
(``recdrill.monitor.replay.shop``). Two phases, replayed through a real ``LiveMonitor`` on a
simulated clock at the same request rate:

1. the stationary hour: requests drawn at random from the reference period itself, so every alert
   is a false alarm (the acceptance: 0);
2. the live hour: the events of 40%-60% of the timeline in time order, drift starting halfway.

An alert is a feature's drift flag held for 10 minutes (the alert rule's ``for:``). The baseline,
in the same run, is the same shop without drift (``no_drift``): what it flags in the live hour is
the shop's own slow change (its users age), not the injected drift.

Run: ``python benchmarks/drift_detection.py`` (a few minutes); writes
``benchmarks/results/drift_detection.json``. ``--quick``: a smoke run (a small shop, 10 minutes of
each phase) into ``benchmarks/results/quick/``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

if __name__ == "__main__":  # a script's setting, never an importer's (harness.py)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

from harness import QUICK_HELP, quick_path, run_main
from recdrill.data.shopsim import ShopSim
from recdrill.data.shopsim.config import DriftConfig
from recdrill.monitor.replay.shop import replay_shop

RESULTS = Path(__file__).parent / "results" / "drift_detection.json"
FULL: dict[str, Any] = {
    "shop": {"n_items": 3000, "n_users": 8000, "n_events": 400_000, "days": 30, "seed": 11},
    "stationary_s": 3600.0,  # the stationary hour
    "live_s": 3600.0,  # then 40%-60% of the timeline in time order; drift starts halfway
}
QUICK: dict[str, Any] = {
    "shop": {"n_items": 300, "n_users": 1000, "n_events": 30_000, "days": 30, "seed": 11},
    "stationary_s": 600.0,
    "live_s": 600.0,
}
SCENARIOS = {
    "no_drift": DriftConfig(start=0.5),
    "taste_shift": DriftConfig(start=0.5, taste_shift=0.5),
    "price_shock": DriftConfig(start=0.5, price_shock=1.5, price_shock_share=0.25),
}


def run_scenario(name: str, drift: DriftConfig, plan: dict[str, Any]) -> dict[str, Any]:
    began = time.perf_counter()
    stationary_s = plan["stationary_s"]
    sim = ShopSim(**plan["shop"], drift=drift)
    shop = sim.generate()
    start, span = sim.config.start_date, sim.config.days * 86_400
    train_end, stop = start + int(0.4 * span), start + int(0.6 * span)
    result = replay_shop(
        shop,
        train_end=train_end,
        stop=stop,
        stationary_s=stationary_s,
        live_s=plan["live_s"],
        onset=sim.config.drift_time,
    )
    onset_s = result.onset_s or 0.0
    stationary_passes = sum(1 for t in result.pass_times if t <= stationary_s)
    onset_requests = result.requests_until(onset_s)
    return {
        "scenario": name,
        "drift": dataclasses.asdict(drift),
        "requests": result.requests,
        "requests_stationary": result.requests_until(stationary_s),
        "requests_per_s": result.requests_until(stationary_s) / stationary_s,
        "onset_s": onset_s,
        "passes": result.passes,
        "stationary_alerts": [a for a in result.alerts if a[1] <= stationary_s],
        "stationary_flagged_pass_share": {
            f: sum(flags[:stationary_passes]) / max(1, stationary_passes) for f, flags in result.flags.items()
        },
        "live_alerts_before_onset": [a for a in result.alerts if stationary_s < a[1] < onset_s],
        "alerts_after_onset": [
            {
                "feature": f,
                "seconds_after_onset": t - onset_s,
                "requests_after_onset": result.requests_until(t) - onset_requests,
            }
            for f, t in result.alerts
            if t >= onset_s
        ],
        "first_flag_after_onset": {
            f: {
                "seconds": s,
                "requests": result.requests_until(onset_s + s) - onset_requests,
            }
            for f, s in sorted(result.first_flag.items(), key=lambda kv: kv[1])
        },
        "post_onset_flagged_pass_share": {
            f: _share_after(result.pass_times, flags, onset_s) for f, flags in result.flags.items()
        },
        "monitor_pass_ms": result.pass_ms,
        "wall_s": time.perf_counter() - began,
    }


def _share_after(times: list[float], flags: list[bool], onset_s: float) -> float:
    after = [flag for t, flag in zip(times, flags, strict=True) if t >= onset_s]
    return float(np.mean(after)) if after else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=QUICK_HELP)
    quick = parser.parse_args().quick
    plan = QUICK if quick else FULL
    runs = [run_scenario(name, drift, plan) for name, drift in SCENARIOS.items()]
    for run in runs:
        print(
            f"{run['scenario']:12s} requests {run['requests']:6d}  stationary alerts "
            f"{len(run['stationary_alerts'])}  live alerts before onset {run['live_alerts_before_onset']}  "
            f"after onset {[(a['feature'], a['requests_after_onset']) for a in run['alerts_after_onset']]}"
        )
    out = quick_path(RESULTS.name) if quick else RESULTS
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "benchmark": "drift_detection",
                "quick": quick,
                "shop": plan["shop"],
                "stationary_seconds": plan["stationary_s"],
                "live_seconds": plan["live_s"],
                "machine": platform.processor() or platform.machine(),
                "runs": runs,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    run_main(main)
