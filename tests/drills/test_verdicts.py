"""Per-fault verdicts and the scorecard from hand-made records: detect, fail over, recover, loss."""

from __future__ import annotations

from typing import Any

import pytest

from recdrill.drills.alerts import AlertWatcher, SignalEvent
from recdrill.drills.faults.catalogue import fault_type
from recdrill.drills.feedback_audit import FeedbackAudit, PostedEvent
from recdrill.drills.replayer import RequestRecord
from recdrill.drills.scenario import Scenario
from recdrill.drills.timeline import RequestTable, per_second, window_stats
from recdrill.drills.verdicts import StepRun, fault_verdicts, scorecard
from tests.drills.test_journal import PLAN, sample_records


def scenario_with(faults: list[dict[str, Any]], **objectives: float) -> Scenario:
    return Scenario.model_validate(
        {
            "name": "verdicts",
            "traffic": {"rate": 4, "duration_s": 10},
            "baseline_s": 3,
            "after_s": 2,
            "window_s": 1,
            "faults": faults,
            "hypotheses": [{"name": "available", "metric": "availability", "min": 0.9}],
            "objectives": objectives,
        }
    )


def runs_of(scenario: Scenario, injected: bool = True) -> list[StepRun]:
    runs = []
    for step in scenario.faults:
        run = StepRun(step, fault_type(step.fault), step.parsed_params())
        if injected:
            run.injected_at_s, run.reverted_at_s = step.start_s, step.end_s
        runs.append(run)
    return runs


def verdicts(
    scenario: Scenario,
    records: list[RequestRecord],
    runs: list[StepRun] | None = None,
    events: list[SignalEvent] | None = None,
    audit: FeedbackAudit | None = None,
) -> list[dict[str, Any]]:
    table = RequestTable.from_records(records)
    base = window_stats(table, 0.0, scenario.baseline_s, "primary").ndcg10
    rows = per_second(table, 10, scenario.hypotheses, scenario.window_s, "primary", base)
    watcher = AlertWatcher(events=events or [])
    return fault_verdicts(runs or runs_of(scenario), rows, table, scenario, base, watcher, audit)


def healthy(seconds: range = range(10)) -> list[RequestRecord]:
    return [
        RequestRecord(s + o, 10.0, 200, "primary", 1.0, 0.5) for s in seconds for o in (0.1, 0.3, 0.5, 0.7)
    ]


def failing(seconds: range) -> list[RequestRecord]:
    return [RequestRecord(s + o, 10.0, 503, None, 0.0, 0.0) for s in seconds for o in (0.1, 0.3, 0.5, 0.7)]


ONE_FAULT = [{"name": "broken", "fault": "ranker-error", "at_s": 4, "duration_s": 2}]


def test_a_step_needs_a_revert_only_between_inject_and_revert() -> None:
    [run] = runs_of(scenario_with(ONE_FAULT), injected=False)
    assert (run.injected, run.needs_revert) == (False, False)
    run.injected_at_s = 4.0
    assert (run.injected, run.needs_revert) == (True, True)
    run.reverted_at_s = 6.0
    assert (run.injected, run.needs_revert) == (True, False)


def test_an_absorbed_fault_needs_no_detection_and_no_recovery() -> None:
    [verdict] = verdicts(scenario_with(ONE_FAULT), healthy())
    assert (verdict["detect_s"], verdict["detected_by"], verdict["deviation_s"], verdict["alert_s"]) == (
        None,
        None,
        None,
        None,
    )
    assert (verdict["recover_s"], verdict["recovered"], verdict["failover_s"]) == (None, True, None)
    assert verdict["quality_kept"] == 1.0 and verdict["events_lost"] is None  # no audit: unknown
    [row] = scorecard([verdict], scenario_with(ONE_FAULT))
    assert row["passed"] is True and all(row["checks"].values())


def test_detection_by_hypothesis_when_the_alert_was_already_firing_in_the_baseline() -> None:
    records = healthy(range(0, 4)) + failing(range(4, 6)) + healthy(range(6, 10))
    noisy = [SignalEvent(1.0, "fallback"), SignalEvent(4.2, "fallback")]
    [verdict] = verdicts(scenario_with(ONE_FAULT), records, events=noisy)
    assert (verdict["detect_s"], verdict["detected_by"], verdict["alert_s"]) == (
        1.0,
        "hypotheses:available",
        None,
    )
    assert (verdict["recover_s"], verdict["recovered"]) == (1.0, True)


def test_only_the_faults_own_alerts_detect_it() -> None:
    records = healthy(range(0, 4)) + failing(range(4, 6)) + healthy(range(6, 10))
    unrelated = [SignalEvent(4.2, "drift")]  # ranker-error is told by fallback or breaker-open
    [verdict] = verdicts(scenario_with(ONE_FAULT), records, events=unrelated)
    assert verdict["alert_s"] is None and verdict["detected_by"] == "hypotheses:available"
    own = [SignalEvent(3.5, "breaker-open"), SignalEvent(4.3, "breaker-open")]  # 3.5: before the fault
    [verdict] = verdicts(scenario_with(ONE_FAULT), records, events=own)
    assert verdict["alert_s"] == pytest.approx(0.3) and verdict["detected_by"] == "alert:breaker-open"
    assert verdict["detect_s"] == pytest.approx(0.3)


def test_an_alert_after_the_window_following_the_revert_is_someone_elses() -> None:
    [verdict] = verdicts(scenario_with(ONE_FAULT), healthy(), events=[SignalEvent(7.5, "fallback")])
    assert verdict["alert_s"] is None and verdict["detect_s"] is None  # the sign window ends at 6 + 1 s
    [verdict] = verdicts(scenario_with(ONE_FAULT), healthy(), events=[SignalEvent(6.5, "fallback")])
    assert verdict["alert_s"] == 2.5


def test_a_fault_that_never_recovers_fails_the_scorecard() -> None:
    records = healthy(range(0, 4)) + failing(range(4, 10))
    scenario = scenario_with(ONE_FAULT)
    [verdict] = verdicts(scenario, records)
    assert (verdict["recover_s"], verdict["recovered"], verdict["availability"]) == (None, False, 0.0)
    [row] = scorecard([verdict], scenario)
    assert row["checks"]["recovered"] is False and row["checks"]["available"] is False
    assert row["passed"] is False


def test_recovery_is_looked_for_only_until_the_next_fault_starts() -> None:
    faults = [
        {"name": "first", "fault": "ranker-error", "at_s": 4, "duration_s": 1},
        {"name": "second", "fault": "ranker-nan", "at_s": 6, "duration_s": 1},
    ]
    records = healthy(range(0, 4)) + failing(range(4, 8)) + healthy(range(8, 10))
    first, second = verdicts(scenario_with(faults), records)
    assert first["recovered"] is False  # still down at 5 s, and from 6 s it is the second fault's
    assert (second["recover_s"], second["recovered"]) == (2.0, True)  # down until 8 s, ended at 7 s
    assert first["requests"] == 4 and second["requests"] == 4


def test_fail_over_is_the_first_fallback_answer_after_the_fault_began() -> None:
    records = healthy(range(0, 4)) + healthy(range(5, 10))
    records += [
        RequestRecord(4.1, 5.0, 200, "primary", 1.0, 0.5),
        RequestRecord(4.6, 5.0, 200, "popular", 0.0, 0.0),
    ]
    records += [RequestRecord(3.9, 5.0, 200, "popular", 0.0, 0.0)]  # before the fault: not its fail over
    [verdict] = verdicts(scenario_with(ONE_FAULT), records)
    assert verdict["failover_s"] == pytest.approx(0.6)
    assert verdict["served_by"] == {"popular": 1, "primary": 5}


def test_events_lost_count_those_posted_from_the_fault_to_its_horizon() -> None:
    audit = FeedbackAudit(PLAN, rate=1.0)
    audit.posted = [PostedEvent(t, f"e{t}", 200) for t in (2.0, 4.5, 8.0)]
    audit.missing = {"e2.0", "e4.5", "e8.0"}
    [verdict] = verdicts(scenario_with(ONE_FAULT), healthy(), audit=audit)
    assert verdict["events_lost"] == 2  # 4.5 and 8.0: within [4, 10); 2.0 was before the fault
    [row] = scorecard([verdict], scenario_with(ONE_FAULT))
    assert row["checks"]["no_data_lost"] is False and row["passed"] is False


def test_a_fault_that_could_not_be_injected_is_not_reverted() -> None:
    scenario = scenario_with(ONE_FAULT)
    [run] = runs_of(scenario, injected=False)
    run.inject_error = "FaultRefusedError: no"
    [verdict] = verdicts(scenario, healthy(), runs=[run])
    assert (verdict["reverted"], verdict["injected_at"], verdict["inject_error"]) == (
        False,
        None,
        run.inject_error,
    )
    [row] = scorecard([verdict], scenario)
    assert row["checks"]["reverted"] is False and row["passed"] is False


@pytest.mark.parametrize(
    ("field", "value", "check"),
    [
        ("detect_s", 15.5, "detected"),
        ("recover_s", 31.0, "recovered"),
        ("availability", 0.98, "available"),
        ("quality_kept", 0.49, "quality"),
        ("events_lost", 1, "no_data_lost"),
    ],
)
def test_each_check_fails_just_past_its_objective(field: str, value: float, check: str) -> None:
    scenario = scenario_with(ONE_FAULT)
    [verdict] = verdicts(scenario, sample_records())
    passing = {
        **verdict,
        "detect_s": 15.0,
        "recover_s": 30.0,
        "availability": 0.99,
        "quality_kept": 0.5,
        "events_lost": 0,
        "recovered": True,
    }
    [row] = scorecard([passing], scenario)
    assert row["passed"] is True
    [row] = scorecard([{**passing, field: value}], scenario)
    assert [name for name, ok in row["checks"].items() if not ok] == [check]
    assert row["passed"] is False


def test_scorecard_rows_carry_the_objectives_of_the_scenario() -> None:
    scenario = scenario_with(ONE_FAULT, detect_s=5.0, availability=0.5)
    [verdict] = verdicts(scenario, sample_records())
    [row] = scorecard([verdict], scenario)
    assert row["objectives"] == {
        "detect_s": 5.0,
        "failover_s": 2.0,
        "recover_s": 30.0,
        "availability": 0.5,
        "quality_kept": 0.5,
    }
    assert (row["fault"], row["type"], row["kind"]) == ("broken", "ranker-error", "ml")
    assert row["checks"]["available"] is True  # 0.5 against an objective of 0.5


def test_a_fault_the_drill_never_reached_neither_passes_nor_fails_its_revert() -> None:
    scenario = scenario_with(ONE_FAULT)
    [run] = runs_of(scenario, injected=False)  # the drill aborted before the step began
    [verdict] = verdicts(scenario, healthy(), runs=[run])
    assert (verdict["reverted"], verdict["injected_at"], verdict["inject_error"]) == (False, None, None)
    [row] = scorecard([verdict], scenario)
    assert row["reached"] is False and row["checks"]["reverted"] is True and row["passed"] is False
