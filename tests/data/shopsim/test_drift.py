"""Tests of recdrill.data.shopsim.drift: which items are new and which leaves are shocked after the drift."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from recdrill.data.shopsim.catalog import ShopCatalog, build_catalog
from recdrill.data.shopsim.config import DriftConfig, ShopSimConfig
from recdrill.data.shopsim.drift import ShopDrift, draw_drift

CONFIG = ShopSimConfig(
    n_items=120, n_users=50, n_events=500, n_top_categories=3, n_subcategories=2, n_brands=6
)


@pytest.fixture(scope="module")
def shop() -> ShopCatalog:
    return build_catalog(CONFIG, np.random.default_rng(0))


def drift_of(shop: ShopCatalog, seed: int = 1, **knobs: float) -> ShopDrift:
    return draw_drift(replace(CONFIG, drift=DriftConfig(**knobs)), shop, np.random.default_rng(seed))


def test_without_knobs_nothing_is_new_or_shocked(shop: ShopCatalog) -> None:
    drift = drift_of(shop, price_shock_share=0.0)
    assert not drift.new_item.any() and not drift.shocked_leaf.any()
    assert drift.time == CONFIG.drift_time and drift.price_shock == 1.0


def test_the_new_share_of_items_is_rounded_to_a_count(shop: ShopCatalog) -> None:
    assert int(drift_of(shop, new_items=0.1).new_item.sum()) == 12
    assert int(drift_of(shop, new_items=0.004).new_item.sum()) == 0  # round(0.48) items


def test_every_leafs_most_popular_item_stays_old_which_caps_the_new_items(shop: ShopCatalog) -> None:
    drift = drift_of(shop, new_items=0.99)
    assert int(drift.new_item.sum()) == 120 - shop.n_leaves
    for leaf in range(shop.n_leaves):
        items = np.flatnonzero(shop.leaf == leaf)
        anchor = items[np.argmax(shop.popularity[items])]
        assert not drift.new_item[anchor]


def test_a_positive_shock_share_shocks_at_least_one_leaf(shop: ShopCatalog) -> None:
    assert drift_of(shop, price_shock=2.0, price_shock_share=0.01).shocked_leaf.sum() == 1
    assert drift_of(shop, price_shock=2.0, price_shock_share=0.5).shocked_leaf.sum() == 3
    assert drift_of(shop, price_shock=2.0, price_shock_share=1.0).shocked_leaf.all()


def test_turning_one_knob_does_not_reshuffle_the_other(shop: ShopCatalog) -> None:
    with_shock = drift_of(shop, new_items=0.2, price_shock=3.0)
    without = drift_of(shop, new_items=0.2)
    np.testing.assert_array_equal(with_shock.new_item, without.new_item)
    np.testing.assert_array_equal(with_shock.shocked_leaf, without.shocked_leaf)


def test_the_price_factor_applies_the_shock_from_the_drift_time_in_shocked_leaves_only() -> None:
    drift = ShopDrift(
        time=100, new_item=np.zeros(3, dtype=bool), shocked_leaf=np.array([True, False]), price_shock=1.5
    )
    factor = drift.price_factor(np.array([0, 0, 1, 1]), np.array([99, 100, 99, 500]))
    assert factor.tolist() == [1.0, 1.5, 1.0, 1.0]
