from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recdrill.drills.scenario import builtin_names, builtin_scenario, load_scenario, parse_scenario
from recdrill.errors import ConfigError, DataFileNotFoundError

GOOD = """
name: t
traffic: {rate: 10, duration_s: 60}
baseline_s: 5
after_s: 5
faults:
  - {name: slow, fault: ranker-latency, at_s: 10, duration_s: 5, params: {latency_ms: 100}}
hypotheses:
  - {name: up, metric: availability, min: 0.99}
"""


def test_a_good_scenario_parses_with_defaults() -> None:
    scenario = parse_scenario(GOOD)
    assert scenario.traffic.k == 10 and scenario.window_s == 2.0 and scenario.traffic.shape == "constant"
    (step,) = scenario.faults
    assert (step.fault, step.start_s, step.end_s) == ("ranker-latency", 10, 15)
    params = step.parsed_params({"ttl_s": 12.0, "base_rate": 99.0, "latency_ms": 1.0})
    # Runner defaults fill only the fields the fault has and the step left out.
    assert (params.latency_ms, params.ttl_s, params.rate) == (100.0, 12.0, 1.0)  # type: ignore[attr-defined]
    assert scenario.hypotheses[0].holds(0.995) and not scenario.hypotheses[0].holds(0.9)
    assert scenario.hypotheses[0].holds(None)  # no traffic in a window is not a deviation
    assert [r.action for r in scenario.rollbacks] == ["continue-workers"]
    assert scenario.objectives.recover_s == 30.0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("traffic: {rate: 10, duration_s: 60}", "traffic: {rate: 10, duration_s: 60, burst: 3}"),
            r"traffic\.burst: Extra inputs are not permitted",
        ),
        (
            ("fault: ranker-latency", "fault: meltdown"),
            r"faults\[0\]: no fault named 'meltdown'; known faults: ",
        ),
        (
            ("latency_ms: 100", "latency_ms: -3"),
            r"faults\[0\]: fault 'ranker-latency': latency_ms: Input should be",
        ),
        (("latency_ms: 100", "latncy_ms: 3"), r"latncy_ms: Extra inputs are not permitted"),
        (("rate: 10", "rate: -1"), r"traffic\.rate: Input should be greater than 0"),
        (("at_s: 10", "at_s: 2"), "starts at 2.0 s, inside the 5.0 s baseline"),
        (("duration_s: 5, params", "duration_s: 55, params"), "must last at least 70.0 s"),
        (
            ("metric: availability, min: 0.99", "metric: availability"),
            r"hypotheses\[0\]: give min, max or both",
        ),
        (("metric: availability", "metric: happiness"), r"hypotheses\[0\]\.metric"),
        (("name: t\n", ""), "name: Field required"),
        (("duration_s: 60}", "duration_s: 60, shape: ramp}"), "a ramp needs ramp_to"),
        (
            ("hypotheses:", "abort: [{metric: availability}]\nhypotheses:"),
            r"abort\[0\]: give min, max or both",
        ),
        (
            ("hypotheses:", "rollbacks: [{action: pray}]\nhypotheses:"),
            r"rollbacks\[0\]\.action: Input should be",
        ),
    ],
)
def test_bad_scenarios_name_the_key_and_problem(change: tuple[str, str], message: str) -> None:
    assert change[0] in GOOD
    with pytest.raises(ConfigError, match=message):
        parse_scenario(GOOD.replace(*change), "s.yaml")


def test_steps_without_at_s_follow_the_previous_one() -> None:
    scenario = parse_scenario(
        GOOD.replace(
            "faults:\n",
            "faults:\n  - {name: first, fault: ranker-error, at_s: 8, duration_s: 4}\n",
        ).replace("at_s: 10, duration_s: 5", "gap_s: 3, duration_s: 5")
    )
    first, slow = scenario.faults
    assert (first.start_s, first.end_s) == (8, 12)
    assert (slow.start_s, slow.end_s) == (15, 20)  # 3 s after the first step ends


def test_overlapping_steps_run_in_parallel() -> None:
    scenario = parse_scenario(
        GOOD.replace("faults:\n", "faults:\n  - {name: nan, fault: ranker-nan, at_s: 12, duration_s: 6}\n")
    )
    nan, slow = scenario.faults
    assert nan.start_s < slow.end_s and slow.start_s < nan.end_s


def test_the_first_format_still_reads() -> None:
    legacy = GOOD.replace(
        "{name: slow, fault: ranker-latency, at_s: 10, duration_s: 5, params: {latency_ms: 100}}",
        "{name: slow, at_s: 10, duration_s: 5, kind: latency, latency_ms: 100}\n"
        "  - {name: stop, at_s: 16, duration_s: 3, kind: pause, worker: 1}\n"
        "  - {name: fb, at_s: 20, duration_s: 3, point: fallback, kind: error, rate: 0.5}\n"
        "  - {name: kill, at_s: 24, duration_s: 3, kind: kill}",
    )
    slow, stop, fb, kill = parse_scenario(legacy).faults
    assert (slow.fault, slow.params) == ("ranker-latency", {"latency_ms": 100})
    assert (stop.fault, stop.params) == ("worker-freeze", {"worker": 1})
    assert (fb.fault, fb.params) == ("fallback-error", {"rate": 0.5})
    assert kill.fault == "worker-kill"
    for bad, message in [
        ("kind: meltdown", "kind 'meltdown' is not one of latency, error, nan, kill, pause"),
        ("kind: kill, point: ranker", "a 'kill' fault acts on point 'worker', not 'ranker'"),
        ("point: worker, kind: latency", "acts on point 'ranker' or 'fallback', not 'worker'"),
    ]:
        with pytest.raises(ConfigError, match=message):
            parse_scenario(legacy.replace("kind: latency", bad, 1))


def test_traffic_shapes_give_their_rate_over_time() -> None:
    t = np.array([0.0, 30.0, 59.9])
    ramp = parse_scenario(
        GOOD.replace("duration_s: 60}", "duration_s: 60, shape: ramp, ramp_to: 70}")
    ).traffic
    assert ramp.rate_at(t) == pytest.approx([10.0, 40.0, 69.9])
    assert ramp.peak_rate == 70
    spike = parse_scenario(
        GOOD.replace("duration_s: 60}", "duration_s: 60, shape: spike, spike_at_s: 20, spike_s: 10}")
    ).traffic
    assert spike.rate_at(np.array([19.9, 20.0, 29.9, 30.0])).tolist() == [10, 50, 50, 10]


def test_yaml_syntax_and_shape_errors_name_the_source() -> None:
    with pytest.raises(ConfigError, match=r"s\.yaml: not valid YAML"):
        parse_scenario("name: [unclosed", "s.yaml")
    with pytest.raises(ConfigError, match=r"s\.yaml: a scenario must be a mapping"):
        parse_scenario("- a\n- b\n", "s.yaml")


def test_files_and_builtins(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(GOOD)
    assert load_scenario(tmp_path / "s.yaml").name == "t"
    with pytest.raises(DataFileNotFoundError):
        load_scenario(tmp_path / "missing.yaml")
    assert {"gameday", "peak-day", "peak-day-short"} <= set(builtin_names())
    gameday = builtin_scenario("gameday")
    assert [f.fault for f in gameday.faults] == ["ranker-latency", "ranker-error", "ranker-nan"]
    peak = builtin_scenario("peak-day")
    assert [f.fault for f in peak.faults] == [
        "traffic-surge",
        "worker-kill",
        "bad-model-push",
        "feature-drift",
        "poisoned-feedback",
    ]
    assert peak.traffic.duration_s <= 420  # with set-up, the preset fits in 10 minutes
    with pytest.raises(ConfigError, match="no built-in scenario 'nope'"):
        builtin_scenario("nope")
