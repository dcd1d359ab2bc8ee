"""Conformance tests every registered model must pass, plus model-specific behaviour."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from recdrill.data.dataset import Dataset
from recdrill.data.ragged import Ragged
from recdrill.digests import write_digests
from recdrill.errors import ConfigError, ModelFileError, NotFittedError
from recdrill.models.base import BaseRecommender
from recdrill.models.factory import MODEL_KINDS, load_model, make_model, model_class
from recdrill.models.itemknn import ItemKNNRecommender
from recdrill.models.popularity import CategoryPopularityRecommender, PopularityRecommender
from tests.conftest import make_shop

KINDS = sorted(MODEL_KINDS)


@pytest.mark.parametrize("kind", KINDS)
def test_recommend_returns_k_unseen_items_best_first(kind: str, chain_shop: Dataset) -> None:
    model = make_model(kind).fit(chain_shop)
    histories = [[0, 1, 2], [], [5]]
    recs = model.recommend(histories, k=5)
    assert recs.items.shape == (3, 5) and recs.scores.shape == (3, 5)
    for history, items, scores in zip(histories, recs.items, recs.scores, strict=True):
        assert not set(history) & set(items.tolist())
        assert len(set(items.tolist())) == 5
        assert np.all(np.diff(scores) <= 0)


@pytest.mark.parametrize("kind", KINDS)
def test_save_load_round_trip_gives_identical_scores(kind: str, chain_shop: Dataset, tmp_path: Path) -> None:
    model = make_model(kind).fit(chain_shop)
    model.save(tmp_path / kind)
    loaded = load_model(tmp_path / kind, chain_shop)
    assert type(loaded) is type(model) and loaded.get_params() == model.get_params()
    histories = [[0, 1, 2], [], [7, 8], [19]]
    np.testing.assert_array_equal(loaded.score(histories), model.score(histories))


@pytest.mark.parametrize("kind", KINDS)
def test_scoring_leaves_the_histories_untouched(kind: str, chain_shop: Dataset) -> None:
    # Unsorted rows with repeats: a sparse conversion that sorts in place would corrupt them, and
    # the caller then excludes the wrong items.
    histories = Ragged.from_lists([[5, 3, 5, 1], [9, 9], [4]])
    make_model(kind).fit(chain_shop).score(histories)
    assert histories.to_lists() == [[5, 3, 5, 1], [9, 9], [4]]
    assert histories.indptr.tolist() == [0, 4, 6, 7]


@pytest.mark.parametrize("kind", KINDS)
def test_predicting_before_fit_raises_not_fitted(kind: str) -> None:
    with pytest.raises(NotFittedError, match="not fitted"):
        make_model(kind).recommend([[0]])


@pytest.mark.parametrize("kind", KINDS)
def test_out_of_range_history_items_are_refused(kind: str, chain_shop: Dataset) -> None:
    with pytest.raises(ConfigError, match=r"history item ids must lie in \[0, 20\)"):
        make_model(kind).fit(chain_shop).score([[25]])


def test_unknown_kind_names_the_choices() -> None:
    with pytest.raises(ConfigError, match="unknown model 'bert'; choose one of catpop, itemknn, pop, sasrec"):
        make_model("bert")


def test_saved_state_of_the_wrong_size_or_with_nan_is_refused(chain_shop: Dataset, tmp_path: Path) -> None:
    PopularityRecommender().fit(chain_shop).save(tmp_path / "m")
    np.savez(tmp_path / "m" / "state.npz", share=np.zeros(7, dtype=np.float32))
    write_digests(tmp_path / "m")  # a manifest rewritten too: the checks behind the digests still hold
    with pytest.raises(ModelFileError, match="model state is inconsistent"):
        load_model(tmp_path / "m")
    np.savez(tmp_path / "m" / "state.npz", share=np.full(20, np.nan, dtype=np.float32))
    write_digests(tmp_path / "m")
    with pytest.raises(ModelFileError, match="finite scores for 20 items"):
        load_model(tmp_path / "m")


def test_class_load_refuses_another_kind(chain_shop: Dataset, tmp_path: Path) -> None:
    PopularityRecommender().fit(chain_shop).save(tmp_path / "m")
    assert PopularityRecommender.load(tmp_path / "m").recommend([[]], k=3).items.shape == (1, 3)
    with pytest.raises(ModelFileError, match="holds a 'pop' model, not 'itemknn'"):
        ItemKNNRecommender.load(tmp_path / "m")


def test_loading_for_another_catalogue_is_refused(chain_shop: Dataset, tmp_path: Path) -> None:
    PopularityRecommender().fit(chain_shop).save(tmp_path / "m")
    other = make_shop([[0, 1, 2]], n_items=21)
    with pytest.raises(ModelFileError, match="different catalogue"):
        load_model(tmp_path / "m", other)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / "state.npz").write_bytes(b"PK\x03\x04 truncated"), "corrupt model state"),
        (lambda d: (d / "model.json").write_text("{not json"), "corrupt metadata"),
        (lambda d: (d / "state.npz").unlink(), "missing state.npz"),
        (lambda d: (d / "model.json").write_text(json.dumps({"kind": "pop"})), "lacks kind, params"),
        (lambda d: np.savez(d / "state.npz", share=np.full(20, np.nan, dtype=np.float32)), "lacks array"),
    ],
)
def test_damaged_model_folders_give_clear_errors(
    damage, message: str, chain_shop: Dataset, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "m"
    ItemKNNRecommender().fit(chain_shop).save(folder)
    damage(folder)
    with pytest.raises(ModelFileError, match=message if "missing" in message else "digests.json"):
        load_model(folder)  # refused by its digests first
    write_digests(folder)  # a manifest rewritten too: the checks behind the digests still hold
    with pytest.raises(ModelFileError, match=message):
        load_model(folder)


def test_popularity_ranks_by_interaction_count() -> None:
    shop = make_shop([[2, 2, 2, 1], [1, 0, 2]], n_items=4)
    recs = PopularityRecommender().fit(shop).recommend([[]], k=4)
    assert recs.items[0].tolist() == [2, 1, 0, 3]


def test_category_popularity_prefers_the_users_category(chain_shop: Dataset) -> None:
    model = CategoryPopularityRecommender().fit(chain_shop)
    even_fan = model.recommend([[0, 2, 4, 6]], k=5).items[0]
    odd_fan = model.recommend([[1, 3, 5, 7]], k=5).items[0]
    assert all(item % 2 == 0 for item in even_fan)
    assert all(item % 2 == 1 for item in odd_fan)


def test_fitting_twice_on_one_catalogue_gives_the_same_model() -> None:
    # Attribute lists with repeats: building the membership matrix must not rewrite the catalogue.
    shop = make_shop([[0, 1, 2, 3], [1, 2, 3], [3, 0, 1]], n_items=4)
    attributes = Ragged.from_lists([[0, 0, 1], [1, 2, 1], [2], [0, 2, 2]])
    shop = replace(shop, catalog=replace(shop.catalog, attributes=attributes))
    first = CategoryPopularityRecommender().fit(shop).score([[0], [2, 3]])
    PopularityRecommender().fit(shop)
    again = CategoryPopularityRecommender().fit(shop).score([[0], [2, 3]])
    np.testing.assert_array_equal(first, again)
    assert attributes.to_lists() == [[0, 0, 1], [1, 2, 1], [2], [0, 2, 2]]


def test_category_popularity_without_categories_is_plain_popularity() -> None:
    shop = make_shop([[2, 2, 1], [1, 0, 2]], n_items=4)
    assert CategoryPopularityRecommender().fit(shop).recommend([[3]], k=3).items[0].tolist() == [2, 1, 0]


def test_itemknn_learns_the_next_item_of_a_chain(chain_shop: Dataset) -> None:
    recs = ItemKNNRecommender(neighbours=5).fit(chain_shop).recommend([[3, 4, 5], [10, 11]], k=1)
    assert recs.items[:, 0].tolist() == [6, 12]


@pytest.mark.parametrize(("param", "value"), [("neighbours", 0), ("alpha", 1.5), ("recency_decay", 0.0)])
def test_itemknn_bad_parameters_are_named(param: str, value: float, chain_shop: Dataset) -> None:
    with pytest.raises(ConfigError, match=f"The '{param}' parameter of ItemKNNRecommender must be"):
        ItemKNNRecommender(**{param: value}).fit(chain_shop)


def test_every_registered_model_is_a_base_recommender() -> None:
    for kind in MODEL_KINDS:
        assert issubclass(model_class(kind), BaseRecommender) and model_class(kind).kind == kind
