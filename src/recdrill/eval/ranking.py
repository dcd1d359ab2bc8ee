"""Ranks and top-k lists from score matrices, with one tie-breaking rule everywhere.

Ties are broken by item index (lower index first), so the rank a metric counts and the position of
the item in a served top-k list always agree. Excluded items carry ``-inf``.
"""

from __future__ import annotations

import numpy as np

from recdrill.data.ragged import Ragged
from recdrill.errors import ModelError


def exclude(scores: np.ndarray, histories: Ragged) -> np.ndarray:
    """Set each row's history items to ``-inf`` in place and return ``scores``."""
    scores[histories.row_ids, histories.values] = -np.inf
    return scores


def validate_scores(scores: np.ndarray, n_rows: int, n_items: int) -> None:
    """Raise :class:`ModelError` unless scores are a ``[n_rows, n_items]`` matrix with no NaN or +inf.

    NaN compared with ``>`` is silently never greater, which would rank a NaN target first.
    """
    if scores.shape != (n_rows, n_items):
        raise ModelError(f"model returned scores of shape {scores.shape}, expected {(n_rows, n_items)}")
    # max() propagates NaN, so one reduction catches both NaN and +inf on the common, clean path.
    if scores.size and not scores.max() < np.inf:
        bad = np.isnan(scores) | np.isposinf(scores)
        rows = int(np.count_nonzero(bad.any(axis=1)))
        raise ModelError(f"model returned NaN or +inf scores for {rows} of {n_rows} users")


def target_ranks(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """0-based rank of each row's target among all items (0 = first).

    Example:
        >>> target_ranks(np.array([[0.1, 0.9, 0.5], [1.0, 1.0, 0.0]]), np.array([2, 1])).tolist()
        [1, 1]
    """
    rows = np.arange(len(targets))
    target_scores = scores[rows, targets][:, None]
    higher = np.count_nonzero(scores > target_scores, axis=1)
    tied_before = np.count_nonzero(
        (scores == target_scores) & (np.arange(scores.shape[1]) < targets[:, None]), axis=1
    )
    ranks: np.ndarray = (higher + tied_before).astype(np.int64)
    return ranks


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and scores of each row's ``k`` best items, best first, ties by lower index.

    Runs as a partition plus a few linear passes per row, not a full sort; only rows whose tied
    scores straddle the k-th place take a slower exact path.

    Example:
        >>> idx, val = top_k(np.array([[0.2, 0.9, 0.9, 0.1], [0.5, 0.5, 0.5, 0.6]]), 2)
        >>> idx.tolist(), val.tolist()
        ([[1, 2], [3, 0]], [[0.9, 0.9], [0.6, 0.5]])
    """
    n_rows, n_items = scores.shape
    k = min(k, n_items)
    if k <= 0 or n_rows == 0:
        return np.zeros((n_rows, 0), dtype=np.int64), np.zeros((n_rows, 0), dtype=scores.dtype)
    index = np.argpartition(scores, n_items - k, axis=1)[:, n_items - k :]
    threshold = np.take_along_axis(scores, index, axis=1).min(axis=1, keepdims=True)
    n_tied = np.count_nonzero(scores == threshold, axis=1)
    n_above = np.count_nonzero(scores > threshold, axis=1)
    ambiguous = np.flatnonzero(n_above + n_tied > k)
    if len(ambiguous):
        # Keep the lowest-indexed of the tied items, as target_ranks counts them.
        sub, limit = scores[ambiguous], threshold[ambiguous]
        above_rows, above_cols = np.nonzero(sub > limit)
        tied_rows, tied_cols = np.nonzero(sub == limit)  # row-major: ascending index within a row
        first_tied = np.searchsorted(tied_rows, np.arange(len(ambiguous)))
        keep = np.arange(len(tied_rows)) - first_tied[tied_rows] < (k - n_above[ambiguous])[tied_rows]
        rows = np.concatenate([above_rows, tied_rows[keep]])
        cols = np.concatenate([above_cols, tied_cols[keep]])
        index[ambiguous] = cols[np.argsort(rows, kind="stable")].reshape(len(ambiguous), k)
    values = np.take_along_axis(scores, index, axis=1)
    order = np.lexsort((index, -values), axis=1)
    return np.take_along_axis(index, order, axis=1), np.take_along_axis(values, order, axis=1)
