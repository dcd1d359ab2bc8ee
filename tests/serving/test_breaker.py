"""CircuitBreaker: every state transition, at the exact call and the exact clock time."""

from __future__ import annotations

import pytest

from recdrill.errors import ConfigError
from recdrill.serving.breaker import BreakerConfig, BreakerState, CircuitBreaker, Permit

CLOSED, HALF_OPEN, OPEN = BreakerState.CLOSED, BreakerState.HALF_OPEN, BreakerState.OPEN


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make(clock: Clock, **config: float) -> tuple[CircuitBreaker, list[tuple[BreakerState, BreakerState]]]:
    seen: list[tuple[BreakerState, BreakerState]] = []
    settings = {"min_calls": 4, "failure_rate": 0.5, "open_s": 5.0, "probes": 2, **config}
    breaker = CircuitBreaker(
        "primary",
        BreakerConfig(**settings),  # type: ignore[arg-type]
        clock=clock,
        listeners=[lambda name, old, new: seen.append((old, new))],
    )
    return breaker, seen


def call(breaker: CircuitBreaker, ok: bool, duration_s: float = 0.001) -> Permit:
    permit = breaker.acquire()
    assert permit is not None, f"breaker refused a call in state {breaker.state.name}"
    breaker.record(permit, ok=ok, duration_s=duration_s)
    return permit


def test_failures_below_the_minimum_number_of_calls_never_trip(clock: Clock) -> None:
    breaker, seen = make(clock)
    for _ in range(3):
        call(breaker, ok=False)
    assert breaker.state is CLOSED and seen == []
    assert breaker.counts() == (3, 3, 3)
    call(breaker, ok=False)  # the 4th call reaches min_calls at a 100 % failure rate
    assert breaker.state is OPEN and seen == [(CLOSED, OPEN)]


def test_trips_exactly_when_the_failure_rate_reaches_the_threshold(clock: Clock) -> None:
    breaker, seen = make(clock, min_calls=10)
    for ok in [True] * 6 + [False] * 4:  # 4 of 10 fail: 40 %
        call(breaker, ok=ok)
    assert breaker.state is CLOSED
    call(breaker, ok=False)  # 5 of 11: 45 %
    assert breaker.state is CLOSED
    call(breaker, ok=False)  # 6 of 12: 50 %
    assert breaker.state is OPEN and seen == [(CLOSED, OPEN)]


def test_slow_successes_trip_by_the_slow_call_rate(clock: Clock) -> None:
    breaker, seen = make(clock, slow_call_s=0.1, slow_rate=0.75)
    call(breaker, ok=True, duration_s=0.01)
    for _ in range(2):
        call(breaker, ok=True, duration_s=0.2)
    call(breaker, ok=True, duration_s=0.09)  # just under: not slow; 2 of 4 slow
    assert breaker.state is CLOSED and breaker.counts() == (4, 0, 2)
    call(breaker, ok=True, duration_s=0.1)  # at the threshold counts as slow: 3 of 5 = 60 %
    assert breaker.state is CLOSED
    call(breaker, ok=True, duration_s=0.5)  # 4 of 6 = 67 %
    assert breaker.state is CLOSED
    call(breaker, ok=True, duration_s=0.5)  # 5 of 7 = 71 %
    assert breaker.state is CLOSED
    call(breaker, ok=True, duration_s=0.5)  # 6 of 8 = 75 %
    assert breaker.state is OPEN and seen == [(CLOSED, OPEN)]


def test_calls_older_than_the_window_no_longer_count(clock: Clock) -> None:
    breaker, seen = make(clock, window_s=10.0, buckets=10)
    for _ in range(3):
        call(breaker, ok=False)
    clock.now += 9.0  # still inside the 10 s window
    assert breaker.counts() == (3, 3, 3)
    clock.now += 1.0  # the first bucket has rolled out
    assert breaker.counts() == (0, 0, 0)
    call(breaker, ok=False)  # only 1 call in the window: no trip
    assert breaker.state is CLOSED and seen == []


def test_open_refuses_until_the_cool_down_then_half_open_admits_exactly_the_probes(clock: Clock) -> None:
    breaker, seen = make(clock)
    for _ in range(4):
        call(breaker, ok=False)
    assert breaker.state is OPEN
    clock.now += 4.75  # quarter steps: exact in binary floating point
    assert breaker.acquire() is None and breaker.state is OPEN
    clock.now += 0.25
    first = breaker.acquire()
    assert first is not None and first.probe and breaker.state is HALF_OPEN
    second = breaker.acquire()
    assert second is not None and second.probe
    assert breaker.acquire() is None  # both probes are out
    assert seen == [(CLOSED, OPEN), (OPEN, HALF_OPEN)]


def test_a_failed_probe_reopens_for_a_full_cool_down(clock: Clock) -> None:
    breaker, seen = make(clock)
    for _ in range(4):
        call(breaker, ok=False)
    clock.now += 5.0
    call(breaker, ok=True)
    probe = breaker.acquire()
    assert probe is not None
    breaker.record(probe, ok=False, duration_s=0.001)
    assert breaker.state is OPEN
    clock.now += 4.5
    assert breaker.acquire() is None
    clock.now += 0.5
    assert breaker.acquire() is not None and breaker.state is HALF_OPEN
    assert seen == [(CLOSED, OPEN), (OPEN, HALF_OPEN), (HALF_OPEN, OPEN), (OPEN, HALF_OPEN)]


def test_successful_probes_close_it_with_a_fresh_window(clock: Clock) -> None:
    breaker, seen = make(clock)
    for _ in range(4):
        call(breaker, ok=False)
    clock.now += 5.0
    call(breaker, ok=True)
    assert breaker.state is HALF_OPEN  # one success of the two probes needed
    call(breaker, ok=True)
    assert breaker.state is CLOSED
    assert breaker.counts() == (0, 0, 0)  # the failures that tripped it are forgotten
    for _ in range(3):
        call(breaker, ok=False)
    assert breaker.state is CLOSED
    assert seen == [(CLOSED, OPEN), (OPEN, HALF_OPEN), (HALF_OPEN, CLOSED)]


def test_a_result_from_before_a_transition_is_ignored(clock: Clock) -> None:
    breaker, seen = make(clock)
    stale = breaker.acquire()  # admitted while closed; its answer arrives much later
    for _ in range(4):
        call(breaker, ok=False)
    clock.now += 5.0
    probe = breaker.acquire()
    assert breaker.state is HALF_OPEN
    breaker.record(stale, ok=True, duration_s=3.0)  # must not count as a probe success
    breaker.record(stale, ok=False, duration_s=3.0)  # nor as a probe failure
    assert breaker.state is HALF_OPEN
    breaker.record(probe, ok=True, duration_s=0.001)
    call(breaker, ok=True)
    assert breaker.state is CLOSED
    assert seen == [(CLOSED, OPEN), (OPEN, HALF_OPEN), (HALF_OPEN, CLOSED)]


def test_an_abandoned_probe_gives_its_place_back(clock: Clock) -> None:
    breaker, _ = make(clock, probes=1)
    for _ in range(4):
        call(breaker, ok=False)
    clock.now += 5.0
    probe = breaker.acquire()
    assert breaker.acquire() is None
    breaker.release(probe)  # e.g. the client went away
    assert breaker.state is HALF_OPEN
    assert breaker.acquire() is not None


def test_reset_closes_from_any_state(clock: Clock) -> None:
    breaker, seen = make(clock)
    for _ in range(4):
        call(breaker, ok=False)
    breaker.reset()
    assert breaker.state is CLOSED and breaker.counts() == (0, 0, 0)
    breaker.reset()  # already closed: no transition to report
    assert seen == [(CLOSED, OPEN), (OPEN, CLOSED)]


@pytest.mark.parametrize(
    ("field", "value"),
    [("min_calls", 0), ("failure_rate", 0.0), ("failure_rate", 1.5), ("buckets", 0), ("open_s", -1.0)],
)
def test_bad_configuration_names_the_parameter(field: str, value: float) -> None:
    with pytest.raises(ConfigError, match=f"'{field}' parameter of BreakerConfig"):
        BreakerConfig(**{field: value})  # type: ignore[arg-type]
