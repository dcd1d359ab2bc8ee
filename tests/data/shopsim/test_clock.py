"""Tests of recdrill.data.shopsim.clock: when sessions start and how far apart their events are."""

from __future__ import annotations

import numpy as np

from recdrill.data.shopsim.clock import (
    GAP_RANGE_S,
    HOUR_WEIGHTS,
    SECONDS_PER_HOUR,
    WEEKDAY_WEIGHTS,
    draw_event_offsets,
    draw_session_starts,
    hourly_weights,
)
from recdrill.data.shopsim.config import SECONDS_PER_DAY, START_DATE, ShopSimConfig


def test_each_hour_weighs_its_hour_of_day_times_its_weekday() -> None:
    weights = hourly_weights(ShopSimConfig(days=7, promotion_day=None))
    assert weights.shape == (168,)
    # START_DATE is a Thursday (weekday 3) at midnight UTC.
    np.testing.assert_allclose(weights[:24], HOUR_WEIGHTS * WEEKDAY_WEIGHTS[3])
    np.testing.assert_allclose(weights[24:48], HOUR_WEIGHTS * WEEKDAY_WEIGHTS[4])
    np.testing.assert_allclose(weights[96:120], HOUR_WEIGHTS * WEEKDAY_WEIGHTS[0])  # the Monday


def test_the_promotion_day_is_weighted_by_the_surge_and_only_that_day() -> None:
    plain = hourly_weights(ShopSimConfig(days=3, promotion_day=None))
    surged = hourly_weights(ShopSimConfig(days=3, promotion_day=1, promotion_surge=3.0))
    np.testing.assert_allclose(surged[24:48], 3.0 * plain[24:48])
    np.testing.assert_array_equal(surged[:24], plain[:24])
    np.testing.assert_array_equal(surged[48:], plain[48:])


def test_a_start_date_off_midnight_shifts_the_daily_cycle() -> None:
    weights = hourly_weights(
        ShopSimConfig(days=1, start_date=START_DATE + 20 * SECONDS_PER_HOUR, promotion_day=None)
    )
    assert weights[0] == HOUR_WEIGHTS[20] * WEEKDAY_WEIGHTS[3]
    assert weights[4] == HOUR_WEIGHTS[0] * WEEKDAY_WEIGHTS[4]  # midnight: Friday begins


def test_session_starts_lie_on_the_timeline_and_avoid_zero_weight_hours() -> None:
    config = ShopSimConfig(days=2, promotion_day=0, promotion_surge=1.0)
    starts = draw_session_starts(config, 5_000, np.random.default_rng(0))
    assert starts.dtype == np.int64 and len(starts) == 5_000
    assert starts.min() >= config.start_date and starts.max() < config.end_date
    by_hour = np.bincount((starts - config.start_date) // SECONDS_PER_HOUR, minlength=48)
    assert by_hour[20] > 10 * by_hour[4]  # the evening peak against the small hours


def test_session_starts_are_repeatable_from_the_generator_state() -> None:
    config = ShopSimConfig(days=3, promotion_day=None)
    first = draw_session_starts(config, 50, np.random.default_rng(9))
    np.testing.assert_array_equal(first, draw_session_starts(config, 50, np.random.default_rng(9)))


def test_event_offsets_start_at_zero_per_session_and_grow_by_clipped_gaps() -> None:
    session = np.repeat(np.arange(200), 5)
    first = np.arange(0, 1_000, 5)
    offsets = draw_event_offsets(session, first, np.random.default_rng(1))
    assert offsets[first].tolist() == [0] * 200
    gaps = np.diff(offsets.reshape(200, 5), axis=1)
    assert gaps.min() >= GAP_RANGE_S[0] and gaps.max() <= GAP_RANGE_S[1]
    assert 10 <= np.median(gaps) <= 300  # a median of 45 s before clipping


def test_a_session_of_one_event_has_offset_zero() -> None:
    offsets = draw_event_offsets(np.array([0, 1, 1]), np.array([0, 1]), np.random.default_rng(0))
    assert offsets[0] == 0 and offsets[1] == 0 and offsets[2] >= GAP_RANGE_S[0]
    assert SECONDS_PER_DAY == 24 * SECONDS_PER_HOUR
