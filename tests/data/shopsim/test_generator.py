"""Tests of recdrill.data.shopsim.generator: ShopSim's options, the generated dataset and its hidden truth."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from recdrill.data.dataset import Dataset
from recdrill.data.shopsim.config import DriftConfig, ShopSimConfig
from recdrill.data.shopsim.generator import ShopSim
from recdrill.errors import ConfigError

TINY: dict[str, Any] = {"n_items": 100, "n_users": 60, "n_events": 600, "n_top_categories": 4, "n_brands": 12}


@pytest.fixture(scope="module")
def run() -> tuple[ShopSim, Dataset]:
    sim = ShopSim(**TINY, seed=3, drift=DriftConfig(new_items=0.1, price_shock=2.0))
    return sim, sim.generate()


def test_a_config_that_is_not_a_shopsimconfig_is_refused() -> None:
    with pytest.raises(ConfigError, match="ShopSim config must be a ShopSimConfig, got dict"):
        ShopSim({"n_items": 100})  # type: ignore[arg-type]


def test_an_unknown_option_is_named_with_the_options_there_are() -> None:
    with pytest.raises(
        ConfigError, match=r"unknown option 'colour'; options are n_items, n_users, n_events,"
    ):
        ShopSim(colour="red", size=3)


def test_overrides_replace_fields_of_the_given_config_and_keep_the_rest() -> None:
    base = ShopSimConfig(**TINY, seed=1)
    sim = ShopSim(base, seed=2, days=10, promotion_day=None)
    assert sim.config == ShopSimConfig(**TINY, seed=2, days=10, promotion_day=None)
    assert ShopSim().config == ShopSimConfig()
    assert repr(ShopSim(base)) == f"ShopSim({base!r})"


def test_truth_is_only_there_after_generate() -> None:
    with pytest.raises(AttributeError, match=r"call generate\(\) first"):
        _ = ShopSim(**TINY).truth_


def test_the_dataset_has_the_configured_sizes_and_a_clean_quality_report(
    run: tuple[ShopSim, Dataset],
) -> None:
    _, data = run
    assert (data.name, data.n_items, data.n_users, len(data.interactions)) == ("shopsim", 100, 60, 600)
    assert data.quality is not None
    assert (data.quality.source, data.quality.rows_read, data.quality.rows_kept) == (
        "shopsim(seed=3)",
        600,
        600,
    )
    assert data.quality.rows_dropped == 0
    assert data.has_time and data.sequences().lengths.min() >= 5


def test_the_truth_describes_the_shop_that_was_generated(run: tuple[ShopSim, Dataset]) -> None:
    sim, data = run
    truth = sim.truth_
    assert truth.drift_time == sim.config.drift_time
    assert len(truth.new_items) == 10 and np.all(np.diff(truth.new_items) > 0)
    it = data.interactions
    assert not np.isin(it.item[it.timestamp < truth.drift_time], truth.new_items).any()
    # Shocked categories are leaf indices into the category names (past the 4 top categories).
    assert len(truth.shocked_categories) == 5 and truth.shocked_categories.min() >= 4
    assert truth.item_popularity.shape == truth.item_quality.shape == (100,)
    assert truth.user_taste.shape == (60, 20)
    np.testing.assert_allclose(truth.user_taste.sum(axis=1), 1.0)
    assert truth.user_price_sensitivity.shape == (60,) and truth.user_price_sensitivity.min() >= 0
    assert truth.neighbours.shape == (100, 8)
    assert data.catalog.category is not None
    np.testing.assert_array_equal(
        data.catalog.category[truth.neighbours], np.repeat(data.catalog.category[:, None], 8, axis=1)
    )


def test_prices_are_the_catalogue_prices_times_the_shock_where_it_applies(
    run: tuple[ShopSim, Dataset],
) -> None:
    sim, data = run
    it, catalog = data.interactions, data.catalog
    assert it.price is not None and catalog.price is not None and catalog.category is not None
    shocked = np.isin(catalog.category[it.item], sim.truth_.shocked_categories) & (
        it.timestamp >= sim.truth_.drift_time
    )
    np.testing.assert_array_equal(it.price[~shocked], catalog.price[it.item[~shocked]])
    np.testing.assert_allclose(it.price[shocked], np.round(2.0 * catalog.price[it.item[shocked]], 2))


def test_generating_again_gives_an_identical_shop(run: tuple[ShopSim, Dataset]) -> None:
    sim, data = run
    before = sim.truth_
    again = sim.generate()
    for column in ("user", "item", "timestamp", "event", "query", "price"):
        np.testing.assert_array_equal(getattr(again.interactions, column), getattr(data.interactions, column))
    assert again.queries == data.queries
    assert sim.truth_ is not before
    np.testing.assert_array_equal(sim.truth_.new_items, before.new_items)
    np.testing.assert_array_equal(sim.truth_.neighbours, before.neighbours)


def test_queries_index_the_sorted_query_list(run: tuple[ShopSim, Dataset]) -> None:
    _, data = run
    query = data.interactions.query
    assert query is not None and query.min() >= -1 and query.max() < len(data.queries)
    assert list(data.queries) == sorted(set(data.queries))
    assert data.judgements is not None and set(data.judgements.query.tolist()) == set(
        range(len(data.queries))
    )
