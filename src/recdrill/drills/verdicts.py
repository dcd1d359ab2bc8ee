"""Per-fault verdicts and the scorecard: what each fault did to the traffic, and how fast the
deployment noticed, failed over and recovered, against the scenario's objectives.

- detect: the first sign after the fault began, from whichever came first: a hypothesis
  deviating (the window that shows it closes one second after its row) or one of the deployment's
  own alerts that can name this fault (its ``FaultType.detected_by``; alerts already
  firing during the baseline are ignored, they cannot tell a fault apart).
- fail over: the first request sent after the fault began that a fallback tier answered.
- recover: after the revert, the first moment every hypothesis held again (0 when nothing deviated).
- quality kept: NDCG@10 of the lists served during the fault over the pre-fault baseline's.
- events lost: acknowledged feedback posted during the fault that is missing from the log.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from recdrill.drills.alerts import AlertWatcher
from recdrill.drills.faults.catalogue import FaultParams, FaultType
from recdrill.drills.feedback_audit import FeedbackAudit
from recdrill.drills.scenario import FaultStep, Scenario
from recdrill.drills.timeline import RequestTable, first_second, window_stats


@dataclass
class StepRun:
    """One fault step as it ran: when it was injected and reverted, and what it made observable."""

    step: FaultStep
    ftype: FaultType
    params: FaultParams
    handle: Any = None
    injected_at_s: float | None = None
    reverted_at_s: float | None = None
    inject_error: str | None = None
    revert_error: str | None = None
    observed: dict[str, Any] = field(default_factory=dict)

    @property
    def injected(self) -> bool:
        return self.injected_at_s is not None

    @property
    def needs_revert(self) -> bool:
        return self.injected and self.reverted_at_s is None


def fault_verdicts(
    runs: list[StepRun],
    rows: list[dict[str, Any]],
    table: RequestTable,
    scenario: Scenario,
    baseline_ndcg10: float | None,
    watcher: AlertWatcher,
    audit: FeedbackAudit | None,
) -> list[dict[str, Any]]:
    starts = sorted(r.step.start_s for r in runs)
    noisy = watcher.noisy(scenario.baseline_s)
    verdicts = []
    for run in runs:
        step = run.step
        horizon = min([s for s in starts if s > step.start_s] + [scenario.traffic.duration_s])
        # A sign counts as detecting the fault while it acts, or in the window just after its revert
        # (a window that closes then still holds its seconds): a dip later is someone else's.
        sign_end = min(horizon, step.end_s + scenario.window_s)
        deviation = first_second(rows, step.start_s, sign_end, ok=False)
        deviation_s = None if deviation is None else deviation + 1 - step.start_s
        alert = watcher.first_after(step.start_s, sign_end, noisy, run.ftype.detected_by)
        alert_s = None if alert is None else max(0.0, alert.t - step.start_s)
        candidates = [(v, by) for v, by in ((deviation_s, "hypotheses"), (alert_s, "alert")) if v is not None]
        detect_s, detected_by = min(candidates, key=lambda c: c[0]) if candidates else (None, None)
        if detected_by == "alert" and alert is not None:
            detected_by = f"alert:{alert.signal}"
        elif detected_by == "hypotheses" and deviation is not None:
            detected_by = "hypotheses:" + ",".join(rows[deviation]["deviating"])
        recovery = first_second(rows, step.end_s, horizon, ok=True) if deviation is not None else None
        in_reach = (table.scheduled_s >= step.start_s) & (table.scheduled_s < horizon)
        fallback = table.scheduled_s[in_reach & table.ok & (table.served_by != scenario.primary_tier)]
        stats = window_stats(table, step.start_s, step.end_s, scenario.primary_tier)
        part = table.between(step.start_s, step.end_s)
        quality_kept = (
            stats.ndcg10 / baseline_ndcg10 if stats.ndcg10 is not None and baseline_ndcg10 else None
        )
        verdicts.append(
            {
                "name": step.name,
                "fault": step.fault,
                "kind": run.ftype.kind,
                "params": run.params.model_dump(),
                "start": step.start_s,
                "end": step.end_s,
                "injected_at": run.injected_at_s,
                "reverted_at": run.reverted_at_s,
                "reverted": run.injected and run.reverted_at_s is not None,
                "inject_error": run.inject_error,
                "revert_error": run.revert_error,
                "detect_s": detect_s,
                "detected_by": detected_by,
                "deviation_s": deviation_s,
                "alert_s": alert_s,
                "failover_s": float(fallback[0] - step.start_s) if len(fallback) else None,
                "recover_s": None
                if deviation is None
                else (None if recovery is None else max(0.0, recovery + 1 - step.end_s)),
                "recovered": deviation is None or recovery is not None,
                "requests": stats.requests,
                "availability": stats.availability,
                "availability_first_try": stats.availability_first_try,
                "p50_ms": stats.p50_ms,
                "p95_ms": float(np.percentile(table.latency_ms[part], 95)) if stats.requests else None,
                "p99_ms": stats.p99_ms,
                "served_by": stats.served_by,
                "ndcg10": stats.ndcg10,
                "quality_kept": quality_kept,
                "events_lost": None if audit is None else audit.lost_between(step.start_s, horizon),
                "observed": run.observed,
            }
        )
    return verdicts


def scorecard(verdicts: list[dict[str, Any]], scenario: Scenario) -> list[dict[str, Any]]:
    """One row per fault, each figure beside its objective, and whether the fault passed."""
    goal = scenario.objectives
    rows = []
    for v in verdicts:
        # A step the drill never reached (it aborted first) has nothing to judge: neither pass nor fail.
        reached = v["injected_at"] is not None or v["inject_error"] is not None
        checks = {
            # Nothing to detect when neither a hypothesis nor an alert moved: the fault was absorbed.
            "detected": v["detect_s"] is None or v["detect_s"] <= goal.detect_s,
            "recovered": v["recovered"] and (v["recover_s"] is None or v["recover_s"] <= goal.recover_s),
            "available": v["availability"] is None or v["availability"] >= goal.availability,
            "quality": v["quality_kept"] is None or v["quality_kept"] >= goal.quality_kept,
            "no_data_lost": v["events_lost"] in (0, None),
            "reverted": v["reverted"] or not reached,
        }
        rows.append(
            {
                "fault": v["name"],
                "type": v["fault"],
                "kind": v["kind"],
                "detect_s": v["detect_s"],
                "detected_by": v["detected_by"],
                "failover_s": v["failover_s"],
                "recover_s": v["recover_s"],
                "availability": v["availability"],
                "availability_first_try": v["availability_first_try"],
                "p99_ms": v["p99_ms"],
                "quality_kept": v["quality_kept"],
                "events_lost": v["events_lost"],
                "objectives": {
                    "detect_s": goal.detect_s,
                    "failover_s": goal.failover_s,
                    "recover_s": goal.recover_s,
                    "availability": goal.availability,
                    "quality_kept": goal.quality_kept,
                },
                "checks": checks,
                "reached": reached,
                "passed": reached and all(checks.values()),
            }
        )
    return rows
