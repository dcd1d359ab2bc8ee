"""Tests of recdrill.eval.evaluate: full-ranking evaluation of a scorer on a fold, and the report table."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recdrill.data.ragged import Ragged
from recdrill.data.splits import EvalFold, leave_one_out
from recdrill.errors import ConfigError, ModelError
from recdrill.eval.evaluate import EvalReport, evaluate, format_table
from tests.conftest import make_shop

# Items 0..5, best first: every history gets the same scores.
FIXED = np.array([5.0, 4.0, 3.0, 2.0, 1.0, 0.0], dtype=np.float32)


class FixedScorer:
    """Scores every history with ``scores`` (the same array each time) and records what it was asked."""

    def __init__(self, scores: np.ndarray) -> None:
        self.scores = scores
        self.calls: list[list[list[int]]] = []

    def score(self, histories: Ragged) -> np.ndarray:
        self.calls.append(histories.to_lists())
        return np.broadcast_to(self.scores, (len(histories), len(self.scores)))


@pytest.fixture
def fold() -> EvalFold:
    """Users 0 and 1 are evaluated (targets 3 and 4); user 2 has too few items."""
    shop = make_shop([[0, 1, 2, 3], [1, 2, 3, 4], [0, 4]], n_items=6)
    return leave_one_out(shop).test


def test_seen_items_are_excluded_before_the_target_is_ranked(fold: EvalFold) -> None:
    # User 0 saw 0 1 2, so target 3 comes first; user 1 saw 1 2 3, so target 4 comes after item 0.
    report = evaluate(FixedScorer(FIXED), fold, model_name="fixed", ks=(1, 5))
    assert report.metrics == pytest.approx(
        {"HR@1": 0.5, "NDCG@1": 0.5, "HR@5": 1.0, "NDCG@5": (1 + 1 / math.log2(3)) / 2, "MRR": 0.75}
    )
    assert (report.dataset, report.model, report.fold, report.n_users) == ("toy", "fixed", "test", 2)


def test_without_exclusion_seen_items_take_the_top_places(fold: EvalFold) -> None:
    report = evaluate(FixedScorer(FIXED), fold, ks=(5,), exclude_seen=False)
    assert report.metrics["MRR"] == pytest.approx((1 / 4 + 1 / 5) / 2)
    assert report.metrics["HR@5"] == 1.0


def test_coverage_and_popularity_bias_describe_the_top_lists(fold: EvalFold) -> None:
    report = evaluate(FixedScorer(FIXED), fold, list_size=2)
    # Lists [3, 4] and [0, 4]: 3 of 6 items. Training counts 2 2 2 1 1 0 give percentiles
    # 0.8 0.8 0.8 0.3 0.3 0 (ties share their mean rank), so the mean over 3 4 0 4 is 0.425.
    assert report.coverage == pytest.approx(0.5)
    assert report.popularity_bias == pytest.approx(0.425)


def test_list_size_zero_skips_the_lists(fold: EvalFold) -> None:
    report = evaluate(FixedScorer(FIXED), fold, list_size=0)
    assert (report.coverage, report.popularity_bias) == (0.0, 0.0)
    assert report.metrics["HR@5"] == 1.0


def test_users_are_scored_in_batches_shortest_history_first() -> None:
    shop = make_shop([[0, 1, 2, 3, 4, 5], [1, 2, 3], [2, 3, 4, 5], [0, 1, 2]], n_items=6)
    fold = leave_one_out(shop).test
    scorer = FixedScorer(FIXED)
    batched = evaluate(scorer, fold, batch_size=2)
    assert scorer.calls == [[[1, 2], [0, 1]], [[2, 3, 4], [0, 1, 2, 3, 4]]]
    assert batched.metrics == evaluate(FixedScorer(FIXED), fold, batch_size=100).metrics


class MatrixScorer:
    """Returns one writeable score matrix, the very same object at every call."""

    def __init__(self, matrix: np.ndarray) -> None:
        self.matrix = matrix

    def score(self, histories: Ragged) -> np.ndarray:
        return self.matrix


def test_the_scorers_array_is_never_written_to(fold: EvalFold) -> None:
    matrix = np.tile(FIXED, (2, 1))
    report = evaluate(MatrixScorer(matrix), fold, ks=(1,))
    np.testing.assert_array_equal(matrix, np.tile(FIXED, (2, 1)))  # no -inf written into it
    assert report.metrics["HR@1"] == 0.5


def test_a_non_positive_batch_size_is_refused(fold: EvalFold) -> None:
    with pytest.raises(ConfigError, match="batch_size must be positive, got 0"):
        evaluate(FixedScorer(FIXED), fold, batch_size=0)


def test_scores_of_the_wrong_shape_or_with_nan_are_model_errors(fold: EvalFold) -> None:
    with pytest.raises(ModelError, match=r"model returned scores of shape \(2, 5\), expected \(2, 6\)"):
        evaluate(FixedScorer(FIXED[:5]), fold)
    with pytest.raises(ModelError, match="model returned NaN or \\+inf scores for 2 of 2 users"):
        evaluate(FixedScorer(np.array([0, np.nan, 0, 0, 0, 0], dtype=np.float32)), fold)


def test_minus_infinity_scores_are_allowed(fold: EvalFold) -> None:
    scores = np.array([-np.inf, 0.0, 0.0, 1.0, 2.0, 0.0], dtype=np.float32)
    report = evaluate(FixedScorer(scores), fold, ks=(1,))
    assert report.metrics["HR@1"] == 0.5  # user 1's target 4 is first; user 0's 3 comes after 4


def test_to_dict_gives_the_stable_json_shape_with_extras() -> None:
    report = EvalReport("toy", "pop", "test", 2, {"HR@5": 1.0}, 0.5, 0.425, 1.5, extra={"seed": 3})
    assert report.to_dict() == {
        "dataset": "toy",
        "model": "pop",
        "fold": "test",
        "n_users": 2,
        "metrics": {"HR@5": 1.0},
        "coverage@10": 0.5,
        "popularity_bias@10": 0.425,
        "seconds": 1.5,
        "seed": 3,
    }


def test_format_table_aligns_one_row_per_report() -> None:
    first = EvalReport("toy", "pop", "test", 2, {"HR@5": 1.0, "NDCG@5": 0.81546}, 0.5, 0.425, 1.23)
    second = EvalReport("toy", "itemknn", "validation", 12, {"HR@5": 0.25, "NDCG@5": 0.1}, 0.125, 0.9, 10.0)
    assert format_table([first, second]).splitlines() == [
        "dataset    model        fold  users    HR@5  NDCG@5  cov@10  popbias   sec",
        "    toy      pop        test      2  1.0000  0.8155   0.500    0.425   1.2",
        "    toy  itemknn  validation     12  0.2500  0.1000   0.125    0.900  10.0",
    ]
    assert format_table([]) == ""
