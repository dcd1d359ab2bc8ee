"""DrillRunner against a scripted target: a tiny drill end to end, refusals before traffic, abort."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from recdrill.drills.replayer import ReplayPlan, arrival_times
from recdrill.drills.runner import TTL_MARGIN_S, DrillRunner
from recdrill.drills.scenario import parse_scenario
from recdrill.drills.stop import StopSwitch
from recdrill.drills.target import DrillTarget
from recdrill.errors import DrillError
from tests.drills.test_target import KEY, FakeDeployment, Pids, closed_port_url

PLAN = ReplayPlan(tuple(f"u{n}" for n in range(8)), tuple(f"i{n}" for n in range(8)))
READER = "reader-key"

TINY = """
name: tiny
traffic: {rate: 20, duration_s: 3, seed: 3, warmup_requests: 2, feedback_rate: 5}
baseline_s: 1
after_s: 1
window_s: 1
faults:
  - {name: slow, fault: ranker-latency, at_s: 1, duration_s: 1, params: {latency_ms: 30}}
hypotheses:
  - {name: mostly-primary, metric: fallback_share, max: 0.5}
rollbacks:
  - {action: remove-server-faults}
  - {action: continue-workers}
"""


@pytest.fixture
def fake() -> Iterator[FakeDeployment]:
    with FakeDeployment() as running:
        running.answers = dict(zip(PLAN.user_ids, PLAN.targets, strict=True))
        yield running


def test_a_tiny_drill_runs_its_fault_on_schedule_and_leaves_the_target_clean(fake: FakeDeployment) -> None:
    lines: list[str] = []
    target = DrillTarget(fake.url, KEY, plan=PLAN, traffic_key=READER)
    runner = DrillRunner(parse_scenario(TINY), target, progress=lines.append)
    journal = runner.run()
    assert runner.journal is journal and journal["status"] == "completed" and journal["aborted"] is None

    # The fault: injected through the server's table with a TTL just past its step, and removed.
    assert fake.seen("POST", "/admin/faults") == [
        {"point": "ranker", "kind": "latency", "rate": 1.0, "ttl_s": 1 + TTL_MARGIN_S, "latency_ms": 30.0}
    ]
    assert [p for m, p, _, _ in fake.requests if m == "DELETE"] == ["/admin/faults/f1"]
    [fault] = journal["faults"]
    assert fault["reverted"] is True and fault["injected_at"] is not None and fault["inject_error"] is None
    assert 1.0 <= fault["injected_at"] <= fault["reverted_at"]
    assert any("inject slow (ranker-latency)" in line for line in lines)
    assert any("revert slow" in line for line in lines)

    # Judged traffic: the seeded schedule after the warm-up, answered by the primary before the fault.
    expected = len(arrival_times(20, 3, 3))
    assert journal["summary"]["requests"] == expected
    assert len(fake.seen("POST", "/v1/recommend")) == expected + 2
    assert journal["baseline"]["ndcg10"] == 1.0  # the fake answers each user's true next item
    assert journal["summary"]["served_by"].get("popular", 0) > 0  # served around the fault

    # Audited feedback, looked up afterwards: nothing lost.
    feedback = journal["feedback"]
    assert feedback["posted"] == len(arrival_times(5, 3, 3 + 7)) and feedback["lost"] == 0
    assert len(fake.seen("POST", "/admin/feedback/lookup")) == 1

    # Rollbacks ran, and the target is clean.
    assert [(r["action"], r["status"], r["output"]) for r in journal["rollbacks"]] == [
        ("remove-server-faults", "succeeded", "removed 0 fault(s)"),
        ("continue-workers", "succeeded", "no worker pids known"),
    ]
    assert journal["cleanliness"]["ok"] is True and fake.faults == {}
    assert fake.seen("GET", "/metrics")  # the alert watcher polled the deployment

    # User traffic carries the traffic key; the admin API and /metrics the admin key.
    keys: dict[str, set[str | None]] = {}
    for _, path, _, headers in fake.requests:
        keys.setdefault(path.split("/")[1], set()).add(headers.get("x-api-key"))
    assert keys["v1"] == {READER}
    assert keys["admin"] == {KEY} and keys["metrics"] == {KEY}


def test_a_drill_without_a_plan_is_refused_before_anything_is_sent(fake: FakeDeployment) -> None:
    runner = DrillRunner(parse_scenario(TINY), DrillTarget(fake.url, KEY))
    with pytest.raises(DrillError, match="a drill needs a replay plan"):
        runner.run()
    assert fake.requests == [] and runner.journal is None


KILL = """
name: kill
traffic: {rate: 5, duration_s: 4}
baseline_s: 1
after_s: 1
faults:
  - {name: kill-one, fault: worker-kill, at_s: 1, duration_s: 1}
hypotheses:
  - {name: up, metric: availability, min: 0.5}
"""


def test_a_fault_the_target_cannot_take_stops_the_drill_before_any_traffic(fake: FakeDeployment) -> None:
    runner = DrillRunner(parse_scenario(KILL), DrillTarget(fake.url, KEY, plan=PLAN))
    with pytest.raises(
        DrillError,
        match="fault step 'kill-one' cannot run here: fault 'worker-kill' needs the server's worker",
    ):
        runner.run()
    single = DrillRunner(parse_scenario(KILL), DrillTarget(fake.url, KEY, plan=PLAN, workers=Pids(1)))
    with pytest.raises(
        DrillError, match="cannot run here: process faults need a server with at least 2 workers"
    ):
        single.run()
    assert fake.requests == []


def test_an_unreachable_target_fails_the_drill_with_one_line_and_a_journal() -> None:
    url = closed_port_url()
    runner = DrillRunner(parse_scenario(TINY), DrillTarget(url, KEY, plan=PLAN))
    with pytest.raises(DrillError, match=f"cannot reach the target {url}"):
        runner.run()
    assert runner.journal is not None and runner.journal["status"] == "failed"
    assert runner.journal["faults"][0]["injected_at"] is None
    assert runner.journal["cleanliness"]["ok"] is False
    assert runner.journal["feedback"]["posted"] == 0 and runner.journal["summary"]["requests"] == 0


ABORTING = """
name: aborting
traffic: {rate: 20, duration_s: 30, warmup_requests: 0, feedback_rate: 0}
baseline_s: 10
after_s: 5
faults:
  - {name: late, fault: ranker-nan, at_s: 12, duration_s: 5}
hypotheses:
  - {name: up, metric: availability, min: 0.9}
abort:
  - {metric: availability, min: 0.9, for_s: 1}
"""


def test_an_abort_condition_that_holds_for_its_window_ends_the_drill(fake: FakeDeployment) -> None:
    fake.status[("POST", "/v1/recommend")] = 503  # every answer fails
    lines: list[str] = []
    runner = DrillRunner(
        parse_scenario(ABORTING), DrillTarget(fake.url, KEY, plan=PLAN), progress=lines.append
    )
    journal = runner.run()
    assert journal["status"] == "aborted"
    assert journal["aborted"]["condition"] == {
        "metric": "availability",
        "min": 0.9,
        "max": None,
        "for_s": 1.0,
    }
    assert 1.0 <= journal["aborted"]["t"] < 30
    assert any("ABORT: availability out of bounds for 1 s" in line for line in lines)
    [fault] = journal["faults"]
    assert fault["injected_at"] is None and fault["reverted"] is False  # never reached its start
    assert fake.seen("POST", "/admin/faults") == []
    assert journal["summary"]["availability"] == 0.0


LONG = """
name: long
traffic: {rate: 20, duration_s: 60, seed: 3, warmup_requests: 0, feedback_rate: 2}
baseline_s: 1
after_s: 1
deadline_margin_s: 5
faults:
  - {name: slow, fault: ranker-latency, at_s: 1, duration_s: 50, params: {latency_ms: 30}}
hypotheses:
  - {name: mostly-primary, metric: fallback_share, max: 0.5}
rollbacks:
  - {action: remove-server-faults}
"""


class JumpingClock:
    """A deadline clock that jumps a day ahead once ``jump()`` was called: the deadline passes at a
    moment the test chooses, whatever the host's speed."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset

    def jump(self) -> None:
        self.offset = 86_400.0


def test_the_deadline_aborts_the_drill_and_its_fault_is_reverted(fake: FakeDeployment) -> None:
    clock = JumpingClock()
    lines: list[str] = []

    def progress(line: str) -> None:
        lines.append(line)
        if "inject slow" in line:
            clock.jump()  # the deadline passes while the fault is held

    runner = DrillRunner(parse_scenario(LONG), DrillTarget(fake.url, KEY, plan=PLAN), progress, clock=clock)
    started = time.monotonic()
    journal = runner.run()
    assert time.monotonic() - started < 30  # not the 60 s of traffic
    assert journal["status"] == "aborted"
    assert journal["aborted"]["reason"] == "deadline"
    assert journal["aborted"]["detail"] == "the drill's 65 s deadline passed"
    assert 1.0 <= journal["aborted"]["t"] < 30
    assert any("ABORT: the drill's 65 s deadline passed" in line for line in lines)
    [fault] = journal["faults"]
    assert fault["injected_at"] is not None and fault["reverted"] is True
    assert fake.faults == {} and journal["cleanliness"]["ok"] is True
    assert [(r["action"], r["status"]) for r in journal["rollbacks"]] == [
        ("remove-server-faults", "succeeded")
    ]
    assert journal["summary"]["requests"] > 0 and journal["feedback"]["lost"] == 0


def test_the_deadline_counts_from_the_start_of_the_run() -> None:
    scenario = parse_scenario(LONG)
    assert scenario.deadline_s == 65.0
    assert parse_scenario(LONG.replace("deadline_margin_s: 5\n", "")).deadline_s == 60 + 60  # at least 60 s
    long = LONG.replace("duration_s: 60,", "duration_s: 400,").replace("deadline_margin_s: 5\n", "")
    assert parse_scenario(long).deadline_s == 400 + 200  # half the duration


def test_a_tripped_stop_switch_aborts_the_drill_through_its_rollbacks(fake: FakeDeployment) -> None:
    switch = StopSwitch()

    def progress(line: str) -> None:
        if "inject slow" in line:
            switch.trip("SIGTERM")  # as the CLI's signal handler does

    runner = DrillRunner(parse_scenario(LONG), DrillTarget(fake.url, KEY, plan=PLAN), progress, stop=switch)
    assert switch.state == "idle"
    journal = runner.run()
    assert switch.state == "done"
    assert (journal["status"], journal["aborted"]["reason"]) == ("aborted", "stopped")
    assert journal["aborted"]["detail"] == "stopped by SIGTERM"
    assert journal["faults"][0]["reverted"] is True and fake.faults == {}
    assert journal["rollbacks"][0]["status"] == "succeeded" and journal["cleanliness"]["ok"] is True


def test_a_drill_stopped_before_it_began_sends_no_traffic(fake: FakeDeployment) -> None:
    switch = StopSwitch()
    switch.trip("SIGINT")
    journal = DrillRunner(parse_scenario(LONG), DrillTarget(fake.url, KEY, plan=PLAN), stop=switch).run()
    assert (journal["status"], journal["aborted"]["t"]) == ("aborted", None)
    assert fake.seen("POST", "/v1/recommend") == [] and fake.seen("POST", "/admin/faults") == []
    assert journal["summary"]["requests"] == 0 and journal["traffic_start"] is None
