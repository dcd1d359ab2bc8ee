"""The features live monitoring watches, computed the same way for the training reference and for
served traffic, vectorised over a batch of requests.

Request features (one value per request unless said):
    history_length: items in the history the model saw (numeric).
    history_popularity: mean log(1 + training count) of the history's items (numeric): a shift
        toward new or niche items, or toward a few hits.
    history_category: category of the history's last item (categorical): the category mix
        of what users look at now (taste shift, seasons). One value per request, not per item: a
        user's items share their owner's tastes, so per-item values of a few dozen requests would
        look like drift whenever those few users are unusual.
    history_log_price: mean log catalogue price of the history's items (numeric; shops with prices;
        logs because prices move by factors, and a few luxury items would dominate a raw scale).
    unknown_items: ``known``/``unknown`` per item id the client sent (categorical): a cold-start
        flood of new items or junk ids.
    user_kind: ``known``, ``unknown`` or ``anonymous`` per request (categorical): new users.
Model outputs:
    rec_category: category of the first recommended item (categorical): what we push.
    top_score: the first item's score, primary tier only (numeric; tiers score on other scales).
Feedback (``feedback_features``):
    feedback_event: event type per event (categorical): click-through and conversion mix.
    feedback_log_price: log of the price the user saw, when the client sends it (numeric): price
        shocks.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from recdrill.data.ragged import Ragged
from recdrill.data.snapshot import ShopSnapshot

CATEGORICAL_FEATURES = frozenset(
    {"history_category", "unknown_items", "user_kind", "rec_category", "feedback_event"}
)
PRICE_FLOOR = 0.01  # a free item's log price would be -inf


def item_categories(snapshot: ShopSnapshot) -> np.ndarray:
    """The category each item is watched under (-1 unknown): its own (leaf) category. Top-level
    categories are too few to show a change of taste between their sub-categories."""
    return snapshot.item_category.astype(np.int64)


def history_features(
    histories: Ragged, snapshot: ShopSnapshot, top_category: np.ndarray
) -> dict[str, np.ndarray]:
    """The history features of a batch of requests (``histories`` in the snapshot's dense ids)."""
    lengths = histories.lengths
    rows = lengths > 0
    log_counts = np.log1p(snapshot.item_counts[histories.values].astype(np.float64))
    features: dict[str, np.ndarray] = {
        "history_length": lengths.astype(np.float64),
        "history_popularity": _row_means(log_counts, histories)[rows],
        "history_category": top_category[histories.values[histories.indptr[1:][rows] - 1]],
    }
    if snapshot.item_price is not None:
        prices = np.log(np.maximum(snapshot.item_price[histories.values], PRICE_FLOOR))
        known = ~np.isnan(prices)
        totals = np.bincount(histories.row_ids, np.where(known, prices, 0.0), len(histories))
        counts = np.bincount(histories.row_ids, known, len(histories))
        priced = counts > 0
        features["history_log_price"] = totals[priced] / counts[priced]
    return features


def request_features(
    histories: Ragged,
    snapshot: ShopSnapshot,
    top_category: np.ndarray,
    *,
    given: np.ndarray,
    unknown: np.ndarray,
    user_known: Sequence[bool | None],
    items: Ragged,
    top_scores: np.ndarray,
) -> dict[str, np.ndarray]:
    """All request and output features of a batch of served requests.

    ``given``/``unknown`` count the ids each client sent and those unknown; ``top_scores`` holds the
    first score of the primary tier's answers only.
    """
    features = history_features(histories, snapshot, top_category)
    n_known = int(given.sum() - unknown.sum())
    features["unknown_items"] = np.repeat(np.array(["known", "unknown"]), [n_known, int(unknown.sum())])
    kinds = np.array(["anonymous", "known", "unknown"])
    codes = np.array([0 if k is None else (1 if k else 2) for k in user_known], dtype=np.int64)
    features["user_kind"] = kinds[codes]
    firsts = items.indptr[:-1][items.lengths > 0]
    features["rec_category"] = top_category[items.values[firsts]]
    features["top_score"] = np.asarray(top_scores, dtype=np.float64)
    return features


def feedback_features(events: Sequence[str], prices: Sequence[float | None]) -> dict[str, np.ndarray]:
    """The feedback features of a batch of committed events."""
    shown = np.array([np.nan if p is None else p for p in prices], dtype=np.float64)
    shown = np.log(np.maximum(shown[~np.isnan(shown)], PRICE_FLOOR))
    return {"feedback_event": np.asarray(events, dtype=str), "feedback_log_price": shown}


def _row_means(values: np.ndarray, rows: Ragged) -> np.ndarray:
    counts = rows.lengths
    sums = np.bincount(rows.row_ids, values, len(rows))
    means: np.ndarray = np.divide(sums, counts, out=np.zeros(len(rows)), where=counts > 0)
    return means
