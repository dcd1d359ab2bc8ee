"""The drill journal built from hand-made request records whose right figures are known."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from recdrill.drills.alerts import AlertWatcher, SignalEvent
from recdrill.drills.faults.catalogue import fault_type
from recdrill.drills.feedback_audit import FeedbackAudit, PostedEvent
from recdrill.drills.journal import build_journal
from recdrill.drills.replayer import ReplayPlan, RequestRecord
from recdrill.drills.scenario import Scenario
from recdrill.drills.timeline import RequestTable
from recdrill.drills.verdicts import StepRun

PLAN = ReplayPlan(("u0", "u1"), ("i0", "i1"))
PLAIN = {
    "scenario": "hand-built",
    "description": "one broken ranker",
    "step": "broken-ranker",
    "hypothesis": "available",
    "target": "http://127.0.0.1:8000",
    "error": "",
    "rollback": "removed 0 fault(s)",
    "leftover": "",
    "observed": "nothing",
}
EVIL = {
    "scenario": "<script>alert('name')</script> & co",
    "description": "a & b <i>italic</i>",
    "step": "<b>broken</b> & ranker",
    "hypothesis": "avail<ability>&",
    "target": "http://127.0.0.1:8000/?a=<1>&b=2",
    "error": "RuntimeError: <img src=x onerror=alert(1)> & more",
    "rollback": "<script>rollback()</script>",
    "leftover": "ranker/nan (<script>id</script>)",
    "observed": "<em>seen</em> & told",
}


def sample_scenario(names: dict[str, str] = PLAIN) -> Scenario:
    """10 s of traffic; baseline 3 s, after 2 s, 1 s windows; one ranker-error fault at 4-6 s."""
    return Scenario.model_validate(
        {
            "name": names["scenario"],
            "description": names["description"],
            "traffic": {"rate": 4, "duration_s": 10, "seed": 1},
            "baseline_s": 3,
            "after_s": 2,
            "window_s": 1,
            "faults": [{"name": names["step"], "fault": "ranker-error", "at_s": 4, "duration_s": 2}],
            "hypotheses": [{"name": names["hypothesis"], "metric": "availability", "min": 0.9}],
        }
    )


def sample_records() -> list[RequestRecord]:
    """Four requests a second for 10 s, all served by the primary (NDCG 0.5, 10 ms) but in seconds 4
    and 5: there one is served by popularity (NDCG 0.25), two fail after a retry, one is fine (40 ms
    each); and at 7.1 s one succeeds on its retry."""
    records = []
    for second in range(10):
        for offset in (0.1, 0.3, 0.5, 0.7):
            t = second + offset
            if second in (4, 5):
                if offset == 0.1:
                    records.append(RequestRecord(t, 40.0, 200, "popular", 1.0, 0.25))
                elif offset in (0.3, 0.5):
                    records.append(RequestRecord(t, 40.0, 503, None, 0.0, 0.0, "down", first_status=503))
                else:
                    records.append(RequestRecord(t, 40.0, 200, "primary", 1.0, 0.5))
            elif (second, offset) == (7, 0.1):
                records.append(RequestRecord(t, 10.0, 200, "primary", 1.0, 0.5, first_status=503))
            else:
                records.append(RequestRecord(t, 10.0, 200, "primary", 1.0, 0.5))
    return records


def sample_inputs(names: dict[str, str] = PLAIN) -> dict[str, Any]:
    """build_journal's arguments for the sample drill."""
    scenario = sample_scenario(names)
    step = scenario.faults[0]
    ftype = fault_type(step.fault)
    run = StepRun(step, ftype, step.parsed_params(), injected_at_s=4.01, reverted_at_s=6.02)
    run.observed = {"note": names["observed"], "count": 0, "replaced_s": 0.0}
    if names["error"]:
        run.revert_error = names["error"]
    watcher = AlertWatcher(events=[SignalEvent(1.0, "drift"), SignalEvent(4.5, "fallback")])
    audit = FeedbackAudit(PLAN, rate=1.0)
    audit.posted = [
        PostedEvent(1.0, "e0", 200),
        PostedEvent(4.5, "e1", 200),
        PostedEvent(5.0, "e2", 503),
        PostedEvent(6.0, "e3", 0),
    ]
    audit.missing = {"e1"}
    return {
        "scenario": scenario,
        "target": names["target"],
        "table": RequestTable.from_records(sample_records()),
        "runs": [run],
        "watcher": watcher,
        "audit": audit,
        "started_at": datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC),
        "status": "completed",
        "rollbacks": [
            {
                "action": "remove-server-faults",
                "status": "succeeded",
                "output": names["rollback"],
                "start": "s",
                "end": "e",
            }
        ],
        "cleanliness": {
            "ok": not names["leftover"],
            "all_reverted": True,
            "leftovers": [names["leftover"]] if names["leftover"] else [],
            "active_faults": 1 if names["leftover"] else 0,
            "stopped_workers": 0,
            "workers": {"before": 2, "after": 2},
            "ready": True,
            "model_version": {"before": "v1", "after": "v1", "same": True},
        },
        "traffic_start": datetime(2020, 1, 2, 3, 4, 6, tzinfo=UTC),
    }


def sample_journal(names: dict[str, str] = PLAIN) -> dict[str, Any]:
    """The sample drill's journal (the report tests import it); ``EVIL`` names hold markup and ``&``."""
    return build_journal(**sample_inputs(names))


@pytest.fixture(scope="module")
def journal() -> dict[str, Any]:
    return sample_journal()


def test_the_journal_has_every_section(journal: dict[str, Any]) -> None:
    assert list(journal) == [
        "scenario",
        "target",
        "start",
        "traffic_start",
        "end",
        "status",
        "deviated",
        "aborted",
        "baseline",
        "steady_states",
        "faults",
        "scorecard",
        "alerts",
        "feedback",
        "summary",
        "rollbacks",
        "cleanliness",
        "timeline",
    ]
    assert journal["scenario"] == sample_scenario().model_dump()
    assert (journal["target"], journal["status"], journal["aborted"]) == (
        "http://127.0.0.1:8000",
        "completed",
        None,
    )
    assert journal["start"] == "2020-01-02T03:04:05+00:00"
    assert journal["traffic_start"] == "2020-01-02T03:04:06+00:00"
    assert datetime.fromisoformat(journal["end"]) > datetime.fromisoformat(journal["start"])


def test_the_baseline_is_the_fault_free_lead_in(journal: dict[str, Any]) -> None:
    assert journal["baseline"] == {"ndcg10": 0.5, "p99_ms": 10.0, "requests": 12}


def test_steady_states_hold_before_and_after_and_deviate_during_the_fault(journal: dict[str, Any]) -> None:
    states = journal["steady_states"]
    assert states["before"]["ok"] is True and states["before"]["window"] == [0.0, 3]
    assert states["before"]["hypotheses"] == [
        {"name": "available", "metric": "availability", "min": 0.9, "max": None, "value": 1.0, "ok": True}
    ]
    assert states["during"] == {
        "ok": False,
        "deviations": [{"t": 4, "hypotheses": ["available"]}, {"t": 5, "hypotheses": ["available"]}],
    }
    assert states["after"]["ok"] is True and states["after"]["window"] == [8, 10]
    assert journal["deviated"] is True
    assert len(journal["timeline"]) == 10 and journal["timeline"][4]["error_rate"] == 0.5


def test_the_faults_verdict_is_in_the_journal(journal: dict[str, Any]) -> None:
    [fault] = journal["faults"]
    assert fault["name"] == "broken-ranker" and fault["fault"] == "ranker-error" and fault["kind"] == "ml"
    assert (fault["start"], fault["end"], fault["injected_at"], fault["reverted_at"]) == (4, 6, 4.01, 6.02)
    assert (fault["detect_s"], fault["detected_by"], fault["alert_s"]) == (0.5, "alert:fallback", 0.5)
    assert fault["deviation_s"] == 1.0 and fault["recover_s"] == 1.0 and fault["recovered"] is True
    assert fault["failover_s"] == pytest.approx(0.1)
    assert (fault["requests"], fault["availability"], fault["availability_first_try"]) == (8, 0.5, 0.5)
    assert fault["quality_kept"] == pytest.approx(0.375)
    assert fault["served_by"] == {"popular": 2, "primary": 2}
    assert fault["events_lost"] == 1


def test_the_scorecard_fails_the_fault_on_availability_quality_and_loss(journal: dict[str, Any]) -> None:
    [row] = journal["scorecard"]
    assert row["checks"] == {
        "detected": True,
        "recovered": True,
        "available": False,
        "quality": False,
        "no_data_lost": False,
        "reverted": True,
    }
    assert row["passed"] is False


def test_alerts_feedback_and_summary(journal: dict[str, Any]) -> None:
    assert journal["alerts"] == [{"t": 1.0, "signal": "drift"}, {"t": 4.5, "signal": "fallback"}]
    assert journal["feedback"] == {
        "posted": 4,
        "acknowledged": 2,
        "refused": 1,
        "unanswered": 1,
        "skipped": 0,
        "lost": 1,
        "check_error": None,
    }
    summary = journal["summary"]
    assert (summary["requests"], summary["availability"], summary["availability_first_try"]) == (
        40,
        0.9,
        0.875,
    )
    assert (summary["failed_first_try"], summary["failed_after_retry"], summary["retried"]) == (5, 4, 5)
    assert (summary["p50_ms"], summary["p95_ms"]) == (10.0, 40.0)
    assert summary["fallback_share"] == pytest.approx(2 / 36)
    assert summary["served_by"] == {"popular": 2, "primary": 34}
    assert summary["events_lost"] == 1
    assert summary["ndcg10"] == pytest.approx((32 * 0.5 + 2 * 0.25 + 2 * 0.5) / 40)


def test_a_drill_that_sent_nothing_still_has_a_journal() -> None:
    inputs = sample_inputs()
    inputs["table"] = RequestTable.from_records([])
    inputs["runs"] = []
    inputs["watcher"] = AlertWatcher()
    inputs["audit"] = FeedbackAudit(PLAN, rate=1.0)
    inputs["traffic_start"] = None
    inputs["status"] = "failed"
    journal = build_journal(**inputs)
    assert journal["status"] == "failed" and journal["traffic_start"] is None
    assert journal["baseline"] == {"ndcg10": None, "p99_ms": None, "requests": 0}
    assert journal["deviated"] is False  # no data deviates from nothing
    assert journal["summary"]["requests"] == 0 and journal["summary"]["p95_ms"] is None
    assert journal["faults"] == [] and journal["scorecard"] == []
    assert journal["feedback"]["lost"] is None and journal["summary"]["events_lost"] is None


def test_skipped_requests_are_counted_apart_and_leave_availability_alone(journal: dict[str, Any]) -> None:
    summary = journal["summary"]
    assert (summary["skipped"], summary["skipped_share"], summary["judgement_weak"]) == (0, 0.0, False)
    assert all(row["skipped"] == 0 for row in journal["timeline"])
    inputs = sample_inputs()
    inputs["skipped"] = [2.5, 8.25, 8.5, 8.75]  # four requests the drill was too late to send
    skipped = build_journal(**inputs)
    assert skipped["summary"]["skipped"] == 4 and skipped["summary"]["skipped_share"] == 4 / 44
    assert skipped["summary"]["judgement_weak"] is False
    assert [row["skipped"] for row in skipped["timeline"]] == [0, 0, 1, 0, 0, 0, 0, 0, 3, 0]
    # Not sent is not failed: availability and every verdict are those of the requests that went.
    assert skipped["summary"]["availability"] == journal["summary"]["availability"] == 0.9
    assert skipped["scorecard"] == journal["scorecard"]


def test_a_drill_that_sent_less_than_half_its_traffic_has_a_weak_judgement() -> None:
    inputs = sample_inputs()
    inputs["skipped"] = [i / 5 for i in range(50)]  # 50 unsent against 40 sent
    summary = build_journal(**inputs)["summary"]
    assert summary["skipped_share"] == 50 / 90 and summary["judgement_weak"] is True
