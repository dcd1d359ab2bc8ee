"""Tests of recdrill.models.itemknn: windowed co-occurrence similarities and recency-weighted scoring."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from recdrill.data.ragged import Ragged
from recdrill.errors import ConfigError
from recdrill.models.itemknn import ItemKNNRecommender
from tests.conftest import make_shop

PLAIN: dict[str, Any] = {"backward_weight": 0.0, "alpha": 0.5, "shrink": 0.0}
PRIOR = 1e-6


def similarity(model: ItemKNNRecommender) -> np.ndarray:
    return np.asarray(model.similarity_.todense())


def test_pairs_count_one_over_their_distance_within_the_window() -> None:
    shop = make_shop([[0, 1, 2]], n_items=4)
    near = ItemKNNRecommender(window=2, **PLAIN).fit(shop)
    np.testing.assert_allclose(similarity(near), [[0, 1, 0.5, 0], [0, 0, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    narrow = ItemKNNRecommender(window=1, **PLAIN).fit(shop)
    assert similarity(narrow)[0, 2] == 0.0


def test_the_backward_direction_counts_backward_weight() -> None:
    shop = make_shop([[0, 1]], n_items=2)
    model = ItemKNNRecommender(window=1, backward_weight=0.5, alpha=0.5, shrink=0.0).fit(shop)
    np.testing.assert_allclose(similarity(model), [[0, 1.0], [0.5, 0]])


def test_similarities_are_normalised_asymmetric_cosine_style_with_shrinkage() -> None:
    # Counts: item 0 three times, item 1 twice, item 2 once; 0 -> 1 twice and 0 -> 2 once.
    shop = make_shop([[0, 1], [0, 1], [0, 2]], n_items=3)
    model = ItemKNNRecommender(window=1, backward_weight=0.0, alpha=0.5, shrink=1.0).fit(shop)
    sim = similarity(model)
    assert sim[0, 1] == pytest.approx(2 / (math.sqrt(3) * math.sqrt(2) + 1), rel=1e-6)
    assert sim[0, 2] == pytest.approx(1 / (math.sqrt(3) * 1 + 1), rel=1e-6)
    skewed = similarity(ItemKNNRecommender(window=1, backward_weight=0.0, alpha=1.0, shrink=0.0).fit(shop))
    assert skewed[0, 1] == pytest.approx(2 / 3, rel=1e-6)  # alpha 1: divided by n(a) alone


def test_repeats_of_one_item_are_not_similar_to_themselves() -> None:
    model = ItemKNNRecommender(window=2, **PLAIN).fit(make_shop([[0, 0, 1]], n_items=2))
    sim = similarity(model)
    assert sim[0, 0] == 0.0 and sim[0, 1] == pytest.approx(1.5 / math.sqrt(2))


def test_only_the_strongest_neighbours_are_kept_ties_by_lower_index() -> None:
    shop = make_shop([[0, 2], [0, 1], [0, 3], [0, 3]], n_items=4)
    model = ItemKNNRecommender(neighbours=2, window=1, **PLAIN).fit(shop)
    assert model.similarity_.getrow(0).indices.tolist() == [1, 3]  # 3 strongest, then 1 before 2
    assert model.recommend([[0]], k=3).items.tolist() == [[3, 1, 2]]


def test_recent_items_vote_more_and_only_history_length_of_them_vote() -> None:
    shop = make_shop([[0, 1, 2]], n_items=4)
    model = ItemKNNRecommender(window=2, recency_decay=0.5, **PLAIN).fit(shop)
    share = np.array([1, 1, 1, 0]) / 3
    np.testing.assert_allclose(model.score([[0, 1]])[0], [0, 0.5, 1.25, 0] + PRIOR * share, rtol=1e-5)
    last_only = ItemKNNRecommender(window=2, recency_decay=0.5, history_length=1, **PLAIN).fit(shop)
    np.testing.assert_allclose(last_only.score([[0, 1]])[0], [0, 0, 1, 0] + PRIOR * share, rtol=1e-5)


def test_an_empty_history_is_scored_by_the_popularity_prior_alone() -> None:
    shop = make_shop([[2, 2, 1], [1, 0, 2]], n_items=4)
    model = ItemKNNRecommender().fit(shop)
    np.testing.assert_allclose(model.score([[]])[0], PRIOR * np.array([1, 2, 3, 0]) / 6, rtol=1e-5)
    assert model.recommend([[]], k=4).items.tolist() == [[2, 1, 0, 3]]


def test_fit_sequences_learns_without_a_catalogue_fingerprint() -> None:
    model = ItemKNNRecommender(window=1, **PLAIN).fit_sequences(Ragged.from_lists([[0, 1], [1, 2]]), 3)
    assert model.is_fitted() and model.n_items_ == 3 and not hasattr(model, "fingerprint_")
    np.testing.assert_allclose(
        similarity(model), [[0, 1 / math.sqrt(2), 0], [0, 0, 1 / math.sqrt(2)], [0, 0, 0]]
    )


def test_save_and_load_keep_the_pruned_similarities(tmp_path: Path) -> None:
    shop = make_shop([[0, 2], [0, 1], [0, 3], [0, 3]], n_items=4)
    model = ItemKNNRecommender(neighbours=2, window=1, **PLAIN).fit(shop)
    model.save(tmp_path)
    loaded = ItemKNNRecommender.load(tmp_path)
    np.testing.assert_array_equal(similarity(loaded), similarity(model))
    np.testing.assert_array_equal(loaded.score([[0], [3, 1]]), model.score([[0], [3, 1]]))


@pytest.mark.parametrize(
    ("param", "value", "expected"),
    [
        ("neighbours", 0, "an int >= 1"),
        ("window", 2.0, "an int >= 1"),
        ("backward_weight", 1.5, "in [0, 1]"),
        ("alpha", -0.1, "in [0, 1]"),
        ("shrink", -1.0, ">= 0"),
        ("history_length", 0, "an int >= 1"),
        ("recency_decay", 1.01, "in (0, 1]"),
    ],
)
def test_bad_parameters_are_named_with_what_is_expected(param: str, value: float, expected: str) -> None:
    message = f"The '{param}' parameter of ItemKNNRecommender must be {expected}, got {value!r}"
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        ItemKNNRecommender(**{param: value}).fit(make_shop([[0, 1]], n_items=2))
