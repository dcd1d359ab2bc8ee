"""The window a feedback event's ``ts`` must lie in, and its refusal.

A client's clock may be off, and a client may lie: ``ts`` must be finite (the schema) and within a
window around the server's clock, by default 30 days back to 5 minutes ahead
(``ServeConfig.feedback_past_s`` / ``feedback_future_s``). The monitors judge receive time anyway
(``recdrill.monitor.anomaly``), so the window keeps garbage out of the log and out of retraining
data rather than guarding a clock.

The window moves in whole steps of :data:`STEP_S` (an hour): within one hour its bounds are fixed,
so the OpenAPI document can state them exactly as ``minimum`` and ``maximum`` (``openapi.py``) and
a conformance fuzzer finds the schema and the validation in agreement. The future bound is
therefore 5 to 65 minutes ahead, the past bound 30 days back to 30 days less an hour.

Example:
    >>> event_time_window(now=7_300.0, past_s=600.0, future_s=300.0)
    (6600.0, 11100.0)
"""

from __future__ import annotations

import math

from fastapi.exceptions import RequestValidationError

STEP_S = 3600.0


def event_time_window(now: float, past_s: float, future_s: float) -> tuple[float, float]:
    """``(earliest, latest)`` accepted event times while the clock reads ``now``."""
    step_start = math.floor(now / STEP_S) * STEP_S
    return step_start - past_s, step_start + STEP_S + future_s


def check_event_time(ts: float, window: tuple[float, float]) -> None:
    """Refuse ``ts`` outside ``window`` with a 422 naming the field.

    >>> check_event_time(1_000.0, (0.0, 2_000.0))
    >>> check_event_time(3_000.0, (0.0, 2_000.0))
    Traceback (most recent call last):
    fastapi.exceptions.RequestValidationError: ...
    """
    earliest, latest = window
    if earliest <= ts <= latest:
        return
    raise RequestValidationError(
        [
            {
                "type": "value_error",
                "loc": ("body", "ts"),
                "msg": f"ts {ts:.0f} is outside the accepted window: from {earliest:.0f} to {latest:.0f} "
                "(epoch seconds, around the server's clock)",
                "input": ts,
            }
        ]
    )
