"""Real drift on UCI Online Retail: which features of the autumn 2011 peak drift against the first
nine months, and from which week, with a plot.

Replays the cleaned invoice lines with :func:`recdrill.monitor.replay.retail.replay`: reference
2010-12-01 to 2011-08-31, current 2011-09-01 to 2011-12-09, tested per calendar month and per 7-day
week from 1 September (the last week runs 1-9 December), each feature with Evidently's default test.

Baseline, in the same run: a *null replay*. For every week, as many lines and invoices as the week
has are drawn at random from the reference itself and tested the same way. Nothing drifts there by
construction, so its scores are the sampling noise of a week of that size; the report gives each
feature's real weekly score as a ratio to its null score, and the null replay's false alarms.

Writes ``benchmarks/results/online_retail_drift.json`` and ``online_retail_drift.png``
(under ``results/quick/`` with ``--quick``: July-August against September, for a smoke run, which
skips with one line without the shared data).

    .venv/bin/python benchmarks/online_retail_drift.py           # the real run (about a minute)
    .venv/bin/python benchmarks/online_retail_drift.py --quick   # a smoke run (seconds)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import TwoSlopeNorm
from matplotlib.patches import Rectangle

from harness import QUICK_HELP, QUICK_RESULTS, run_main, skip
from recdrill.monitor.drift.defaults import compare, method_class
from recdrill.monitor.replay.retail import (
    CURRENT,
    DATASET_DRIFT_SHARE,
    FEATURES,
    REFERENCE,
    SUSTAINED_WEEKS,
    Period,
    PeriodDrift,
    Replay,
    features,
    read_retail_lines,
    replay,
)

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "datasets" / "online_retail" / "online_retail.parquet"
RESULTS = ROOT / "benchmarks" / "results"
QUICK = {"reference": ("2011-07-01", "2011-08-31"), "current": ("2011-09-01", "2011-09-30")}
SEVERITY_CAP = 10.0  # colour scale of the plot: score/threshold beyond this shows as this


def severity(method: str, score: float, threshold: float) -> float:
    """How far past its threshold a score is, as a ratio: at least 1 exactly when the test flags
    drift, whichever way the method reads (distances: score/threshold; p-values: threshold/score)."""
    if not method_class(method).higher_is_drift:
        return threshold / max(score, 1e-300)
    return score / threshold if threshold > 0 else float("inf")


def null_replay(lines: pd.DataFrame, result: Replay, seed: int = 0) -> dict[str, list[float]]:
    """Each feature's score on each week of a replay without drift: the week's sizes drawn at random
    (without replacement) from the reference rows, tested against the whole reference."""
    line_table, invoice_table = features(lines, result.reference)
    tables = {
        level: table[((table["time"] >= result.reference.start) & (table["time"] < result.reference.end))]
        for level, table in (("line", line_table), ("invoice", invoice_table))
    }
    rng = np.random.default_rng(seed)
    scores: dict[str, list[float]] = {f.name: [] for f in FEATURES}
    for week in result.weeks:
        sizes = {"line": week.lines, "invoice": week.invoices}
        picks = {level: rng.choice(len(tables[level]), sizes[level], replace=False) for level in tables}
        for f in FEATURES:
            dtype = np.float64 if f.kind == "numeric" else object
            column = tables[f.level][f.name].to_numpy(dtype=dtype)
            scores[f.name].append(compare(column, column[picks[f.level]], kind=f.kind).score)
    return scores


def summary(result: Replay, null: dict[str, list[float]]) -> dict[str, Any]:
    """Per feature: median weekly score, the null's median and maximum, their ratio, alarms."""
    out = {}
    for f in FEATURES:
        real = [w.columns[f.name] for w in result.weeks]
        threshold, method = real[0].threshold, real[0].method
        noise = null[f.name]
        null_alarms = sum(severity(method, s, threshold) >= 1 for s in noise)
        median_real, median_null = float(np.median([r.score for r in real])), float(np.median(noise))
        out[f.name] = {
            "median_weekly_score": median_real,
            "null_median_weekly_score": median_null,
            "null_max_weekly_score": float(np.max(noise)),
            "ratio_to_null": median_real / median_null if median_null > 0 else None,
            "weeks_flagged": sum(r.drift for r in real),
            "null_weeks_flagged": int(null_alarms),
            "null_weekly_scores": noise,
        }
    return out


def plot(result: Replay, null: dict[str, list[float]], path: Path, title: str) -> None:
    """Heatmaps of score/threshold per feature: weeks on the left, months on the right; a framed,
    bold cell is a flagged test; dashed lines separate the months. Each row's label gives the
    highest score/threshold of the null replay: cells near it are within a week's sampling noise."""
    names = [f.name for f in FEATURES]
    fig, (ax_w, ax_m, ax_c) = plt.subplots(
        1,
        3,
        figsize=(17, 8.5),
        gridspec_kw={"width_ratios": [len(result.weeks), max(len(result.months), 2), 0.35], "wspace": 0.08},
    )
    norm = TwoSlopeNorm(vmin=0.0, vcenter=1.0, vmax=SEVERITY_CAP)
    image = _heatmap(ax_w, result.weeks, norm)
    _heatmap(ax_m, result.months, norm)
    ax_w.set_yticks(range(len(names)))
    method = {f.name: result.weeks[0].columns[f.name].method for f in FEATURES}
    noise = {
        f.name: max(
            severity(method[f.name], s, result.weeks[0].columns[f.name].threshold) for s in null[f.name]
        )
        for f in FEATURES
    }
    ax_w.set_yticklabels(
        [
            f"{f.name.replace('_', ' ')}\n({f.level}, {method[f.name]})\n{_noise(noise[f.name])}"
            for f in FEATURES
        ],
        fontsize=8.5,
    )
    ax_m.set_yticks([])
    _period_ticks(ax_w, result.weeks, "%d %b")
    _period_ticks(ax_m, result.months, "%b %Y")
    ax_w.set_xlabel("week starting;  drifted features / all  (red: dataset drift, at least half drifted)")
    ax_m.set_xlabel("month;  drifted / all")
    ax_w.set_title("per week", fontsize=10)
    ax_m.set_title("per month", fontsize=10)
    for i in range(1, len(result.weeks)):
        if result.weeks[i].period.start.month != result.weeks[i - 1].period.start.month:
            ax_w.axvline(i - 0.5, color="black", linestyle="--", linewidth=1.2)
    colorbar = fig.colorbar(image, cax=ax_c, extend="max")
    colorbar.set_label("score / threshold   (>= 1: drift flagged; framed cells)")
    ref = result.reference
    fig.suptitle(
        f"{title}\nreference {ref.start:%d %b %Y} - {ref.end - pd.Timedelta(days=1):%d %b %Y} "
        f"({result.reference_lines:,} lines, {result.reference_invoices:,} invoices); "
        "each cell: that period's values against the whole reference, Evidently's default test\n"
        "noise: the highest cell of a null replay (each week's sizes drawn from the reference itself)",
        fontsize=11,
    )
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def _heatmap(ax: Axes, periods: tuple[PeriodDrift, ...], norm: TwoSlopeNorm) -> Any:
    grid = np.array(
        [
            [severity(r.method, r.score, r.threshold) for r in (p.columns[f.name] for p in periods)]
            for f in FEATURES
        ]
    )
    image = ax.imshow(np.minimum(grid, SEVERITY_CAP), cmap="RdBu_r", norm=norm, aspect="auto")
    for (row, col), value in np.ndenumerate(grid):
        flagged = periods[col].columns[FEATURES[row].name].drift
        ax.text(
            col,
            row,
            f"{value:.2f}" if value < 10 else f"{value:.0f}",
            ha="center",
            va="center",
            fontsize=7.5,
            weight="bold" if flagged else None,
        )
        if flagged:
            ax.add_patch(
                Rectangle((col - 0.5, row - 0.5), 1, 1, fill=False, edgecolor="black", linewidth=1.4)
            )
    ax.set_xticks(range(len(periods)))
    return image


def _noise(worst: float) -> str:
    # The null replay draws from the reference, which holds no new items or customers: no noise.
    return f"noise up to {worst:.2f}" if worst > 0 else "no sampling noise"


def _dates(period: Period, date_format: str) -> str:
    """The period's start; a week that is not 7 days long (the last) shows its span, "01-09 Dec"."""
    last = period.end - pd.Timedelta(days=1)
    if date_format == "%d %b" and (period.end - period.start).days != 7:
        return f"{period.start:%d}-{last:%d %b}"
    return f"{period.start:{date_format}}"


def _period_ticks(ax: Axes, periods: tuple[PeriodDrift, ...], date_format: str) -> None:
    """Each period's start and its share of drifted features, in red where the dataset drifts."""
    ax.set_xticklabels(
        [f"{_dates(p.period, date_format)}\n{len(p.drifted)}/{len(p.columns)}" for p in periods], fontsize=8
    )
    for label, period in zip(ax.get_xticklabels(), periods, strict=True):
        if period.dataset_drift:
            label.set_color("firebrick")
            label.set_fontweight("bold")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help=f"July-August against September only: {QUICK_HELP}"
    )
    parser.add_argument("--data", type=Path, default=DATA, help="the Online Retail Parquet file")
    args = parser.parse_args(argv)
    matplotlib.use("Agg")  # files only, no display; here, not at import (harness.py)
    if not args.data.exists():
        if args.quick:
            return skip("online_retail_drift", f"{args.data} not found (the shared datasets are not present)")
        print(f"error: {args.data}: no such file (the shared datasets are not present)", file=sys.stderr)
        return 2
    windows = QUICK if args.quick else {"reference": REFERENCE, "current": CURRENT}
    stem = "online_retail_drift"
    results = QUICK_RESULTS if args.quick else RESULTS

    started = time.perf_counter()
    lines, dropped = read_retail_lines(args.data)
    read_s = time.perf_counter() - started
    result = replay(lines, **windows)
    replay_s = time.perf_counter() - started - read_s
    null = null_replay(lines, result)
    null_s = time.perf_counter() - started - read_s - replay_s

    report = result.to_dict()
    noise = summary(result, null)
    for name, figures in noise.items():
        report["features"][name]["baseline"] = figures
    report |= {
        "data": str(args.data),
        "windows": windows,
        "rows": {
            "read": len(lines) + sum(dropped.values()),
            "kept": len(lines),
            "dropped": sum(dropped.values()),
        },
        "dropped_by_reason": dropped,
        "rules": {
            "dataset_drift": f"at least {DATASET_DRIFT_SHARE:.0%} of the features drift in the period",
            "sustained_from_week": f"first of {SUSTAINED_WEEKS} flagged weeks in a row",
            "baseline": "null replay: each week's sizes sampled from the reference, tested the same way",
        },
        "drifting_features": {
            name: {
                "first_flagged_week": report["features"][name]["first_flagged_week"],
                "sustained_from_week": report["features"][name]["sustained_from_week"],
            }
            for name in result.drifting_features()
        },
        "runtime_s": {
            "read": read_s,
            "replay": replay_s,
            "null_replay": null_s,
            "ratio_replay_to_null": replay_s / null_s,
        },
        "machine": {
            "cores": os.cpu_count(),
            "load_average_1m": os.getloadavg()[0],
            "python": platform.python_version(),
        },
    }
    results.mkdir(parents=True, exist_ok=True)
    title = (
        "UCI Online Retail: drift of the autumn 2011 peak" if not args.quick else "UCI Online Retail (quick)"
    )
    plot(result, null, results / f"{stem}.png", title)
    (results / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    for name, when in report["drifting_features"].items():
        first, sustained = when["first_flagged_week"], when["sustained_from_week"]
        print(f"{name:>18}: first flagged {first}, sustained from {sustained}")
    print(f"wrote {results / stem}.json and .png in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    run_main(main)
