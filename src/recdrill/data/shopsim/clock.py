"""When the synthetic shop's sessions happen: a daily cycle, a weekly pattern and a promotion surge.

Session starts are drawn hour by hour over the timeline with weight ``hour-of-day weight x weekday
weight``, times ``promotion_surge`` on the promotion day, so that day sees about ``promotion_surge``
times the sessions of a normal day. Hours are UTC (the shop's local time). Inside a session, events
follow each other after lognormal gaps of a few seconds to a few minutes.

Example:
    >>> from recdrill.data.shopsim.config import ShopSimConfig
    >>> weights = hourly_weights(ShopSimConfig(days=7, promotion_day=None))
    >>> weights.shape, bool(weights[20] > 10 * weights[4])
    ((168,), True)
"""

from __future__ import annotations

import numpy as np

from recdrill.data.shopsim.config import SECONDS_PER_DAY, ShopSimConfig

SECONDS_PER_HOUR = 3_600
# Relative traffic per UTC hour: quiet at night, a lunchtime bump, the peak at 20:00.
HOUR_WEIGHTS = np.array([
    0.35, 0.20, 0.12, 0.08, 0.07, 0.10, 0.25, 0.50, 0.75, 0.85, 0.90, 0.95,
    1.05, 1.00, 0.95, 0.95, 1.00, 1.15, 1.40, 1.70, 1.90, 1.80, 1.30, 0.70,
])  # fmt: skip
# Relative traffic Monday..Sunday: busier towards and over the weekend.
WEEKDAY_WEIGHTS = np.array([0.95, 0.92, 0.95, 1.00, 1.05, 1.10, 1.20])
EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday (Monday = 0)
GAP_MEDIAN_S = 45.0  # median seconds between two events of a session
GAP_SPREAD = 0.9  # sd of the log gap
GAP_RANGE_S = (2, 900)  # a gap is clipped to [2 s, 15 min]


def hourly_weights(config: ShopSimConfig) -> np.ndarray:
    """Unnormalised session-start weight of every hour of the timeline, shape ``[days * 24]``."""
    hour_start = config.start_date + SECONDS_PER_HOUR * np.arange(config.days * 24, dtype=np.int64)
    hour_of_day = (hour_start // SECONDS_PER_HOUR) % 24
    weekday = (hour_start // SECONDS_PER_DAY + EPOCH_WEEKDAY) % 7
    weights = HOUR_WEIGHTS[hour_of_day] * WEEKDAY_WEIGHTS[weekday]
    if config.promotion_day is not None:
        day = (hour_start - config.start_date) // SECONDS_PER_DAY
        weights = np.where(day == config.promotion_day, weights * config.promotion_surge, weights)
    result: np.ndarray = weights
    return result


def draw_session_starts(config: ShopSimConfig, n_sessions: int, rng: np.random.Generator) -> np.ndarray:
    """Epoch second at which each of ``n_sessions`` sessions starts (int64)."""
    weights = hourly_weights(config)
    hour = rng.choice(len(weights), size=n_sessions, p=weights / weights.sum())
    second = rng.integers(0, SECONDS_PER_HOUR, size=n_sessions)
    return config.start_date + SECONDS_PER_HOUR * hour.astype(np.int64) + second


def draw_event_offsets(session: np.ndarray, first_event: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Seconds from its session's start to each event.

    Events are laid out session by session: ``session`` is each event's session and ``first_event``
    each session's first event.
    """
    gaps = np.exp(rng.normal(np.log(GAP_MEDIAN_S), GAP_SPREAD, len(session)))
    gaps = np.clip(np.rint(gaps), *GAP_RANGE_S).astype(np.int64)
    gaps[first_event] = 0
    elapsed = np.cumsum(gaps)
    offsets: np.ndarray = elapsed - elapsed[first_event][session]
    return offsets
