"""Tests of recdrill.data.shopsim.users: tastes, price sensitivity and how many events each user has."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from recdrill.data.shopsim.config import DriftConfig, ShopSimConfig
from recdrill.data.shopsim.users import PRICE_SENSITIVITY_LEVELS, ShopUsers, build_users

CONFIG = ShopSimConfig(
    n_users=200, n_events=3_000, n_top_categories=2, n_subcategories=3, n_items=50, n_brands=4
)


@pytest.fixture(scope="module")
def users() -> ShopUsers:
    return build_users(CONFIG, np.random.default_rng(0))


def test_events_add_up_exactly_with_at_least_five_per_user(users: ShopUsers) -> None:
    assert int(users.n_events.sum()) == 3_000 and int(users.n_events.min()) >= 5
    assert users.user_ids[:2].tolist() == ["U-000000", "U-000001"] and len(users.user_ids) == 200


def test_the_minimum_events_give_every_user_exactly_five() -> None:
    users = build_users(replace(CONFIG, n_events=1_000), np.random.default_rng(0))
    assert users.n_events.tolist() == [5] * 200


def test_tastes_are_distributions_over_leaves_and_unchanged_without_a_taste_shift(users: ShopUsers) -> None:
    assert users.taste.shape == (2, 200, 6)
    np.testing.assert_allclose(users.taste.sum(axis=2), 1.0)
    assert users.taste.min() >= 0
    np.testing.assert_array_equal(users.taste[0], users.taste[1])


def test_a_taste_shift_moves_only_the_later_taste_and_changes_no_other_draw(users: ShopUsers) -> None:
    shifted = build_users(replace(CONFIG, drift=DriftConfig(taste_shift=0.5)), np.random.default_rng(0))
    np.testing.assert_array_equal(shifted.taste[0], users.taste[0])
    np.testing.assert_array_equal(shifted.n_events, users.n_events)
    np.testing.assert_array_equal(shifted.price_sensitivity, users.price_sensitivity)
    assert np.abs(shifted.taste[1] - users.taste[1]).max() > 0.05
    full = build_users(replace(CONFIG, drift=DriftConfig(taste_shift=1.0)), np.random.default_rng(0))
    # Half a shift lies exactly halfway between the old taste and the full shift's target.
    np.testing.assert_allclose(shifted.taste[1], 0.5 * users.taste[0] + 0.5 * full.taste[1])


def test_price_levels_are_the_nearest_sensitivity_level(users: ShopUsers) -> None:
    assert users.price_sensitivity.min() >= 0
    nearest = np.abs(users.price_sensitivity[:, None] - PRICE_SENSITIVITY_LEVELS[None, :]).argmin(axis=1)
    clipped = np.minimum(nearest, len(PRICE_SENSITIVITY_LEVELS) - 1)
    # Halfway values may round either way; every other user gets the nearest level.
    halfway = np.isclose(users.price_sensitivity % 0.5, 0.25)
    np.testing.assert_array_equal(users.price_level[~halfway], clipped[~halfway])


def test_draw_leaf_inverts_the_cumulative_taste() -> None:
    taste = np.array([[[0.5, 0.0, 0.5], [0.0, 1.0, 0.0]]])  # one phase, two users
    users = ShopUsers(
        np.array(["a", "b"], dtype=object), taste, np.zeros(2), np.zeros(2, dtype=np.int64), np.array([5, 5])
    )
    leaves = users.draw_leaf(np.array([0, 0, 0, 1]), np.array([0, 0, 0, 0]), np.array([0.0, 0.49, 0.51, 0.7]))
    assert leaves.tolist() == [0, 0, 2, 1]
    assert users.draw_leaf(np.array([0]), np.array([0]), np.array([1.0])).tolist() == [
        2
    ]  # never past the end


def test_draw_leaf_uses_the_phase_of_each_row() -> None:
    taste = np.array([[[1.0, 0.0]], [[0.0, 1.0]]])
    users = ShopUsers(
        np.array(["a"], dtype=object), taste, np.zeros(1), np.zeros(1, dtype=np.int64), np.array([5])
    )
    assert users.draw_leaf(np.array([0, 0]), np.array([0, 1]), np.array([0.3, 0.3])).tolist() == [0, 1]
