"""The drill report a person reads: ``report.json`` (fixed schema) and a self-contained
``report.html`` with a timeline plot (embedded PNG) and verdict tables.

The HTML comes from a Jinja2 template (``templates/report.html.j2``) with autoescaping on: every
value from the journal, server error text included, is escaped, and markup comes from the template
alone. This module turns the journal into the rows the template lays out.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import jinja2

TIER_COLOURS = {"primary": "#2b8cbe", "popular": "#fdae61"}
FAULT_COLOURS = {"infrastructure": "#fdae6b", "ml": "#9ecae1"}  # by catalogue kind
TEMPLATE = "report.html.j2"


def write_report(journal: dict[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``report.json``, ``report.png`` and ``report.html`` into ``out_dir``.

    Returns the paths of the JSON and the HTML file.
    """
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    json_path = folder / "report.json"
    json_path.write_text(json.dumps(journal, indent=2, default=str))
    png = timeline_png(journal)
    (folder / "report.png").write_bytes(png)
    html_path = folder / "report.html"
    html_path.write_text(render_html(journal, png))
    return json_path, html_path


def timeline_png(journal: dict[str, Any]) -> bytes:
    """The four-panel timeline: traffic and errors, latency, tier mix, quality; faults shaded."""
    # Imported here, not at the top: matplotlib costs half a second, and every CLI command (and each
    # worker a console-script ``recdrill serve`` spawns) would pay it.
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and CI; must precede pyplot
    import matplotlib.pyplot as plt

    rows = journal["timeline"]
    t = [r["t"] + 0.5 for r in rows]
    fig, axes = plt.subplots(
        5, 1, figsize=(11, 12), sharex=True, constrained_layout=True, height_ratios=[3, 3, 3, 3, 1.6]
    )
    traffic, latency, tiers, quality, alerts = axes

    traffic.plot(t, [r["rps"] for r in rows], color="#333333", label="requests/s")
    if any(r.get("skipped") for r in rows):  # the drill's own shortfall, apart from the server's errors
        traffic.plot(
            t, [r.get("skipped", 0) for r in rows], color="#999999", linestyle=":", label="not sent/s"
        )
        traffic.legend(loc="upper left", fontsize=8)
    traffic.set_ylabel("requests / s")
    errors = traffic.twinx()
    errors.plot(t, [_pct(r["error_rate"]) for r in rows], color="#d7191c", label="error rate % (after retry)")
    first_try = [_pct(r.get("error_rate_first_try")) for r in rows]
    errors.plot(t, first_try, color="#d7191c", linestyle="--", alpha=0.6, label="error rate % (first try)")
    errors.legend(loc="upper right", fontsize=8)
    errors.set_ylabel("error rate (%)", color="#d7191c")
    errors.set_ylim(0, 100)

    latency.plot(t, [r["p99_ms"] for r in rows], color="#7b3294", label="p99")
    latency.plot(t, [r["p50_ms"] for r in rows], color="#c2a5cf", label="p50")
    latency.set_ylabel("latency (ms)")
    latency.legend(loc="upper right")

    names = sorted({tier for r in rows for tier in r["served_by"]})
    totals = [max(sum(r["served_by"].values()), 1) for r in rows]
    shares = [[100.0 * r["served_by"].get(name, 0) / total for r, total in zip(rows, totals, strict=True)]
              for name in names]  # fmt: skip
    if names:
        colours = [TIER_COLOURS.get(name, f"C{i}") for i, name in enumerate(names)]
        tiers.stackplot(t, shares, labels=names, colors=colours, alpha=0.85)
        tiers.legend(loc="upper right")
    tiers.set_ylabel("served by (%)")
    tiers.set_ylim(0, 100)

    quality.plot(t, [r["ndcg10"] for r in rows], color="#a6d96a", alpha=0.6, label="NDCG@10 (per second)")
    quality.plot(t, [r["window_ndcg10"] for r in rows], color="#1a9641", label="NDCG@10 (window)")
    baseline = journal["baseline"]["ndcg10"]
    if baseline:
        quality.axhline(baseline, color="#555555", linestyle="--", linewidth=1, label="baseline")
    quality.set_ylabel("NDCG@10 of served lists")
    quality.legend(loc="upper right")

    signals = sorted({a["signal"] for a in journal.get("alerts", [])})
    for row_index, name in enumerate(signals):
        times = [a["t"] for a in journal["alerts"] if a["signal"] == name]
        alerts.scatter(times, [row_index] * len(times), s=12, marker="|", color="#b2182b")
    alerts.set_yticks(range(len(signals)), signals, fontsize=7)
    alerts.set_ylim(-0.8, max(len(signals), 1) - 0.2)
    alerts.set_ylabel("alerts")
    alerts.set_xlabel("seconds since start of traffic")

    for fault in journal["faults"]:
        colour = FAULT_COLOURS.get(fault["kind"], "#cccccc")
        for ax in (traffic, latency, quality, alerts):
            ax.axvspan(fault["start"], fault["end"], color=colour, alpha=0.35, linewidth=0)
        for edge in (fault["start"], fault["end"]):  # shading would blend with the tier colours
            tiers.axvline(edge, color="#333333", linestyle=":", linewidth=1)
        traffic.annotate(fault["name"], xy=(fault["start"], 1.0), xycoords=("data", "axes fraction"),
                         xytext=(2, -12), textcoords="offset points", fontsize=8)  # fmt: skip
    for row in rows:
        if not row["hypotheses_ok"]:
            quality.axvspan(row["t"], row["t"] + 1, ymin=0, ymax=0.04, color="#d7191c", linewidth=0)
    fig.suptitle(f"Drill '{journal['scenario']['name']}' against {journal['target']}")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def _pct(value: float | None) -> float | None:
    return None if value is None else 100.0 * value


def _fmt(value: Any, digits: int = 3) -> str:
    """A journal value as report text: ``-`` for missing, yes/no, floats to ``digits``."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _observed(observed: dict[str, Any] | None) -> list[str]:
    """What a fault made observable (its revert's observations), as short ``key: value`` lines."""
    lines = []
    for key, value in (observed or {}).items():
        if value in (0, None, False, {}, "") and not isinstance(value, float):
            continue  # zero counts and unset fields say nothing (0.0 seconds still does)
        if isinstance(value, dict):
            value = ", ".join(f"{k} {_fmt(v, 2)}" for k, v in value.items())
        lines.append(f"{key}: {value if isinstance(value, str) else _fmt(value, 2)}")
    return lines


_ENVIRONMENT = jinja2.Environment(
    loader=jinja2.PackageLoader("recdrill.drills", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_ENVIRONMENT.filters["fmt"] = _fmt
_ENVIRONMENT.filters["observed"] = _observed


def _summary_rows(journal: dict[str, Any]) -> list[tuple[str, str]]:
    summary = journal["summary"]
    return [
        ("requests", _fmt(summary["requests"])),
        ("availability on first try", _fmt(summary.get("availability_first_try"), 4)),
        ("availability after at most one retry", _fmt(summary["availability"], 4)),
        (
            "requests retried / failed on first try / failed after retry",
            f"{_fmt(summary.get('retried'))} / {_fmt(summary.get('failed_first_try'))} / "
            f"{_fmt(summary.get('failed_after_retry'))}",
        ),
        (
            "p50 / p95 / p99 latency (ms)",
            f"{_fmt(summary['p50_ms'], 1)} / {_fmt(summary['p95_ms'], 1)} / {_fmt(summary['p99_ms'], 1)}",
        ),
        ("NDCG@10 of served lists (whole drill)", _fmt(summary["ndcg10"], 4)),
        ("NDCG@10 baseline (before faults)", _fmt(journal["baseline"]["ndcg10"], 4)),
        ("share served by fallback tiers", _fmt(summary["fallback_share"], 3)),
        ("served by", ", ".join(f"{k}: {v}" for k, v in summary["served_by"].items())),
        (
            "scheduled but not sent (the drill short of CPU; not counted against availability)",
            f"{_fmt(summary.get('skipped', 0))} ({_fmt(_pct(summary.get('skipped_share')), 1)} %)",
        ),
    ]


def _hypothesis_rows(journal: dict[str, Any]) -> list[dict[str, Any]]:
    """Each hypothesis before and after the drill, and the seconds it was out of bounds during it."""
    states = journal["steady_states"]
    failed_s: dict[str, int] = {}
    for deviation in states["during"]["deviations"]:
        for name in deviation["hypotheses"]:
            failed_s[name] = failed_s.get(name, 0) + 1
    rows = []
    for before, after in zip(states["before"]["hypotheses"], states["after"]["hypotheses"], strict=True):
        bounds = (f"≥ {before['min']}" if before["min"] is not None else "",
                  f"≤ {before['max']}" if before["max"] is not None else "")  # fmt: skip
        rows.append(
            {
                "name": before["name"],
                "metric": before["metric"],
                "tolerance": " and ".join(part for part in bounds if part),
                "before": before,
                "after": after,
                "failed_s": failed_s.get(before["name"], 0),
            }
        )
    return rows


def render_html(journal: dict[str, Any], png: bytes) -> str:
    """A single HTML file: summary, the plot, hypotheses before/during/after, faults, cleanliness."""
    return _ENVIRONMENT.get_template(TEMPLATE).render(
        j=journal,
        summary_rows=_summary_rows(journal),
        hypotheses=_hypothesis_rows(journal),
        scorecard=journal.get("scorecard", []),
        feedback=journal.get("feedback") or {},
        clean=journal["cleanliness"],
        image=base64.b64encode(png).decode(),
    )
