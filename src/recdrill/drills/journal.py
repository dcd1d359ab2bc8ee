"""The drill's journal: one plain dict with everything the report, the scorecard and the Chaos
Toolkit export read (``report.json`` is this dict).

Requests the drill scheduled but did not send (its process was too short of CPU to send them on
time: ``recdrill.drills.pacing``) are not in the request table, so they count against no
availability: the server never saw them. The summary counts them (``skipped``, ``skipped_share``
of all scheduled), each timeline row has its second's ``skipped``, and ``judgement_weak`` says
when more than :data:`WEAK_SKIPPED_SHARE` of the traffic went unsent: the verdicts then rest on
too little of the planned traffic to be trusted.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from recdrill.drills.alerts import AlertWatcher
from recdrill.drills.feedback_audit import FeedbackAudit
from recdrill.drills.scenario import Scenario
from recdrill.drills.timeline import RequestTable, judge_hypotheses, per_second, window_stats
from recdrill.drills.verdicts import StepRun, fault_verdicts, scorecard

WEAK_SKIPPED_SHARE = 0.5  # more of the scheduled traffic unsent than this: a weak judgement


def build_journal(
    scenario: Scenario,
    target: str,
    table: RequestTable,
    runs: list[StepRun],
    watcher: AlertWatcher,
    audit: FeedbackAudit,
    started_at: datetime,
    status: str,
    rollbacks: list[dict[str, Any]],
    cleanliness: dict[str, Any],
    aborted: dict[str, Any] | None = None,
    traffic_start: datetime | None = None,
    skipped: Sequence[float] = (),
) -> dict[str, Any]:
    """The journal of one drill; ``skipped``: scheduled times of the requests it did not send."""
    duration = scenario.traffic.duration_s
    primary = scenario.primary_tier
    baseline = window_stats(table, 0.0, scenario.baseline_s, primary)
    base_ndcg = baseline.ndcg10
    before = judge_hypotheses(scenario.hypotheses, baseline, base_ndcg)
    after_stats = window_stats(table, duration - scenario.after_s, duration, primary)
    after = judge_hypotheses(scenario.hypotheses, after_stats, base_ndcg)
    rows = per_second(table, duration, scenario.hypotheses, scenario.window_s, primary, base_ndcg)
    unsent = _count_unsent(rows, len(table.scheduled_s), skipped)
    during_rows = [r for r in rows if r["t"] >= scenario.baseline_s]
    deviations = [{"t": r["t"], "hypotheses": r["deviating"]} for r in during_rows if not r["hypotheses_ok"]]
    faults = fault_verdicts(runs, rows, table, scenario, base_ndcg, watcher, audit)
    overall = window_stats(table, 0.0, duration, primary)
    feedback = audit.summary()
    deviated = (not all(h["ok"] for h in before)) or bool(deviations) or not all(h["ok"] for h in after)
    return {
        "scenario": scenario.model_dump(),
        "target": target,
        "start": started_at.isoformat(),
        "traffic_start": None
        if traffic_start is None
        else traffic_start.isoformat(),  # t = 0 of the timeline
        "end": datetime.now(UTC).isoformat(),
        "status": status,
        "deviated": deviated,
        "aborted": aborted,
        "baseline": {"ndcg10": base_ndcg, "p99_ms": baseline.p99_ms, "requests": baseline.requests},
        "steady_states": {
            "before": {
                "ok": all(h["ok"] for h in before),
                "window": [0.0, scenario.baseline_s],
                "hypotheses": before,
            },
            "during": {"ok": not deviations, "deviations": deviations},
            "after": {
                "ok": all(h["ok"] for h in after),
                "window": [duration - scenario.after_s, duration],
                "hypotheses": after,
            },
        },
        "faults": faults,
        "scorecard": scorecard(faults, scenario),
        "alerts": [{"t": e.t, "signal": e.signal} for e in watcher.events],
        "feedback": feedback,
        "summary": {
            "requests": overall.requests,
            "availability": overall.availability,
            "availability_first_try": overall.availability_first_try,
            "failed_first_try": int((~table.ok_first_try).sum()),
            "failed_after_retry": int((~table.ok).sum()),
            "retried": overall.retried,
            "p50_ms": overall.p50_ms,
            "p95_ms": float(np.percentile(table.latency_ms, 95)) if len(table.latency_ms) else None,
            "p99_ms": overall.p99_ms,
            "ndcg10": overall.ndcg10,
            "fallback_share": overall.fallback_share,
            "served_by": overall.served_by,
            "events_lost": feedback["lost"],
            **unsent,
        },
        "rollbacks": rollbacks,
        "cleanliness": cleanliness,
        "timeline": rows,
    }


def _count_unsent(rows: list[dict[str, Any]], sent: int, skipped: Sequence[float]) -> dict[str, Any]:
    """Put each second's unsent requests in its timeline row; the summary's figures of them."""
    per_second = np.bincount(np.asarray(skipped, dtype=np.int64), minlength=len(rows))
    for row in rows:
        row["skipped"] = int(per_second[row["t"]])
    scheduled = sent + len(skipped)
    share = len(skipped) / scheduled if scheduled else None
    return {
        "skipped": len(skipped),
        "skipped_share": share,
        "judgement_weak": share is not None and share > WEAK_SKIPPED_SHARE,
    }
