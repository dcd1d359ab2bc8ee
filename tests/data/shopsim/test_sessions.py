"""Tests of recdrill.data.shopsim.sessions: the item sampler and the simulated sessions of events."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from recdrill.data.shopsim.catalog import ShopCatalog, build_catalog, neighbour_table
from recdrill.data.shopsim.config import DriftConfig, ShopSimConfig
from recdrill.data.shopsim.drift import ShopDrift, draw_drift
from recdrill.data.shopsim.sessions import N_NEIGHBOURS, ItemSampler, SessionEvents, simulate_sessions
from recdrill.data.shopsim.users import build_users

CONFIG = ShopSimConfig(
    n_items=150, n_users=120, n_events=2_400, n_top_categories=3, n_subcategories=2, n_brands=6,
    drift=DriftConfig(new_items=0.2, price_shock=2.0, price_shock_share=0.5),
)  # fmt: skip


@pytest.fixture(scope="module")
def shop() -> ShopCatalog:
    return build_catalog(CONFIG, np.random.default_rng(0))


@pytest.fixture(scope="module")
def drift(shop: ShopCatalog) -> ShopDrift:
    return draw_drift(CONFIG, shop, np.random.default_rng(1))


@pytest.fixture(scope="module")
def events(shop: ShopCatalog, drift: ShopDrift) -> SessionEvents:
    users = build_users(CONFIG, np.random.default_rng(2))
    return simulate_sessions(CONFIG, shop, users, drift, np.random.default_rng(3))


def test_each_user_gets_their_events_in_a_block_that_opens_a_session(events: SessionEvents) -> None:
    users = build_users(CONFIG, np.random.default_rng(2))
    np.testing.assert_array_equal(np.bincount(events.user, minlength=120), users.n_events)
    assert np.all(np.diff(events.user) >= 0)
    user_starts = np.concatenate([[0], np.cumsum(users.n_events)[:-1]])
    assert np.isin(user_starts, events.session_first_event).all()


def test_sessions_are_numbered_in_order_and_know_their_user_and_first_event(events: SessionEvents) -> None:
    assert events.session[0] == 0 and set(np.diff(events.session).tolist()) <= {0, 1}
    n_sessions = events.session[-1] + 1
    assert len(events.session_first_event) == len(events.session_user) == n_sessions
    np.testing.assert_array_equal(events.session[events.session_first_event], np.arange(n_sessions))
    np.testing.assert_array_equal(events.session_user, events.user[events.session_first_event])
    assert events.user.shape == events.item.shape == events.timestamp.shape == events.price.shape == (2_400,)


def test_events_of_a_session_move_forward_in_time_from_its_start(events: SessionEvents) -> None:
    same = events.session[1:] == events.session[:-1]
    assert np.all(np.diff(events.timestamp)[same] >= 2)
    starts = events.timestamp[events.session_first_event]
    assert starts.min() >= CONFIG.start_date and starts.max() < CONFIG.end_date


def test_new_items_appear_only_in_sessions_after_the_drift(events: SessionEvents, drift: ShopDrift) -> None:
    after = events.session_after_drift[events.session]
    np.testing.assert_array_equal(
        events.session_after_drift, events.timestamp[events.session_first_event] >= drift.time
    )
    assert not drift.new_item[events.item[~after]].any()
    assert drift.new_item[events.item[after]].any()


def test_prices_are_the_catalogue_price_unless_a_shock_applies(
    events: SessionEvents, shop: ShopCatalog, drift: ShopDrift
) -> None:
    factor = drift.price_factor(shop.leaf[events.item], events.timestamp)
    plain = factor == 1.0
    np.testing.assert_array_equal(events.price[plain], shop.price[events.item[plain]])
    np.testing.assert_allclose(events.price[~plain], np.round(2.0 * shop.price[events.item[~plain]], 2))
    assert (~plain).sum() > 0


def test_the_funnel_gives_mostly_views_and_few_purchases(events: SessionEvents) -> None:
    counts = np.bincount(events.event, minlength=4)
    assert events.event.min() >= 0 and events.event.max() <= 3 and len(counts) == 4
    assert counts[0] > counts[1] > counts[3] > 0


def test_later_events_often_move_to_a_neighbour_of_the_previous_item(
    events: SessionEvents, shop: ShopCatalog
) -> None:
    table = neighbour_table(shop, np.ones(150, dtype=bool), N_NEIGHBOURS)
    same = events.session[1:] == events.session[:-1]
    moved = (table[events.item[:-1]] == events.item[1:, None]).any(axis=1)
    assert moved[same].mean() > 0.45


def test_the_sampler_draws_only_items_of_the_asked_leaf_and_no_new_item_before_the_drift(
    shop: ShopCatalog, drift: ShopDrift
) -> None:
    sampler = ItemSampler(shop, drift)
    rng = np.random.default_rng(4)
    leaf = rng.integers(0, shop.n_leaves, size=3_000)
    u = np.concatenate([rng.random(2_998), [0.0, 1.0 - 1e-16]])  # both ends of the interval
    for phase in (0, 1):
        items = sampler.draw(leaf, np.full(3_000, 2), np.full(3_000, phase), u)
        np.testing.assert_array_equal(shop.leaf[items], leaf)
        assert drift.new_item[items].any() == (phase == 1)


def test_price_sensitive_levels_draw_cheaper_items(shop: ShopCatalog) -> None:
    none_new = replace(draw_drift(CONFIG, shop, np.random.default_rng(1)), new_item=np.zeros(150, dtype=bool))
    sampler = ItemSampler(shop, none_new)
    rng = np.random.default_rng(5)
    leaf, u = rng.integers(0, shop.n_leaves, size=20_000), rng.random(20_000)
    zeros = np.zeros(20_000, dtype=np.int64)
    careless = shop.log_price_centred[sampler.draw(leaf, zeros, zeros, u)].mean()
    careful = shop.log_price_centred[sampler.draw(leaf, zeros + 4, zeros, u)].mean()
    assert careful < careless - 0.1
