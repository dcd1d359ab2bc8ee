"""Ranking metrics under the published protocol, plus catalogue coverage and popularity bias."""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence

import numpy as np

DEFAULT_KS = (5, 10, 20)


def ndcg_of_item(items: Sequence[Hashable], item: Hashable, k: int = 10) -> float:
    """NDCG@k of one list against its one relevant ``item``: ``1 / log2(rank + 2)`` for its 0-based
    ``rank`` in the top ``k``, else 0 (the ideal list has it first, with gain 1). The same value
    :func:`ranking_metrics` averages, for one list served live (a canary arm, a drill's request).

    Example:
        >>> served = ["a", "b", "c"]
        >>> ndcg_of_item(served, "b"), ndcg_of_item(served, "z"), ndcg_of_item(served, "b", k=1)
        (0.6309297535714575, 0.0, 0.0)
    """
    top = list(items[:k])
    return 1.0 / math.log2(top.index(item) + 2) if item in top else 0.0


def ranking_metrics(ranks: np.ndarray, ks: tuple[int, ...] = DEFAULT_KS) -> dict[str, float]:
    """HR@k, NDCG@k for each k, and MRR, from 0-based target ranks (one target per user).

    With one relevant item, NDCG@k is ``1 / log2(rank + 2)`` when ``rank < k``, else 0.

    Example:
        >>> m = ranking_metrics(np.array([0, 3, 50]), ks=(5,))
        >>> round(m["HR@5"], 4), round(m["NDCG@5"], 4), round(m["MRR"], 4)
        (0.6667, 0.4769, 0.4232)
    """
    ranks = np.asarray(ranks, dtype=np.float64)
    if len(ranks) == 0:
        return {**{f"{name}@{k}": 0.0 for k in ks for name in ("HR", "NDCG")}, "MRR": 0.0}
    gains = 1.0 / np.log2(ranks + 2.0)
    out: dict[str, float] = {}
    for k in ks:
        hit = ranks < k
        out[f"HR@{k}"] = float(hit.mean())
        out[f"NDCG@{k}"] = float(np.where(hit, gains, 0.0).mean())
    out["MRR"] = float((1.0 / (ranks + 1.0)).mean())
    return out


def catalog_coverage(recommended: np.ndarray, n_items: int) -> float:
    """Share of the catalogue that appears in at least one recommended list."""
    if n_items == 0:
        return 0.0
    return float(len(np.unique(recommended[recommended >= 0])) / n_items)


def popularity_percentiles(item_counts: np.ndarray) -> np.ndarray:
    """Each item's popularity percentile in [0, 1] (1 = most popular; ties share the mean rank)."""
    order = np.argsort(item_counts, kind="stable")
    ranks = np.empty(len(item_counts), dtype=np.float64)
    ranks[order] = np.arange(len(item_counts), dtype=np.float64)
    # Average ranks over ties so equal counts get equal percentiles.
    inverse = np.unique(item_counts, return_inverse=True)[1]
    mean_rank = np.bincount(inverse, weights=ranks) / np.bincount(inverse)
    return mean_rank[inverse] / max(len(item_counts) - 1, 1)


def popularity_bias(recommended: np.ndarray, item_counts: np.ndarray) -> float:
    """Mean popularity percentile of recommended items (0.5 = unbiased, near 1 = only hits)."""
    valid = recommended[recommended >= 0]
    if len(valid) == 0:
        return 0.0
    return float(popularity_percentiles(item_counts)[valid].mean())
