"""The features live monitoring watches, on a hand-made shop snapshot whose right values are known."""

from __future__ import annotations

import numpy as np

from recdrill.data.ragged import Ragged
from recdrill.data.snapshot import ShopSnapshot
from recdrill.monitor.features import (
    CATEGORICAL_FEATURES,
    PRICE_FLOOR,
    feedback_features,
    history_features,
    item_categories,
    request_features,
)


def _snapshot(prices: list[float] | None = None) -> ShopSnapshot:
    """Four items: training counts 0, 1, 3, 7; leaf categories 2, 0, -1 (unknown), 1."""
    return ShopSnapshot(
        item_ids=np.array(["i0", "i1", "i2", "i3"]),
        item_counts=np.array([0, 1, 3, 7], dtype=np.int64),
        item_category=np.array([2, 0, -1, 1], dtype=np.int32),
        category_names=("shoes", "hats", "socks"),
        category_parent=np.array([-1, -1, 0], dtype=np.int32),
        user_ids=np.array(["u0"]),
        histories=Ragged.from_lists([[0]]),
        item_price=None if prices is None else np.array(prices, dtype=np.float64),
    )


def test_items_are_watched_under_their_own_leaf_category() -> None:
    categories = item_categories(_snapshot())
    assert categories.dtype == np.int64 and categories.tolist() == [2, 0, -1, 1]


def test_history_features_per_request_with_empty_histories_counted_only_by_length() -> None:
    snapshot = _snapshot()
    histories = Ragged.from_lists([[0, 3], [], [1, 2, 3]])
    features = history_features(histories, snapshot, item_categories(snapshot))
    assert set(features) == {"history_length", "history_popularity", "history_category"}
    assert features["history_length"].tolist() == [2.0, 0.0, 3.0]
    expected = [np.log1p([0, 7]).mean(), np.log1p([1, 3, 7]).mean()]
    np.testing.assert_allclose(features["history_popularity"], expected, rtol=1e-12)
    assert features["history_category"].tolist() == [1, 1]  # the last item's category: item 3's


def test_history_log_price_averages_known_prices_with_a_floor() -> None:
    snapshot = _snapshot(prices=[0.0, np.nan, 10.0, 1000.0])
    histories = Ragged.from_lists([[0, 2], [1], [1, 3], []])
    features = history_features(histories, snapshot, item_categories(snapshot))
    # Row 0: free item floored at 0.01; row 1 has no known price, so no value; row 2 ignores the NaN.
    np.testing.assert_allclose(
        features["history_log_price"], [(np.log(PRICE_FLOOR) + np.log(10.0)) / 2, np.log(1000.0)], rtol=1e-12
    )


def test_request_features_count_ids_users_and_outputs() -> None:
    snapshot = _snapshot()
    features = request_features(
        Ragged.from_lists([[1], [0, 2], [3]]),
        snapshot,
        item_categories(snapshot),
        given=np.array([3, 2, 0]),
        unknown=np.array([1, 2, 0]),
        user_known=[True, None, False],
        items=Ragged.from_lists([[3, 0], [], [2]]),
        top_scores=np.array([0.9, 0.25]),
    )
    assert features["unknown_items"].tolist() == ["known", "known", "unknown", "unknown", "unknown"]
    assert features["user_kind"].tolist() == ["known", "anonymous", "unknown"]
    assert features["rec_category"].tolist() == [1, -1]  # first items 3 and 2; an empty answer adds none
    assert features["top_score"].dtype == np.float64 and features["top_score"].tolist() == [0.9, 0.25]
    assert features["history_length"].tolist() == [1.0, 2.0, 1.0]
    assert set(features) == {
        "history_length",
        "history_popularity",
        "history_category",
        "unknown_items",
        "user_kind",
        "rec_category",
        "top_score",
    }  # no prices in this shop: no history_log_price


def test_feedback_features_keep_event_kinds_and_log_prices_shown() -> None:
    features = feedback_features(["click", "purchase", "view"], [None, 20.0, 0.0])
    assert features["feedback_event"].tolist() == ["click", "purchase", "view"]
    assert features["feedback_event"].dtype.kind == "U"
    np.testing.assert_allclose(
        features["feedback_log_price"], [np.log(20.0), np.log(PRICE_FLOOR)], rtol=1e-12
    )


def test_feedback_without_prices_has_no_price_values() -> None:
    features = feedback_features([], [])
    assert features["feedback_event"].tolist() == [] and features["feedback_log_price"].tolist() == []
    assert feedback_features(["click"], [None])["feedback_log_price"].size == 0


def test_the_categorical_features_are_the_ones_documented_as_categorical() -> None:
    documented = {"history_category", "unknown_items", "user_kind", "rec_category", "feedback_event"}
    assert documented == CATEGORICAL_FEATURES
