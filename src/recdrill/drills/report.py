"""The drill report a person reads: ``report.json`` (fixed schema) and a self-contained
``report.html`` with a timeline plot (embedded PNG) and verdict tables."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

TIER_COLOURS = {"primary": "#2b8cbe", "popular": "#fdae61"}
FAULT_COLOURS = {"infrastructure": "#fdae6b", "ml": "#9ecae1"}  # by catalogue kind


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
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return html.escape(str(value))


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _observed_cell(observed: dict[str, Any] | None) -> str:
    """What a fault made observable (its revert's observations), as short ``key: value`` text."""
    if not observed:
        return "-"
    parts = []
    for key, value in observed.items():
        if value in (0, None, False, {}, "") and not isinstance(value, float):
            continue  # zero counts and unset fields say nothing (0.0 seconds still does)
        if isinstance(value, dict):
            value = ", ".join(f"{k} {_fmt(v, 2)}" for k, v in value.items())
        parts.append(f"{key}: {_fmt(value, 2) if not isinstance(value, str) else html.escape(value)}")
    return "<br>".join(parts)


def _against(value: float | None, goal: float, ok: bool, digits: int = 1) -> str:
    cls = "ok" if ok else "bad"
    return f'<span class="{cls}">{_fmt(value, digits)}</span> / {_fmt(goal, digits)}'


def _scorecard_rows(journal: dict[str, Any]) -> list[list[str]]:
    rows = []
    for r in journal.get("scorecard", []):
        goal, checks = r["objectives"], r["checks"]
        failover_ok = r["failover_s"] is None or r["failover_s"] <= goal["failover_s"]
        rows.append([
            html.escape(r["fault"]), html.escape(r["type"]), html.escape(r["kind"]),
            _against(r["detect_s"], goal["detect_s"], checks["detected"]) + (
                f"<br><small>{html.escape(r['detected_by'])}</small>" if r["detected_by"] else ""),
            _against(r["failover_s"], goal["failover_s"], failover_ok, 2),
            _against(r["recover_s"], goal["recover_s"], checks["recovered"]),
            _against(r["availability"], goal["availability"], checks["available"], 3)
            + f"<br><small>first try {_fmt(r['availability_first_try'], 3)}</small>",
            _fmt(r["p99_ms"], 0),
            _against(None if r["quality_kept"] is None else 100 * r["quality_kept"],
                     100 * goal["quality_kept"], checks["quality"], 0) + " %",
            f'<span class="{"ok" if checks["no_data_lost"] else "bad"}">{_fmt(r["events_lost"])}</span>',
            '<span class="ok">pass</span>' if r["passed"] else '<span class="bad">FAIL</span>',
        ])  # fmt: skip
    return rows


def _verdict(ok: bool) -> str:
    return '<span class="ok">held</span>' if ok else '<span class="bad">deviated</span>'


def render_html(journal: dict[str, Any], png: bytes) -> str:
    """A single HTML file: summary, the plot, hypotheses before/during/after, faults, cleanliness."""
    summary = journal["summary"]
    states = journal["steady_states"]
    status_class = "bad" if journal["deviated"] or journal["status"] != "completed" else "ok"
    headline = (f"status <b>{html.escape(journal['status'])}</b>; "
                f"{'deviated' if journal['deviated'] else 'no deviation'} from the steady state")  # fmt: skip
    summary_rows = [
        ["requests", _fmt(summary["requests"])],
        ["availability on first try", _fmt(summary.get("availability_first_try"), 4)],
        ["availability after at most one retry", _fmt(summary["availability"], 4)],
        ["requests retried / failed on first try / failed after retry",
         f"{_fmt(summary.get('retried'))} / {_fmt(summary.get('failed_first_try'))} / "
         f"{_fmt(summary.get('failed_after_retry'))}"],
        ["p50 / p95 / p99 latency (ms)",
         f"{_fmt(summary['p50_ms'], 1)} / {_fmt(summary['p95_ms'], 1)} / {_fmt(summary['p99_ms'], 1)}"],
        ["NDCG@10 of served lists (whole drill)", _fmt(summary["ndcg10"], 4)],
        ["NDCG@10 baseline (before faults)", _fmt(journal["baseline"]["ndcg10"], 4)],
        ["share served by fallback tiers", _fmt(summary["fallback_share"], 3)],
        ["served by", html.escape(", ".join(f"{k}: {v}" for k, v in summary["served_by"].items()))],
    ]  # fmt: skip
    hypothesis_rows = []
    during_failures: dict[str, int] = {}
    for deviation in states["during"]["deviations"]:
        for name in deviation["hypotheses"]:
            during_failures[name] = during_failures.get(name, 0) + 1
    for before, after in zip(states["before"]["hypotheses"], states["after"]["hypotheses"], strict=True):
        bound = " and ".join(
            part for part in (f"≥ {before['min']}" if before["min"] is not None else "",
                              f"≤ {before['max']}" if before["max"] is not None else "") if part
        )  # fmt: skip
        failed = during_failures.get(before["name"], 0)
        hypothesis_rows.append([
            html.escape(before["name"]), html.escape(before["metric"]), html.escape(bound),
            f"{_fmt(before['value'])} {_verdict(before['ok'])}",
            _verdict(failed == 0) + (f" ({failed} s out of bounds)" if failed else ""),
            f"{_fmt(after['value'])} {_verdict(after['ok'])}",
        ])  # fmt: skip
    fault_rows = [
        [html.escape(f["name"]), html.escape(f["fault"]), f"{f['start']:.0f}-{f['end']:.0f} s",
         _fmt(f["injected_at"], 1), _fmt(f["reverted_at"], 1),
         html.escape(f.get("inject_error") or f.get("revert_error") or "-"),
         html.escape(", ".join(f"{k} {v}" for k, v in f["served_by"].items())),
         _observed_cell(f.get("observed"))]
        for f in journal["faults"]
    ]  # fmt: skip
    feedback = journal.get("feedback") or {}
    rollback_rows = [
        [html.escape(r["action"]), _verdict(r["status"] == "succeeded"), html.escape(str(r["output"]))]
        for r in journal.get("rollbacks", [])
    ]
    clean = journal["cleanliness"]
    image = base64.b64encode(png).decode()
    clean_verdict = '<span class="ok">clean</span>' if clean["ok"] else '<span class="bad">NOT clean</span>'
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>recdrill report: {html.escape(journal["scenario"]["name"])}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; }}
th, td {{ border: 1px solid #ccc; padding: 4px 10px; text-align: left; }}
th {{ background: #f3f3f3; }}
.ok {{ color: #1a7f37; font-weight: 600; }} .bad {{ color: #c62828; font-weight: 600; }}
img {{ max-width: 100%; border: 1px solid #ddd; }}
</style></head><body>
<h1>Drill report: {html.escape(journal["scenario"]["name"])}</h1>
<p class="{status_class}">{headline}</p>
<p>{html.escape(journal["scenario"].get("description", ""))}</p>
<p>Target {html.escape(journal["target"])};
from {html.escape(journal["start"])} to {html.escape(journal["end"])}.</p>
<h2>Summary</h2>
{_table(["measure", "value"], summary_rows)}
<h2>Timeline</h2>
<img alt="timeline of the drill" src="data:image/png;base64,{image}">
<p>Shaded bands are fault windows; red ticks under the quality panel mark seconds in which a hypothesis
did not hold over its {journal["scenario"]["window_s"]} s window.</p>
<h2>Steady-state hypotheses</h2>
{_table(["hypothesis", "metric", "tolerance", "before", "during", "after"], hypothesis_rows)}
<h2>Scorecard</h2>
<p>One row per fault: measured / objective. Detect: the first deviation of a hypothesis or alert of the
deployment after the fault began (which one is named below the figure; "-" when nothing moved, the
fault was absorbed). Fail over: first answer from a fallback tier. Recover: after the revert, until
every hypothesis held again. Availability counts answers after at most one retry; quality kept is
NDCG@10 of lists served during the fault over the baseline's; lost counts acknowledged feedback
events missing from the log afterwards. Seconds.</p>
{
        _table(
            [
                "fault",
                "type",
                "kind",
                "detect (s)",
                "fail over (s)",
                "recover (s)",
                "availability",
                "p99 (ms)",
                "quality kept",
                "events lost",
                "verdict",
            ],
            _scorecard_rows(journal),
        )
    }
<h2>Fault details</h2>
{
        _table(
            [
                "fault",
                "type",
                "window",
                "injected at (s)",
                "reverted at (s)",
                "error",
                "served by",
                "observed",
            ],
            fault_rows,
        )
    }
<h2>Feedback audit</h2>
<p>{_fmt(feedback.get("posted"))} events posted during the drill, {_fmt(feedback.get("acknowledged"))}
acknowledged, {_fmt(feedback.get("refused"))} refused (not promised), {_fmt(feedback.get("unanswered"))}
unanswered; acknowledged but missing afterwards: <b>{_fmt(feedback.get("lost"))}</b>
{html.escape(feedback.get("check_error") or "")}</p>
<h2>Afterwards</h2>
{_table(["rollback", "status", "output"], rollback_rows)}
<p>Left active: {html.escape(", ".join(clean.get("leftovers") or []) or "nothing")}; workers stopped:
{_fmt(clean.get("stopped_workers"))}; workers before/after: {
        _fmt((clean.get("workers") or {}).get("before"))
    } /
{_fmt((clean.get("workers") or {}).get("after"))}; model version before/after:
{_fmt((clean.get("model_version") or {}).get("before"))} / {
        _fmt((clean.get("model_version") or {}).get("after"))
    };
all faults reverted: {_fmt(clean["all_reverted"])}; {clean_verdict}</p>
</body></html>
"""
