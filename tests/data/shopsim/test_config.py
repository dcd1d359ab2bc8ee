"""Tests of recdrill.data.shopsim.config: the shop's settings, their derived times and their checks."""

from __future__ import annotations

import dataclasses
import re

import pytest

from recdrill.data.shopsim.config import SECONDS_PER_DAY, START_DATE, DriftConfig, ShopSimConfig
from recdrill.errors import ConfigError


def test_drift_is_off_by_default() -> None:
    drift = DriftConfig()
    assert (drift.start, drift.new_items, drift.price_shock, drift.price_shock_share) == (0.8, 0.0, 1.0, 0.25)
    assert drift.is_active is False


@pytest.mark.parametrize(
    ("knobs", "active"),
    [
        ({"new_items": 0.1}, True),
        ({"price_shock": 1.5}, True),
        ({"price_shock": 0.5}, True),
        ({"price_shock": 1.5, "price_shock_share": 0.0}, False),
        ({"price_shock_share": 1.0}, False),
        ({"taste_shift": 0.3}, True),
        ({"start": 0.5}, False),
    ],
)
def test_drift_is_active_when_a_knob_changes_the_shop(knobs: dict[str, float], active: bool) -> None:
    assert DriftConfig(**knobs).is_active is active


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("start", 0.0, "a number strictly between 0 and 1"),
        ("start", True, "a number strictly between 0 and 1"),
        ("new_items", float("inf"), "a number in [0, 1)"),
        ("price_shock", -2, "a positive number"),
        ("taste_shift", "half", "a number in [0, 1]"),
    ],
)
def test_bad_drift_knobs_name_the_field_and_value(field: str, value: object, expected: str) -> None:
    message = f"DriftConfig.{field} must be {expected}, got {value!r}"
    with pytest.raises(ConfigError, match=re.escape(message)):
        DriftConfig(**{field: value})  # type: ignore[arg-type]


def test_derived_sizes_and_times() -> None:
    config = ShopSimConfig(
        n_top_categories=3, n_subcategories=4, days=10, promotion_day=None, drift=DriftConfig(start=0.5)
    )
    assert config.n_leaves == 12
    assert config.start_date == START_DATE
    assert config.end_date == START_DATE + 10 * SECONDS_PER_DAY
    assert config.drift_time == START_DATE + 5 * SECONDS_PER_DAY


def test_field_names_are_every_setting_in_declaration_order() -> None:
    assert ShopSimConfig.field_names() == (
        "n_items", "n_users", "n_events", "n_top_categories", "n_subcategories", "n_brands", "days",
        "start_date", "promotion_day", "promotion_surge", "search_share", "seed", "drift",
    )  # fmt: skip


def test_configs_are_frozen_and_compare_by_value() -> None:
    config = ShopSimConfig(seed=4)
    assert config == ShopSimConfig(seed=4) and config != ShopSimConfig(seed=5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.seed = 5  # type: ignore[misc]


def test_the_minimum_sizes_follow_the_other_settings() -> None:
    small = ShopSimConfig(n_items=2, n_users=1, n_events=5, n_top_categories=1, n_subcategories=2, n_brands=1)
    assert (small.n_leaves, small.n_items) == (2, 2)
    with pytest.raises(
        ConfigError, match=re.escape("n_items must be at least one per leaf category (2), got 1")
    ):
        dataclasses.replace(small, n_items=1)
    with pytest.raises(ConfigError, match=re.escape("n_events must be at least 5 * n_users = 5, got 4")):
        dataclasses.replace(small, n_events=4)
    with pytest.raises(ConfigError, match=re.escape("n_brands must be at least n_top_categories (2), got 1")):
        dataclasses.replace(small, n_top_categories=2, n_items=4)


def test_the_promotion_day_must_lie_in_the_timeline_or_be_none() -> None:
    assert ShopSimConfig(days=3, promotion_day=2).promotion_day == 2
    assert ShopSimConfig(days=3, promotion_day=None).promotion_day is None
    message = "ShopSimConfig.promotion_day must be None or a day index in [0, 3), got 3"
    with pytest.raises(ConfigError, match=re.escape(message)):
        ShopSimConfig(days=3, promotion_day=3)


def test_a_size_check_runs_before_the_checks_that_depend_on_it() -> None:
    # n_users=-1 is reported as itself, not through the n_events bound computed from it.
    with pytest.raises(
        ConfigError, match=re.escape("ShopSimConfig.n_users must be a positive integer, got -1")
    ):
        ShopSimConfig(n_users=-1)
