"""The Chaos Toolkit journal export, on a small hand-built drill journal whose answers are known."""

from __future__ import annotations

import copy
import json
from datetime import datetime
from typing import Any

import pytest

from recdrill.chaos.journal import to_chaostoolkit_journal
from recdrill.data.loading import load_dataset
from recdrill.data.splits import leave_one_out
from recdrill.drills.replayer import ReplayPlan
from recdrill.drills.runner import DrillRunner
from recdrill.drills.scenario import parse_scenario
from recdrill.drills.target import DrillTarget
from recdrill.errors import ConfigError
from recdrill.serving.runtime.local_process import ServerProcess
from tests.chaos.conftest import DATA, KEY

HYPOTHESES = [
    {"name": "available", "metric": "availability", "min": 0.99, "max": None},
    {"name": "mostly-primary", "metric": "fallback_share", "min": None, "max": 0.1},
    {"name": "quality", "metric": "ndcg_ratio", "min": 0.8, "max": None},
]


def drill_journal() -> dict[str, Any]:
    """A 20 s drill: baseline 0-6 s, one latency fault 6-10 s (deviating at 7 and 8), after 15-20 s,
    and a kill that was never injected. Traffic starts 2 s after the drill."""
    return {
        "scenario": {
            "name": "slow-ranker",
            "description": "one slow ranker",
            "traffic": {"rate": 10, "duration_s": 20, "seed": 1},
            "baseline_s": 6,
            "after_s": 5,
            "window_s": 2,
            "primary_tier": "primary",
            "faults": [
                {
                    "name": "slow",
                    "fault": "ranker-latency",
                    "at_s": 6,
                    "gap_s": 5.0,
                    "duration_s": 4,
                    "params": {"latency_ms": 200},
                },
                {
                    "name": "kill",
                    "fault": "worker-kill",
                    "at_s": 12,
                    "duration_s": 2,
                    "params": {"worker": 1},
                },
            ],
            "rollbacks": [{"action": "remove-server-faults"}, {"action": "continue-workers"}],
            "hypotheses": HYPOTHESES,
        },
        "target": "http://127.0.0.1:9999",
        "start": "2026-01-01T10:00:00+00:00",
        "end": "2026-01-01T10:00:23.500000+00:00",
        "traffic_start": "2026-01-01T10:00:02+00:00",
        "status": "completed",
        "deviated": True,
        "steady_states": {
            "before": {
                "ok": True,
                "window": [0, 6],
                "hypotheses": [
                    {**HYPOTHESES[0], "value": 1.0, "ok": True},
                    {**HYPOTHESES[1], "value": 0.0, "ok": True},
                    {**HYPOTHESES[2], "value": 1.0, "ok": True},
                ],
            },
            "during": {
                "ok": False,
                "deviations": [
                    {"t": 7, "hypotheses": ["mostly-primary"]},
                    {"t": 8, "hypotheses": ["mostly-primary"]},
                ],
            },
            "after": {
                "ok": False,
                "window": [15, 20],
                "hypotheses": [
                    {**HYPOTHESES[0], "value": 0.98, "ok": False},
                    {**HYPOTHESES[1], "value": 0.05, "ok": True},
                    {**HYPOTHESES[2], "value": None, "ok": True},
                ],
            },
        },
        "faults": [
            {
                "name": "slow",
                "fault": "ranker-latency",
                "kind": "ml",
                "start": 6,
                "end": 10,
                "injected_at": 6.25,
                "reverted_at": 10.5,
                "reverted": True,
                "revert_error": None,
                "detect_s": 2.0,
                "failover_s": 0.1,
                "recover_s": 1.0,
                "worker": None,
            },
            {
                "name": "kill",
                "fault": "worker-kill",
                "kind": "infrastructure",
                "inject_error": "fault 'worker-kill' needs the server's worker pids",
                "start": 12,
                "end": 14,
                "injected_at": None,
                "reverted_at": None,
                "reverted": False,
                "revert_error": None,
                "detect_s": None,
                "failover_s": None,
                "recover_s": None,
                "worker": None,
            },
        ],
        "summary": {"requests": 200, "availability": 0.99},
        "cleanliness": {"active_faults": 0, "ok": True},
        "timeline": [
            {"t": t, "hypotheses_ok": t not in (7, 8), "deviating": ["mostly-primary"] if t in (7, 8) else []}
            for t in range(20)
        ],
    }


def seconds(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def test_the_journal_has_chaos_toolkits_keys_and_round_trips_as_json() -> None:
    ctk = to_chaostoolkit_journal(drill_journal())
    assert set(ctk) >= {
        "chaoslib-version",
        "platform",
        "node",
        "experiment",
        "start",
        "end",
        "duration",
        "status",
        "deviated",
        "steady_states",
        "run",
        "rollbacks",
    }
    experiment_keys = {"title", "description", "steady-state-hypothesis", "method", "rollbacks"}
    assert set(ctk["experiment"]) >= experiment_keys
    assert set(ctk["steady_states"]) == {"before", "after", "during"}
    assert json.loads(json.dumps(ctk, allow_nan=False)) == ctk  # strict JSON: no NaN or Infinity
    assert (ctk["status"], ctk["deviated"]) == ("completed", True)
    assert ctk["duration"] == pytest.approx(23.5)


def test_the_experiment_is_rebuilt_from_the_scenario() -> None:
    experiment = to_chaostoolkit_journal(drill_journal())["experiment"]
    assert experiment["title"] == "slow-ranker"
    probes = experiment["steady-state-hypothesis"]["probes"]
    assert [p["name"] for p in probes] == ["available", "mostly-primary", "quality"]
    # Missing bounds become the metric's natural ones: shares live in [0, 1].
    assert [p["tolerance"] for p in probes[:2]] == [
        {"type": "range", "range": [0.99, 1.0]},
        {"type": "range", "range": [0.0, 0.1]},
    ]
    provider = probes[0]["provider"]
    assert (provider["module"], provider["func"]) == ("recdrill.chaos.probes", "availability")
    assert provider["arguments"] == {"base_url": "http://127.0.0.1:9999", "retry": True}
    slow, kill = experiment["method"]
    assert slow["provider"]["func"] == "inject_fault"
    assert slow["provider"]["arguments"] == {
        "name": "ranker-latency",
        "params": {"latency_ms": 200},
        "base_url": "http://127.0.0.1:9999",
        "fault_id": "slow",
    }
    assert slow["pauses"] == {"before": 6, "after": 4}
    assert kill["provider"]["arguments"]["name"] == "worker-kill"
    assert [r["provider"]["arguments"] for r in experiment["rollbacks"]] == [
        {"fault_id": "slow"},
        {"fault_id": "kill"},
        {"action": "remove-server-faults"},
        {"action": "continue-workers"},
    ]
    (extension,) = experiment["extensions"]
    assert extension["name"] == "recdrill" and extension["cleanliness"] == {"active_faults": 0, "ok": True}


def test_steady_states_map_each_hypothesis_to_a_probe_run() -> None:
    states = to_chaostoolkit_journal(drill_journal())["steady_states"]
    before, after = states["before"], states["after"]
    assert before["steady_state_met"] is True and after["steady_state_met"] is False
    assert [p["tolerance_met"] for p in after["probes"]] == [False, True, True]
    assert [p["output"] for p in after["probes"]] == [0.98, 0.05, None]
    # The after window is 15-20 s of traffic, which started at 10:00:02.
    first = after["probes"][0]
    assert (first["start"], first["end"]) == ("2026-01-01T10:00:17+00:00", "2026-01-01T10:00:22+00:00")
    assert first["duration"] == pytest.approx(5.0)
    # During: one state per second between the baseline (6 s) and the after window (15 s).
    during = states["during"]
    assert len(during) == 9
    met = [state["steady_state_met"] for state in during]
    assert met == [True, False, False, True, True, True, True, True, True]
    bad = {p["activity"]["name"]: p["tolerance_met"] for p in during[1]["probes"]}
    assert bad == {"available": True, "mostly-primary": False, "quality": True}


def test_without_a_timeline_during_is_one_state_from_the_deviations() -> None:
    journal = drill_journal()
    del journal["timeline"]
    (state,) = to_chaostoolkit_journal(journal)["steady_states"]["during"]
    assert state["steady_state_met"] is False
    assert {p["activity"]["name"] for p in state["probes"] if not p["tolerance_met"]} == {"mostly-primary"}


def test_runs_span_each_fault_and_rollbacks_record_the_reverts() -> None:
    ctk = to_chaostoolkit_journal(drill_journal())
    slow, kill = ctk["run"]
    assert slow["status"] == "succeeded"
    assert slow["start"] == "2026-01-01T10:00:08.250000+00:00"  # traffic start + 6.25 s
    assert slow["duration"] == pytest.approx(10.5 - 6.25)
    assert slow["duration"] == pytest.approx(seconds(slow["start"], slow["end"]))
    assert slow["output"]["detect_s"] == 2.0
    assert kill["status"] == "failed" and kill["start"] is None
    (why,) = kill["exception"]
    assert why == "the fault was not injected: fault 'worker-kill' needs the server's worker pids"
    revert_slow, revert_kill = ctk["rollbacks"]
    assert revert_slow["status"] == "succeeded" and revert_slow["output"]["reverted"] is True
    assert revert_slow["activity"]["name"] == "revert slow"
    assert revert_kill["output"] == {"reverted": False, "note": "never injected"}


def test_a_fault_left_injected_fails_its_rollback() -> None:
    journal = drill_journal()
    journal["faults"][0].update(reverted_at=None, reverted=False, revert_error="HTTP 500")
    revert = to_chaostoolkit_journal(journal)["rollbacks"][0]
    assert revert["status"] == "failed" and "HTTP 500" in revert["exception"][0]
    # The run record then spans the fault's planned time.
    assert to_chaostoolkit_journal(journal)["run"][0]["duration"] == pytest.approx(10 - 6.25)


def test_the_drills_own_rollbacks_are_appended() -> None:
    journal = drill_journal()
    journal["rollbacks"] = [
        {"action": "remove-server-faults", "status": "succeeded", "output": "removed 0 fault(s)"},
        {"action": "continue-workers", "status": "failed", "output": "OSError: no such process"},
    ]
    rollbacks = to_chaostoolkit_journal(journal)["rollbacks"]
    assert len(rollbacks) == 4
    ok, failed = rollbacks[2:]
    assert (ok["activity"]["name"], ok["status"], ok["output"]) == (
        "remove-server-faults",
        "succeeded",
        "removed 0 fault(s)",
    )
    assert ok["activity"]["provider"]["arguments"] == {"action": "remove-server-faults"}
    assert (failed["activity"]["name"], failed["status"]) == ("continue-workers", "failed")
    assert failed["exception"] == ["OSError: no such process"]


@pytest.mark.parametrize("status", ["completed", "interrupted", "failed", "aborted"])
def test_statuses_map_one_to_one(status: str) -> None:
    journal = drill_journal()
    journal["status"] = status
    assert to_chaostoolkit_journal(journal)["status"] == status


def test_without_traffic_start_the_clock_counts_back_from_the_end() -> None:
    journal = drill_journal()
    del journal["traffic_start"]
    run = to_chaostoolkit_journal(journal)["run"][0]
    # end 10:00:23.5 - 20 s of traffic = 10:00:03.5; injected 6.25 s later.
    assert run["start"] == "2026-01-01T10:00:09.750000+00:00"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"status": "deviated"}, "status 'deviated' is not one of"),
        ({"start": "yesterday"}, "start 'yesterday' is not an ISO 8601 time"),
        ({"end": "2026-01-01T09:00:00+00:00"}, "is before start"),
        ({"rollbacks": ["oops"]}, "rollbacks[0] must be a mapping"),
    ],
)
def test_bad_journals_are_refused_with_the_problem_named(change: dict[str, Any], message: str) -> None:
    journal = copy.deepcopy(drill_journal())
    journal.update(change)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        to_chaostoolkit_journal(journal)


def test_a_missing_key_is_named() -> None:
    journal = drill_journal()
    del journal["steady_states"]
    with pytest.raises(ConfigError, match="missing 'steady_states'"):
        to_chaostoolkit_journal(journal)


def test_a_real_drills_journal_converts(server: ServerProcess) -> None:
    """The converter reads what DrillRunner actually writes, not only the hand-built journal above."""
    scenario = parse_scenario(
        """
name: short-slow-ranker
traffic: {rate: 20, duration_s: 9, seed: 3, warmup_requests: 5}
baseline_s: 3
after_s: 2
window_s: 1
faults:
  - {name: slow, at_s: 3, duration_s: 3, kind: latency, latency_ms: 200}
hypotheses:
  - {name: available, metric: availability, min: 0.9}
"""
    )
    plan = ReplayPlan.from_fold(leave_one_out(load_dataset(DATA)).test)
    journal = DrillRunner(scenario, DrillTarget(server.url, KEY, plan=plan)).run()
    ctk = to_chaostoolkit_journal(json.loads(json.dumps(journal)))  # as read back from report.json

    assert ctk["status"] == "completed" and ctk["deviated"] == journal["deviated"]
    assert ctk["duration"] == pytest.approx(seconds(journal["start"], journal["end"]))
    (run,) = ctk["run"]
    assert run["status"] == "succeeded" and 2.0 <= run["duration"] <= 6.0  # injected ~3 s, reverted ~6 s
    assert journal["start"] <= run["start"] <= run["end"] <= journal["end"]
    revert, *rollbacks = ctk["rollbacks"]
    assert revert["status"] == "succeeded" and revert["output"]["reverted"] is True
    assert [r["activity"]["name"] for r in rollbacks] == [r["action"] for r in journal["rollbacks"]]
    assert all(r["status"] == "succeeded" for r in rollbacks)
    assert ctk["steady_states"]["before"]["steady_state_met"] is True
    assert len(ctk["steady_states"]["during"]) == 4  # seconds 3..6, between baseline and after window
    assert json.loads(json.dumps(ctk, allow_nan=False)) == ctk


def test_steps_of_the_first_scenario_format_name_their_catalogue_fault() -> None:
    """report.json files written before the catalogue hold point/kind steps."""
    journal = drill_journal()
    journal["scenario"]["faults"] = [
        {"name": "slow", "at_s": 6, "duration_s": 4, "point": "ranker", "kind": "latency",
         "latency_ms": 200, "rate": 1.0, "worker": 0},
        {"name": "kill", "at_s": 12, "duration_s": 2, "point": "worker", "kind": "pause",
         "latency_ms": 0, "rate": 1.0, "worker": 1},
    ]  # fmt: skip
    slow, kill = to_chaostoolkit_journal(journal)["experiment"]["method"]
    assert slow["provider"]["arguments"]["name"] == "ranker-latency"
    assert slow["provider"]["arguments"]["params"] == {"rate": 1.0, "latency_ms": 200}
    assert kill["provider"]["arguments"]["name"] == "worker-freeze"
    assert kill["provider"]["arguments"]["params"] == {"worker": 1}
