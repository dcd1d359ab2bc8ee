from __future__ import annotations

from pathlib import Path

import pytest

from recdrill.drills.scenario import builtin_scenario, load_scenario, parse_scenario
from recdrill.errors import ConfigError, DataFileNotFoundError

GOOD = """
name: t
traffic: {rate: 10, duration_s: 30}
baseline_s: 5
after_s: 5
faults:
  - {name: slow, at_s: 10, duration_s: 5, kind: latency, latency_ms: 100}
hypotheses:
  - {name: up, metric: availability, min: 0.99}
"""


def test_a_good_scenario_parses_with_defaults() -> None:
    scenario = parse_scenario(GOOD)
    assert scenario.traffic.k == 10 and scenario.window_s == 2.0
    assert scenario.faults[0].end_s == 15 and scenario.faults[0].rate == 1.0
    assert scenario.hypotheses[0].holds(0.995) and not scenario.hypotheses[0].holds(0.9)
    assert scenario.hypotheses[0].holds(None)  # no traffic in a window is not a deviation


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("traffic: {rate: 10, duration_s: 30}", "traffic: {rate: 10, duration_s: 30, burst: 3}"),
            r"traffic\.burst: Extra inputs are not permitted",
        ),
        (
            ("kind: latency", "kind: meltdown"),
            r"faults\[0\]\.kind: Input should be 'latency', 'error', 'nan', 'kill' or 'pause'",
        ),
        (("rate: 10", "rate: -1"), r"traffic\.rate: Input should be greater than 0"),
        (("at_s: 10", "at_s: 2"), "starts at 2.0 s, inside the 5.0 s baseline"),
        (("duration_s: 5, kind", "duration_s: 25, kind"), "must last at least 40.0 s"),
        (
            ("metric: availability, min: 0.99", "metric: availability"),
            r"hypotheses\[0\]: give min, max or both",
        ),
        (("metric: availability", "metric: happiness"), r"hypotheses\[0\]\.metric"),
        (("name: t\n", ""), "name: Field required"),
        (
            ("kind: latency", "kind: kill, point: ranker"),
            r"faults\[0\]: a 'kill' fault acts on point 'worker'",
        ),
        (
            ("kind: latency", "point: worker, kind: latency"),
            r"acts on point 'ranker' or 'fallback', not 'worker'",
        ),
        (
            ("kind: latency", "point: fallback, kind: pause"),
            r"a 'pause' fault acts on point 'worker', not 'fallback'",
        ),
        (("kind: latency", "kind: pause, worker: -1"), r"faults\[0\]\.worker: Input should be greater"),
        (("metric: availability", "metric: availability_on_sunday"), r"hypotheses\[0\]\.metric"),
    ],
)
def test_bad_scenarios_name_the_key_and_problem(change: tuple[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_scenario(GOOD.replace(*change), "s.yaml")


def test_process_faults_act_on_a_worker_and_traffic_retries_by_default() -> None:
    scenario = parse_scenario(
        GOOD.replace("kind: latency, latency_ms: 100", "kind: kill")
        .replace("metric: availability,", "metric: availability_first_try,")
        .replace("faults:", "faults:\n  - {name: stop, at_s: 16, duration_s: 3, kind: pause, worker: 1}")
    )
    kill, pause = sorted(scenario.faults, key=lambda f: f.at_s)
    assert (kill.point, kill.kind, kill.worker, kill.is_process_fault) == ("worker", "kill", 0, True)
    assert (pause.point, pause.kind, pause.worker, pause.end_s) == ("worker", "pause", 1, 19)
    assert scenario.traffic.retry is True
    fallback = parse_scenario(GOOD.replace("kind: latency", "point: fallback, kind: error")).faults[0]
    assert (fallback.point, fallback.kind, fallback.is_process_fault) == ("fallback", "error", False)
    assert (
        parse_scenario(GOOD).faults[0].point == "ranker"
        and not parse_scenario(GOOD).faults[0].is_process_fault
    )
    assert scenario.hypotheses[0].metric == "availability_first_try"


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
    gameday = builtin_scenario("gameday")
    assert [f.kind for f in gameday.faults] == ["latency", "error", "nan"]
    assert gameday.faults[0].latency_ms > 50  # past the default 50 ms deadline
    with pytest.raises(ConfigError, match="no built-in scenario 'nope'"):
        builtin_scenario("nope")
