"""Tests of recdrill.models.popularity: global best-sellers and best-sellers of a user's categories."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from recdrill.data.dataset import Dataset
from recdrill.data.ragged import Ragged
from recdrill.errors import ConfigError
from recdrill.models.popularity import CategoryPopularityRecommender, PopularityRecommender
from tests.conftest import make_shop


@pytest.fixture
def shop() -> Dataset:
    """Items 0 and 1 in category 0, items 2 and 3 in category 1; counts 2, 1, 1, 0."""
    return make_shop([[0, 0, 1], [2]], n_items=4, categories=[0, 0, 1, 1])


def test_popularity_scores_every_history_with_each_items_share_of_interactions(shop: Dataset) -> None:
    model = PopularityRecommender().fit(shop)
    np.testing.assert_allclose(model.share_, [0.5, 0.25, 0.25, 0.0])
    scores = model.score([[], [3, 2], [0]])
    assert scores.shape == (3, 4) and scores.dtype == np.float32
    np.testing.assert_array_equal(scores, np.tile(model.share_, (3, 1)))
    assert model.recommend([[0]], k=3).items.tolist() == [[1, 2, 3]]


def test_popularity_round_trips_through_save_and_load(shop: Dataset, tmp_path: Path) -> None:
    PopularityRecommender().fit(shop).save(tmp_path)
    loaded = PopularityRecommender.load(tmp_path)
    np.testing.assert_array_equal(loaded.share_, np.array([0.5, 0.25, 0.25, 0.0], dtype=np.float32))


def test_category_popularity_weighs_each_categorys_best_sellers_by_the_users_share_in_it(
    shop: Dataset,
) -> None:
    model = CategoryPopularityRecommender(prior=0.01).fit(shop)
    share = np.array([0.5, 0.25, 0.25, 0.0])
    # Half the history is in category 0 (items 0, 1 sell 2:1), half in category 1 (item 2 sells all).
    expected = 0.5 * np.array([2 / 3, 1 / 3, 0, 0]) + 0.5 * np.array([0, 0, 1, 0]) + 0.01 * share
    np.testing.assert_allclose(model.score([[0, 2]])[0], expected, rtol=1e-6)
    np.testing.assert_allclose(model.score([[]])[0], 0.01 * share, rtol=1e-6)


def test_category_popularity_counts_the_ancestors_of_a_leaf_too(shop: Dataset) -> None:
    tree = replace(
        shop,
        catalog=replace(
            shop.catalog,
            category=np.array([1, 1, 2, 2]),
            category_names=("top", "a", "b"),
            category_parent=np.array([-1, 0, 0]),
        ),
    )
    model = CategoryPopularityRecommender(prior=0.0).fit(tree)
    # Item 0 sits in leaf "a" and in "top": both groups vote with the whole history.
    expected = np.array([2 / 3, 1 / 3, 0, 0]) + np.array([0.5, 0.25, 0.25, 0])
    np.testing.assert_allclose(model.score([[0]])[0], expected, rtol=1e-6)


def test_category_popularity_uses_attribute_tags_without_categories() -> None:
    shop = make_shop([[0, 0, 1], [2]], n_items=4)
    tagged = replace(shop, catalog=replace(shop.catalog, attributes=Ragged.from_lists([[5], [5], [7], [7]])))
    model = CategoryPopularityRecommender(prior=0.0).fit(tagged)
    np.testing.assert_allclose(model.score([[3]])[0], [0, 0, 1, 0], rtol=1e-6)


@pytest.mark.parametrize("prior", [-1.0, float("nan")])
def test_a_negative_or_nan_prior_is_refused(shop: Dataset, prior: float) -> None:
    with pytest.raises(
        ConfigError, match="The 'prior' parameter of CategoryPopularityRecommender must be >= 0"
    ):
        CategoryPopularityRecommender(prior=prior).fit(shop)


def test_category_popularity_round_trips_through_save_and_load(shop: Dataset, tmp_path: Path) -> None:
    model = CategoryPopularityRecommender(prior=0.2).fit(shop)
    model.save(tmp_path)
    loaded = CategoryPopularityRecommender.load(tmp_path)
    assert loaded.prior == 0.2
    histories = [[0, 2], [], [3, 3, 1]]
    np.testing.assert_array_equal(loaded.score(histories), model.score(histories))
