"""The feedback event-time window: whole-hour steps, inclusive bounds, a 422 naming ``ts``."""

from __future__ import annotations

import pytest
from fastapi.exceptions import RequestValidationError

from recdrill.serving.event_time import STEP_S, check_event_time, event_time_window


def test_the_window_is_fixed_within_an_hour_and_moves_by_whole_hours() -> None:
    start = 1_800_000_000.0 - 1_800_000_000.0 % STEP_S
    first = event_time_window(start, past_s=86_400.0, future_s=300.0)
    assert first == (start - 86_400.0, start + STEP_S + 300.0)
    assert event_time_window(start + STEP_S - 0.001, 86_400.0, 300.0) == first
    assert event_time_window(start + STEP_S, 86_400.0, 300.0) == (first[0] + STEP_S, first[1] + STEP_S)


def test_the_bounds_are_accepted_and_beyond_is_a_422_naming_ts() -> None:
    check_event_time(10.0, (10.0, 20.0))
    check_event_time(20.0, (10.0, 20.0))
    for outside in (9.999, 20.001):
        with pytest.raises(RequestValidationError) as refused:
            check_event_time(outside, (10.0, 20.0))
        (error,) = refused.value.errors()
        assert error["loc"] == ("body", "ts") and "outside the accepted window" in error["msg"]
