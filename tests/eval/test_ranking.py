from __future__ import annotations

import numpy as np
import pytest

from recdrill.data.ragged import Ragged
from recdrill.errors import ModelError
from recdrill.eval.ranking import exclude, target_ranks, top_k, validate_scores


def test_top_k_matches_a_stable_full_sort_on_tie_heavy_scores() -> None:
    rng = np.random.default_rng(3)
    for _ in range(300):
        n_rows, n_items, k = int(rng.integers(1, 6)), int(rng.integers(1, 40)), int(rng.integers(1, 12))
        scores = rng.integers(0, 4, (n_rows, n_items)).astype(np.float32)
        scores[rng.random((n_rows, n_items)) < 0.2] = -np.inf
        index, values = top_k(scores, k)
        expected = np.argsort(-scores, axis=1, kind="stable")[:, : min(k, n_items)]
        np.testing.assert_array_equal(index, expected)
        np.testing.assert_array_equal(values, np.take_along_axis(scores, expected, axis=1))


def test_target_rank_agrees_with_position_in_top_k() -> None:
    rng = np.random.default_rng(4)
    scores = rng.integers(0, 5, (50, 30)).astype(np.float32)
    index, _ = top_k(scores, 30)
    targets = rng.integers(0, 30, 50)
    positions = np.argmax(index == targets[:, None], axis=1)
    np.testing.assert_array_equal(target_ranks(scores, targets), positions)


def test_exclude_sets_history_items_to_minus_infinity() -> None:
    scores = np.ones((2, 4), dtype=np.float32)
    exclude(scores, Ragged.from_lists([[0, 3], []]))
    assert np.isneginf(scores).tolist() == [[True, False, False, True], [False] * 4]


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_positive_infinity_is_refused(bad: float) -> None:
    scores = np.zeros((3, 4), dtype=np.float32)
    scores[1, 2] = bad
    with pytest.raises(ModelError, match="NaN or \\+inf scores for 1 of 3 users"):
        validate_scores(scores, 3, 4)


def test_wrong_shape_is_refused() -> None:
    with pytest.raises(ModelError, match="shape"):
        validate_scores(np.zeros((3, 4)), 3, 5)
