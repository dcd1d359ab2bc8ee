"""Drift detector throughput: values per second per core of ``update``, against recomputing from scratch.

Issue 7 asks for at least 1M values/s per core. Each 1-D detector gets batches of 1,000 values into
a full window of 10,000 (the window is filled first, so every timed update also evicts 1,000 values),
and ``drift_detected`` is read after each update, as a monitor would. Side by side in the same run,
the **baseline** keeps the same window as a plain array and recomputes the score from scratch on
each update with the textbook calls (``scipy.stats.ks_2samp(method="asymp")``,
``scipy.stats.wasserstein_distance``, and binning the whole window for the histogram methods).
Detectors and baselines alternate in rounds (AB, BA, ...) so that a busy machine slows both alike.

Reference sizes follow Evidently's rule for where each method is the default: KS and chi-square on
1,000 reference values, the distances on 100,000. Categorical data are strings (20 categories).
MMD is reported apart, in vectors/s (dimension 32, batches of 100 into a window of 1,000).

Single core: ``OMP_NUM_THREADS=1`` (and the BLAS equivalents) is set before numpy loads, and rates
are values per CPU second of this process (``time.process_time``), so a busy machine does not
lower them; rates per wall second are recorded beside them.
Writes ``benchmarks/results/drift_throughput.json`` (``results/quick/`` with ``--quick``, a smoke
run of a few seconds that never overwrites the real figures).

    .venv/bin/python benchmarks/drift_throughput.py           # the real run (about 2 minutes)
    .venv/bin/python benchmarks/drift_throughput.py --quick   # a smoke run
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import ks_2samp, wasserstein_distance

from harness import QUICK_HELP, quick_path, run_main
from recdrill.monitor.drift.bins import Binning
from recdrill.monitor.drift.defaults import METHODS
from recdrill.monitor.drift.detector import Detector

RESULTS = Path(__file__).resolve().parent / "results" / "drift_throughput.json"
TARGET = 1_000_000  # values/s per core (issue 7)
CATEGORIES = np.array([f"category-{i:02d}" for i in range(20)])

FULL = {
    "window": 10_000,
    "batch": 1_000,
    "seconds": 3.0,
    "rounds": 3,
    "small_ref": 1_000,
    "large_ref": 100_000,
}
QUICK = {
    "window": 10_000,
    "batch": 1_000,
    "seconds": 0.3,
    "rounds": 1,
    "small_ref": 1_000,
    "large_ref": 20_000,
}

# (name, method, data, reference size key)
CASES = [
    ("ks", "ks", "numeric", "small_ref"),
    ("wasserstein", "wasserstein", "numeric", "large_ref"),
    ("psi", "psi", "numeric", "large_ref"),
    ("kl", "kl", "numeric", "large_ref"),
    ("js", "js", "numeric", "large_ref"),
    ("js_categorical", "js", "categorical", "large_ref"),
    ("chi2_categorical", "chi2", "categorical", "small_ref"),
]


def sample(rng: np.random.Generator, kind: str, n: int) -> np.ndarray:
    return rng.normal(size=n) if kind == "numeric" else rng.choice(CATEGORIES, size=n)


class Baseline:
    """The same window as a plain array, the score recomputed from scratch on every update."""

    def __init__(self, detector: Detector, reference: np.ndarray, window: int) -> None:
        self.detector, self.reference, self.window = detector, reference, window
        self.current = reference[:0]
        self.score: Callable[[np.ndarray], float]
        if detector.method == "ks":
            self.score = lambda cur: float(ks_2samp(reference, cur, method="asymp").pvalue)
        elif detector.method == "wasserstein":
            norm = float(np.std(reference))
            self.score = lambda cur: float(wasserstein_distance(reference, cur)) / norm
        else:
            binning: Binning = detector.binning  # type: ignore[attr-defined]
            size, ref_counts = binning.n_bins, detector.reference_counts  # type: ignore[attr-defined]
            score_counts = detector.score_counts  # type: ignore[attr-defined]
            self.score = lambda cur: score_counts(ref_counts, np.bincount(binning.codes(cur), minlength=size))

    def update(self, batch: np.ndarray) -> bool:
        self.current = np.concatenate([self.current, batch])[-self.window :]
        return self.score(self.current) >= 0.0  # read the verdict, as the detector's caller does


def monitor(detector: Detector) -> Callable[[np.ndarray], bool]:
    """What a monitor does per batch: update, then read the verdict."""
    return lambda batch: detector.update(batch).drift_detected


def rate(
    update: Callable[[np.ndarray], Any], batches: list[np.ndarray], seconds: float
) -> tuple[float, float]:
    """Values per CPU second of this process, and per wall second, over passes through ``batches``.

    CPU time is the per-core figure: on a shared machine wall time also counts the time the
    scheduler gave to other processes, which says nothing about the detector.
    """
    done, started, cpu_started = 0, time.perf_counter(), time.process_time()
    while True:
        for batch in batches:
            update(batch)
        done += sum(len(b) for b in batches)
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return done / (time.process_time() - cpu_started), done / elapsed


def one_d(setup: dict[str, Any]) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    rng = np.random.default_rng(0)
    for name, method, kind, ref_key in CASES:
        reference = sample(rng, kind, setup[ref_key])
        params = {"kind": "categorical"} if kind == "categorical" else {}
        detector = METHODS[method](reference, window=setup["window"], **params)
        baseline = Baseline(detector, reference, setup["window"])
        batches = [sample(rng, kind, setup["batch"]) for _ in range(20)]
        for batch in batches[: setup["window"] // setup["batch"]]:  # fill both windows first
            detector.update(batch)
            baseline.update(batch)
        runs: dict[str, list[float]] = {"detector": [], "baseline": []}
        wall: dict[str, list[float]] = {"detector": [], "baseline": []}
        for r in range(setup["rounds"]):
            order = ("detector", "baseline") if r % 2 == 0 else ("baseline", "detector")
            for side in order:
                step = monitor(detector) if side == "detector" else baseline.update
                per_cpu_s, per_wall_s = rate(step, batches, setup["seconds"])
                runs[side].append(per_cpu_s)
                wall[side].append(per_wall_s)
        best, base = max(runs["detector"]), max(runs["baseline"])
        rows[name] = {
            "method": method,
            "data": kind,
            "reference_size": len(reference),
            "values_per_s": best,  # per CPU second: one core
            "values_per_s_rounds": runs["detector"],
            "values_per_wall_s_rounds": wall["detector"],
            "baseline_values_per_s": base,
            "baseline_values_per_wall_s_rounds": wall["baseline"],
            "speedup_vs_baseline": best / base,
            "ratio_to_1M_target": best / TARGET,
            "meets_target": best >= TARGET,
            "us_per_update": 1e6 * setup["batch"] / best,
        }
        print(
            f"{name:<18} {best / 1e6:7.2f} M values/CPU-s  (baseline {base / 1e6:6.3f} M, x{best / base:.1f})"
        )
    return rows


def mmd(setup: dict[str, Any]) -> dict[str, Any]:
    rng = np.random.default_rng(1)
    dim, window, batch_size = 32, 1000, 100
    started = time.perf_counter()
    detector = METHODS["mmd"](rng.normal(size=(5000, dim)), window=window)
    build_s = time.perf_counter() - started
    batches = [rng.normal(size=(batch_size, dim)) for _ in range(10)]
    for batch in batches:
        detector.update(batch)
    per_s, per_wall_s = rate(monitor(detector), batches, setup["seconds"])
    print(f"{'mmd':<18} {per_s:9.0f} vectors/s of dimension {dim} (threshold calibration {build_s:.1f} s)")
    return {
        "dimension": dim,
        "window": window,
        "batch": batch_size,
        "reference_size": 5000,
        "vectors_per_s": per_s,
        "vectors_per_wall_s": per_wall_s,
        "values_per_s": per_s * dim,
        "calibration_seconds": build_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=QUICK_HELP)
    args = parser.parse_args()
    setup = QUICK if args.quick else FULL
    load_before = os.getloadavg()
    detectors = one_d(setup)
    result = {
        "benchmark": "drift_throughput",
        "quick": args.quick,
        "setup": setup,
        "target_values_per_s_per_core": TARGET,
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "omp_num_threads": os.environ["OMP_NUM_THREADS"],
            "python": platform.python_version(),
            "numpy": np.__version__,
            "loadavg_before": load_before,
            "loadavg_after": os.getloadavg(),
        },
        "detectors": detectors,
        "all_meet_target": all(row["meets_target"] for row in detectors.values()),
        "min_ratio_to_target": min(row["ratio_to_1M_target"] for row in detectors.values()),
        "mmd": mmd(setup),
    }
    out = quick_path(RESULTS.name) if args.quick else RESULTS
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    run_main(main)
