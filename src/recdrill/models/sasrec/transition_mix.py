"""Mixing the Transformer's next-item distribution with an item-to-item model's.

The Transformer ranks well overall (higher HR@10) while the sequence-aware item-to-item model
(:class:`recdrill.models.itemknn.ItemKNNRecommender`) is sharper at the very top when the next item
follows the last one closely; on Amazon Toys the item-to-item model alone reaches a higher NDCG@10
than a Transformer trained with care. A mixture of the two next-item distributions keeps both:

    p(i | history) = (1 - w) * softmax(transformer logits)_i + w * knn(i) / sum_j knn(j)

The weight ``w`` is chosen on the validation users the Transformer already early-stops on, never on
test data. Scores are returned as log-probabilities, finite even where one part gives 0.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from recdrill.data.ragged import Ragged
from recdrill.data.splits import EvalFold
from recdrill.eval.metrics import ranking_metrics
from recdrill.eval.ranking import exclude, target_ranks

MIX_GRID = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
Scores = Callable[[Ragged], np.ndarray]


def mix_scores(logits: np.ndarray, transitions: np.ndarray, weight: float) -> np.ndarray:
    """Log of the mixture of ``softmax(logits)`` and ``transitions`` normalised per row (float32).

    Example:
        >>> out = mix_scores(np.array([[0.0, 0.0, 10.0]]), np.array([[1.0, 0.0, 0.0]]), 0.5)
        >>> np.exp(out).round(3).tolist()
        [[0.5, 0.0, 0.5]]
    """
    if weight <= 0:
        return np.asarray(logits, dtype=np.float32)
    totals = transitions.sum(axis=1, keepdims=True, dtype=np.float64)
    # A row the item-to-item part cannot score at all keeps the network's distribution whole.
    weights = np.where(totals > 0, weight, 0.0)
    model_part = _log_softmax(np.asarray(logits, dtype=np.float64)) + np.log1p(-weights)
    with np.errstate(divide="ignore"):  # items no neighbour reaches: log 0, the model part remains
        item_part = np.log(transitions / np.maximum(totals, 1e-300)) + np.log(weights)
    mixed: np.ndarray = np.logaddexp(model_part, item_part).astype(np.float32)
    return mixed


def choose_weight(
    model_scores: Scores,
    transition_scores: Scores,
    fold: EvalFold,
    grid: tuple[float, ...] = MIX_GRID,
    batch_size: int = 1024,
) -> tuple[float, dict[float, float]]:
    """The grid weight with the best NDCG@10 on ``fold`` (ties: the smaller weight), and every
    weight's NDCG@10. Each part scores each user once; the weights reuse those scores."""
    ranks = {w: np.empty(len(fold), dtype=np.int64) for w in grid}
    for start in range(0, len(fold), batch_size):
        rows = np.arange(start, min(start + batch_size, len(fold)))
        histories = fold.histories.take(rows)
        logits, transitions = model_scores(histories), transition_scores(histories)
        for weight in grid:
            scores = mix_scores(logits, transitions, weight)
            exclude(scores, histories)
            ranks[weight][rows] = target_ranks(scores, fold.targets[rows])
    ndcg = {w: ranking_metrics(r, ks=(10,))["NDCG@10"] for w, r in ranks.items()}
    best = max(grid, key=lambda w: (ndcg[w], -w))
    return best, ndcg


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    out: np.ndarray = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return out
