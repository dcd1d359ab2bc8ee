"""Export a recdrill drill journal in Chaos Toolkit's journal shape (``journal.json``).

Chaos Toolkit's journal (what ``chaos run --journal-path`` writes) holds the experiment, its start,
end, duration and status (completed, failed, aborted or interrupted), whether the system deviated,
the steady states checked before and after the method (``{"steady_state_met", "probes": [...]}``)
and during it (a list of such states), one run record per activity (``activity``, ``status``,
``start``, ``end``, ``duration``, ``output``) and the rollbacks' run records.

A recdrill drill maps onto it as follows:

* each hypothesis is a probe with a ``range`` tolerance; where a live probe exists, its provider is
  the matching ``recdrill.chaos.probes`` function, so the experiment can be run again under
  ``chaos run``;
* each fault step is a background action calling ``recdrill.chaos.actions.inject_fault`` after
  ``at_s`` seconds; its run record spans the fault (injection to revert) and its output is the
  fault's verdict (detect, failover and recover times);
* each step's revert is a rollback calling ``revert_fault``, followed by the scenario's rollback
  actions and their records (``{"action", "status", "output"}``);
* ``during`` holds one state per second of the fault phase, from the drill's continuous checks;
* the drill's summary, scorecard and cleanliness check travel in the experiment's ``extensions``.

The drill measures its windows on its own clock (seconds from the start of traffic); they are
placed on the wall clock from ``traffic_start`` when the journal has it, else from the drill's end
minus the traffic's duration.
"""

from __future__ import annotations

import platform
from datetime import datetime, timedelta
from importlib import metadata
from typing import Any

from recdrill.errors import ConfigError

STATUSES = ("completed", "interrupted", "failed", "aborted")
PROBES_MODULE = "recdrill.chaos.probes"
ACTIONS_MODULE = "recdrill.chaos.actions"
# Hypothesis metric -> (live probe function, extra arguments); ndcg_ratio needs held-out truth,
# which only the drill's replay has, so it has no live probe.
LIVE_PROBES: dict[str, tuple[str, dict[str, Any]]] = {
    "availability": ("availability", {"retry": True}),
    "availability_first_try": ("availability", {"retry": False}),
    "p99_ms": ("p99_ms", {}),
    "fallback_share": ("fallback_share", {}),
}
SHARE_METRICS = frozenset({"availability", "availability_first_try", "fallback_share"})
# A range tolerance needs two numbers: a missing upper bound of an unbounded metric becomes this.
NO_UPPER_BOUND = 1e12


def to_chaostoolkit_journal(journal: dict[str, Any]) -> dict[str, Any]:
    """The Chaos Toolkit journal of a recdrill drill journal (``DrillRunner.run``'s result).

    Raises:
        ConfigError: ``journal`` lacks a key the conversion needs, or holds a bad value; the
            message names it.
    """
    if not isinstance(journal, dict):
        raise ConfigError(f"a drill journal must be a mapping, got {type(journal).__name__}")
    for key in ("scenario", "start", "end", "status", "deviated", "steady_states"):
        if key not in journal:
            raise ConfigError(f"drill journal: missing {key!r}")
    status = journal["status"]
    if status not in STATUSES:
        raise ConfigError(f"drill journal: status {status!r} is not one of {', '.join(STATUSES)}")
    scenario = journal["scenario"]
    start, end = _time(journal["start"], "start"), _time(journal["end"], "end")
    if end < start:
        raise ConfigError(f"drill journal: end {journal['end']} is before start {journal['start']}")
    clock = _Clock.of(journal, scenario, start, end)
    target = str(journal.get("target", ""))
    probes = {h["name"]: _probe(h, target, scenario) for h in scenario.get("hypotheses", [])}
    steps = scenario.get("faults", [])
    verdicts = {v.get("name"): v for v in journal.get("faults", [])}
    actions = [_action(step, target) for step in steps]
    reverts = [_revert_action(step) for step in steps]
    states = journal["steady_states"]
    runs, rollbacks = [], []
    for step, action, revert in zip(steps, actions, reverts, strict=True):
        verdict = verdicts.get(step.get("name"))
        runs.append(_step_run(action, verdict, clock))
        rollbacks.append(_revert_run(revert, verdict, clock))
    rollbacks += [_rollback_run(i, r, clock) for i, r in enumerate(journal.get("rollbacks") or [])]
    experiment = {
        "version": "1.0.0",
        "title": str(scenario.get("name", "recdrill drill")),
        "description": str(scenario.get("description", "")),
        "tags": ["recdrill", "drill"],
        "steady-state-hypothesis": {"title": "the deployment keeps serving", "probes": list(probes.values())},
        "method": actions,
        "rollbacks": reverts
        + [_rollback_action(str(r.get("action"))) for r in scenario.get("rollbacks", [])],
        "extensions": [_extension(journal)],
    }
    return {
        "chaoslib-version": None,  # chaoslib did not run this; the drill's generator is named below
        "generator": f"recdrill {_recdrill_version()}",
        "platform": platform.platform(),
        "node": platform.node(),
        "experiment": experiment,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "duration": (end - start).total_seconds(),
        "status": status,
        "deviated": bool(journal["deviated"]),
        "steady_states": {
            "before": _state(states.get("before"), probes, clock),
            "after": _state(states.get("after"), probes, clock),
            "during": _during(states.get("during"), journal.get("timeline"), probes, scenario, clock),
        },
        "run": runs,
        "rollbacks": rollbacks,
    }


class _Clock:
    """Places drill seconds (from the start of traffic) on the wall clock."""

    def __init__(self, t0: datetime) -> None:
        self.t0 = t0

    @classmethod
    def of(cls, journal: dict[str, Any], scenario: dict[str, Any], start: datetime, end: datetime) -> _Clock:
        if journal.get("traffic_start"):
            return cls(_time(journal["traffic_start"], "traffic_start"))
        duration = float(scenario.get("traffic", {}).get("duration_s", 0.0))
        return cls(max(start, end - timedelta(seconds=duration)))

    def at(self, seconds: float | None) -> str | None:
        return None if seconds is None else (self.t0 + timedelta(seconds=float(seconds))).isoformat()


def _time(value: Any, key: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(f"drill journal: {key} {value!r} is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise ConfigError(f"drill journal: {key} {value!r} has no time zone")
    return parsed


def _recdrill_version() -> str:
    try:
        return metadata.version("recdrill")
    except metadata.PackageNotFoundError:
        return "unknown"


def _tolerance(hypothesis: dict[str, Any]) -> dict[str, Any]:
    metric = hypothesis.get("metric")
    low = hypothesis.get("min")
    high = hypothesis.get("max")
    # Every metric is non-negative; shares cannot exceed 1.
    upper = 1.0 if metric in SHARE_METRICS else NO_UPPER_BOUND
    return {"type": "range", "range": [0.0 if low is None else low, upper if high is None else high]}


def _probe(hypothesis: dict[str, Any], target: str, scenario: dict[str, Any]) -> dict[str, Any]:
    metric = str(hypothesis.get("metric"))
    if metric in LIVE_PROBES:
        func, extra = LIVE_PROBES[metric]
        arguments: dict[str, Any] = {"base_url": target, **extra}
        if metric == "fallback_share":
            arguments["primary_tier"] = scenario.get("primary_tier", "primary")
        provider = {"type": "python", "module": PROBES_MODULE, "func": func, "arguments": arguments}
    else:
        # Measured by the drill's replay against held-out items: no call reproduces it alone.
        provider = {
            "type": "python",
            "module": "recdrill.drills.timeline",
            "func": "window_stats",
            "arguments": {"metric": metric},
        }
    return {
        "type": "probe",
        "name": str(hypothesis.get("name")),
        "tolerance": _tolerance(hypothesis),
        "provider": provider,
    }


def _fault_name(step: dict[str, Any]) -> str:
    """The catalogue name of a scenario step (``fault`` when the step names one)."""
    if step.get("fault"):
        return str(step["fault"])
    point, kind = step.get("point"), step.get("kind")
    if point == "worker":
        return "worker-kill" if kind == "kill" else "worker-freeze"
    return f"{point}-{kind}"


def _step_params(step: dict[str, Any]) -> dict[str, Any]:
    if isinstance(step.get("params"), dict):
        return dict(step["params"])
    if step.get("point") == "worker":
        return {"worker": step.get("worker", 0)}
    params: dict[str, Any] = {"rate": step.get("rate", 1.0)}
    if step.get("kind") == "latency":
        params["latency_ms"] = step.get("latency_ms")
    return params


def _action(step: dict[str, Any], target: str) -> dict[str, Any]:
    name = str(step.get("name"))
    return {
        "type": "action",
        "name": name,
        "background": True,  # steps follow the drill's schedule, several may overlap
        "provider": {
            "type": "python",
            "module": ACTIONS_MODULE,
            "func": "inject_fault",
            "arguments": {
                "name": _fault_name(step),
                "params": _step_params(step),
                "base_url": target,
                "fault_id": name,
            },
        },
        "pauses": {"before": step.get("at_s", 0), "after": step.get("duration_s", 0)},
    }


def _revert_action(step: dict[str, Any]) -> dict[str, Any]:
    name = str(step.get("name"))
    return {
        "type": "action",
        "name": f"revert {name}",
        "provider": {
            "type": "python",
            "module": ACTIONS_MODULE,
            "func": "revert_fault",
            "arguments": {"fault_id": name},
        },
    }


def _record(
    activity: dict[str, Any], status: str, start: str | None, end: str | None, output: Any
) -> dict[str, Any]:
    duration = 0.0
    if start is not None and end is not None:
        duration = (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    return {
        "activity": activity,
        "status": status,
        "start": start,
        "end": end,
        "duration": duration,
        "output": output,
    }


def _step_run(action: dict[str, Any], verdict: dict[str, Any] | None, clock: _Clock) -> dict[str, Any]:
    """The run record of one fault step: from its injection to its revert (or its planned end)."""
    if verdict is None or verdict.get("injected_at") is None:
        record = _record(action, "failed", None, None, verdict)
        why = (verdict or {}).get("inject_error") or "the drill ended before or while injecting it"
        record["exception"] = [f"the fault was not injected: {why}"]
        return record
    until = verdict.get("reverted_at")
    if until is None:
        until = verdict.get("end", verdict["injected_at"])
    return _record(action, "succeeded", clock.at(verdict["injected_at"]), clock.at(until), verdict)


def _revert_run(action: dict[str, Any], verdict: dict[str, Any] | None, clock: _Clock) -> dict[str, Any]:
    if verdict is None or verdict.get("injected_at") is None:
        return _record(action, "succeeded", None, None, {"reverted": False, "note": "never injected"})
    output = {
        "reverted": bool(verdict.get("reverted")),
        "reverted_at": verdict.get("reverted_at"),
        "revert_error": verdict.get("revert_error"),
        "worker": verdict.get("worker"),
    }
    at = clock.at(verdict.get("reverted_at"))
    record = _record(action, "succeeded" if output["reverted"] else "failed", at, at, output)
    if not output["reverted"]:
        record["exception"] = [f"not reverted: {verdict.get('revert_error') or 'no revert recorded'}"]
    return record


def _rollback_action(name: str) -> dict[str, Any]:
    """A scenario rollback (``remove-server-faults``, ``restore-model``, ``continue-workers``)."""
    provider = {
        "type": "python",
        "module": "recdrill.drills.cleanliness",
        "func": "run_rollback",
        "arguments": {"action": name},
    }
    return {"type": "action", "name": name, "provider": provider}


def _rollback_run(index: int, entry: Any, clock: _Clock) -> dict[str, Any]:
    """A rollback the drill ran on its exit path: ``{"action", "status", "output"}`` (times, when the
    record has them, as drill seconds or ISO strings)."""
    if not isinstance(entry, dict):
        raise ConfigError(f"drill journal: rollbacks[{index}] must be a mapping, got {type(entry).__name__}")
    name = str(entry.get("action") or entry.get("name") or f"rollback {index + 1}")
    status = entry.get("status")
    if status not in ("succeeded", "failed"):
        status = "failed" if entry.get("error") or entry.get("ok") is False else "succeeded"
    start, end = (_when(entry.get(k, entry.get("at")), clock) for k in ("start", "end"))
    output = entry.get("output", entry)
    record = _record(_rollback_action(name), status, start, end, output)
    if status == "failed":
        record["exception"] = [str(entry.get("error") or output or "rollback failed")]
    return record


def _when(value: Any, clock: _Clock) -> str | None:
    """A drill time in seconds, or already a wall-clock ISO string."""
    if value is None or isinstance(value, str):
        return value
    return clock.at(float(value))


def _state(
    state: dict[str, Any] | None, probes: dict[str, dict[str, Any]], clock: _Clock
) -> dict[str, Any] | None:
    """A before/after steady state: each hypothesis a probe run over the drill's window."""
    if state is None:
        return None
    low, high = state.get("window") or (None, None)
    runs = []
    for result in state.get("hypotheses", []):
        record = _record(
            probes.get(result.get("name"), {"type": "probe", "name": result.get("name")}),
            "succeeded",
            clock.at(low),
            clock.at(high),
            result.get("value"),
        )
        record["tolerance_met"] = bool(result.get("ok"))
        runs.append(record)
    return {"steady_state_met": bool(state.get("ok", all(r["tolerance_met"] for r in runs))), "probes": runs}


def _during(
    state: dict[str, Any] | None,
    timeline: list[dict[str, Any]] | None,
    probes: dict[str, dict[str, Any]],
    scenario: dict[str, Any],
    clock: _Clock,
) -> list[dict[str, Any]]:
    """One state per second of the fault phase (between the baseline and the after window), from the
    drill's continuous checks; without a timeline, one state from its list of deviations."""
    window = float(scenario.get("window_s", 1.0))
    first = float(scenario.get("baseline_s", 0.0))
    last = float(scenario.get("traffic", {}).get("duration_s", 0.0)) - float(scenario.get("after_s", 0.0))
    if timeline:
        rows = [(row["t"], set(row.get("deviating", []))) for row in timeline if first <= row["t"] < last]
    elif state is not None:
        deviating = {name for d in state.get("deviations", []) for name in d.get("hypotheses", [])}
        return [_checked(probes, deviating, clock.at(first), clock.at(last))]
    else:
        return []
    # Row t judges the window that ends one second after it.
    return [_checked(probes, bad, clock.at(t + 1 - window), clock.at(t + 1)) for t, bad in rows]


def _checked(
    probes: dict[str, dict[str, Any]], deviating: set[str], start: str | None, end: str | None
) -> dict[str, Any]:
    runs = []
    for name, probe in probes.items():
        record = _record(probe, "succeeded", start, end, None)
        record["tolerance_met"] = name not in deviating
        runs.append(record)
    return {"steady_state_met": not deviating, "probes": runs}


def _extension(journal: dict[str, Any]) -> dict[str, Any]:
    """What Chaos Toolkit has no place for: the drill's measurements, kept as an experiment extension."""
    keys = ("target", "aborted", "baseline", "summary", "scorecard", "alerts", "feedback", "cleanliness")
    return {"name": "recdrill", **{key: journal[key] for key in keys if key in journal}}
