from __future__ import annotations

import math

import numpy as np

from recdrill.eval.metrics import (
    catalog_coverage,
    ndcg_of_item,
    popularity_bias,
    popularity_percentiles,
    ranking_metrics,
)


def test_metrics_follow_the_single_target_definitions() -> None:
    metrics = ranking_metrics(np.array([0, 4, 9, 19, 100]))
    assert metrics["HR@5"] == 2 / 5
    assert metrics["HR@10"] == 3 / 5
    assert metrics["HR@20"] == 4 / 5
    assert math.isclose(metrics["NDCG@5"], (1 + 1 / math.log2(6)) / 5)
    assert math.isclose(metrics["NDCG@10"], (1 + 1 / math.log2(6) + 1 / math.log2(11)) / 5)
    assert math.isclose(metrics["MRR"], (1 + 1 / 5 + 1 / 10 + 1 / 20 + 1 / 101) / 5)


def test_coverage_counts_distinct_items() -> None:
    assert catalog_coverage(np.array([[0, 1], [1, 2]]), 10) == 0.3


def test_popularity_percentiles_share_ties_and_bias_reads_them() -> None:
    counts = np.array([5, 1, 1, 9])
    assert popularity_percentiles(counts).tolist() == [2 / 3, 1 / 6, 1 / 6, 1.0]
    assert popularity_bias(np.array([[3, 0]]), counts) == (1.0 + 2 / 3) / 2


def test_ndcg_of_one_item_is_the_gain_ranking_metrics_averages() -> None:
    assert ndcg_of_item(["a", "b", "c"], "a") == 1.0
    assert ndcg_of_item(["a", "b", "c"], "c") == 0.5
    assert ndcg_of_item(["a", "b"], "z") == 0.0
    assert ndcg_of_item(["a", "b", "c"], "c", k=2) == 0.0  # outside the top k
    lists = [["x", "t"], ["t"], ["x", "y", "z", "t"], ["x"]]
    ranks = np.array([1, 0, 3, 99])  # the target's rank in each (99: not in the list)
    mean = np.mean([ndcg_of_item(items, "t", k=10) for items in lists])
    assert math.isclose(mean, ranking_metrics(ranks, ks=(10,))["NDCG@10"])
