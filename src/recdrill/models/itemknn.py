"""Sequence-aware item-to-item recommender (ItemKNN over co-occurrence within a window).

Two items are similar when they appear close together in users' histories. Pairs ``window`` or
fewer steps apart count ``1 / distance``; an item followed by another counts fully, the reverse
direction counts ``backward_weight`` (next-item prediction cares most about what comes after).
Similarities are normalised asymmetric-cosine style with a shrinkage term and pruned to each item's
``neighbours`` strongest. A history scores items by the similarity of its last ``history_length``
items, weighted ``recency_decay ** age`` (age 0 = last item), plus a tiny popularity prior that
orders items no neighbour reaches.

The defaults were chosen on the VALIDATION fold of Amazon Beauty (leave-one-out, full ranking):
NDCG@10 0.0616 with window 3, backward 0.5, alpha 0.5, shrink 10; 0.0675 with the defaults below
(``benchmarks/bench_baselines.py`` reruns the comparison on Beauty and Toys).
"""

from __future__ import annotations

from typing import ClassVar, Self

import numpy as np
import scipy.sparse as sp

from recdrill._params import validate_params
from recdrill.data.dataset import Dataset
from recdrill.data.ragged import Ragged
from recdrill.models.base import BaseRecommender, csr_from_state, csr_to_state

_POPULARITY_PRIOR = 1e-6


class ItemKNNRecommender(BaseRecommender):
    """Item-to-item neighbours learned from sequence co-occurrence.

    Parameters:
        neighbours: similar items kept per item.
        window: largest step distance at which two items of a history count as co-occurring.
        backward_weight: weight of "b came before a" relative to "a came before b" (0..1).
        alpha: asymmetric-cosine exponent: ``sim(a, b) = c(a, b) / (n(a)^alpha * n(b)^(1-alpha) + shrink)``.
        shrink: damps similarities supported by few co-occurrences.
        history_length: how many of the most recent history items vote.
        recency_decay: weight multiplier per step back in the history (0..1].

    Example:
        >>> from recdrill.data.shopsim import ShopSim
        >>> shop = ShopSim(n_items=200, n_users=100, n_events=3000, seed=1).generate()
        >>> model = ItemKNNRecommender(neighbours=20).fit(shop)
        >>> model.recommend([[0, 1]], k=5).items.shape
        (1, 5)
    """

    kind: ClassVar[str] = "itemknn"
    similarity_: sp.csr_matrix  # [n_items, n_items], row a: items b scored by a
    share_: np.ndarray

    def __init__(
        self,
        neighbours: int = 100,
        window: int = 5,
        backward_weight: float = 0.2,
        alpha: float = 0.7,
        shrink: float = 50.0,
        history_length: int = 5,
        recency_decay: float = 0.6,
    ) -> None:
        self.neighbours = neighbours
        self.window = window
        self.backward_weight = backward_weight
        self.alpha = alpha
        self.shrink = shrink
        self.history_length = history_length
        self.recency_decay = recency_decay

    def _validate_params(self) -> None:
        checks = {
            "neighbours": (
                self.neighbours,
                isinstance(self.neighbours, int) and self.neighbours >= 1,
                "an int >= 1",
            ),
            "window": (self.window, isinstance(self.window, int) and self.window >= 1, "an int >= 1"),
            "backward_weight": (self.backward_weight, 0.0 <= self.backward_weight <= 1.0, "in [0, 1]"),
            "alpha": (self.alpha, 0.0 <= self.alpha <= 1.0, "in [0, 1]"),
            "shrink": (self.shrink, self.shrink >= 0.0, ">= 0"),
            "history_length": (
                self.history_length,
                isinstance(self.history_length, int) and self.history_length >= 1,
                "an int >= 1",
            ),
            "recency_decay": (self.recency_decay, 0.0 < self.recency_decay <= 1.0, "in (0, 1]"),
        }
        validate_params("ItemKNNRecommender", checks)

    def _fit(self, dataset: Dataset) -> None:
        self._learn(dataset.sequences(), dataset.n_items)

    def fit_sequences(self, sequences: Ragged, n_items: int) -> Self:
        """Fit on item sequences alone, for a model that holds this one as a part of itself (the
        Transformer's next-item mix): no catalogue fingerprint is recorded, so save the holder."""
        self.n_items_ = n_items
        self._learn(sequences, n_items)
        return self

    def _learn(self, sequences: Ragged, n: int) -> None:
        self._validate_params()
        items, rows = sequences.values.astype(np.int64), sequences.row_ids
        sources, targets, weights = [], [], []
        for distance in range(1, self.window + 1):
            same_user = rows[:-distance] == rows[distance:]
            before, after = items[:-distance][same_user], items[distance:][same_user]
            differ = before != after
            before, after = before[differ], after[differ]
            sources += [before, after]
            targets += [after, before]
            forward = np.full(len(before), 1.0 / distance, dtype=np.float32)
            weights += [forward, forward * np.float32(self.backward_weight)]
        pairs = sp.coo_matrix(
            (np.concatenate(weights), (np.concatenate(sources), np.concatenate(targets))), shape=(n, n)
        )
        pairs.sum_duplicates()  # one entry per (a, b): the summed co-occurrence weight
        rows, cols = pairs.row.astype(np.int64), pairs.col.astype(np.int64)
        counts = np.bincount(items, minlength=n).astype(np.float64)
        self.share_ = (counts / max(counts.sum(), 1.0)).astype(np.float32)
        norm = np.power(counts[rows], self.alpha) * np.power(counts[cols], 1.0 - self.alpha) + self.shrink
        similarity = sp.csr_matrix(((pairs.data / norm).astype(np.float32), (rows, cols)), shape=(n, n))
        self.similarity_ = _keep_top_per_row(similarity, self.neighbours)

    def _score(self, histories: Ragged) -> np.ndarray:
        recent = histories.last(self.history_length)
        # Age 0 is the last item of each row.
        age = (np.repeat(recent.indptr[1:], recent.lengths) - 1 - np.arange(len(recent.values))).astype(
            np.float32
        )
        weights = np.float32(self.recency_decay) ** age
        votes = sp.csr_matrix((weights, recent.values, recent.indptr), shape=(len(recent), self.n_items_))
        scores = np.asarray((votes @ self.similarity_).todense(), dtype=np.float32)
        scores += np.float32(_POPULARITY_PRIOR) * self.share_[None, :]
        return scores

    def _state(self) -> dict[str, np.ndarray]:
        return {"share": self.share_, **csr_to_state("similarity", self.similarity_)}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.share_ = state["share"]
        self.similarity_ = csr_from_state("similarity", state)


def _keep_top_per_row(matrix: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Each row's ``k`` largest entries (ties by column), vectorised over all rows."""
    matrix = matrix.tocsr()
    matrix.sort_indices()
    rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    order = np.lexsort((matrix.indices, -matrix.data, rows))
    position = np.arange(len(order)) - matrix.indptr[rows[order]]
    keep = order[position < k]
    kept = sp.csr_matrix((matrix.data[keep], (rows[keep], matrix.indices[keep])), shape=matrix.shape)
    kept.sort_indices()
    return kept
