"""The data of an automatic drift response: recent events aligned with the training data, and the
time split into a fine-tuning part and a held-out recent slice.

The held-out slice: with ``split_time`` the point after which the last ``holdout_share`` of the
recent window's events lie, every event at or after it is one target, and the model is shown
everything its user did before that event (training data, fine-tuning part, earlier held-out
events) and ranks all items, history excluded, as the published protocol does. Counting every
held-out event, not only each user's first (``recdrill.data.splits.time_split``), gives about five
times the targets, so a few percent of NDCG@10 can be told from noise. Nothing at or after
``split_time`` reaches the candidate's training data, so neither its weights nor its checkpoint
selection (SASRec validates on the last items of the data it is given) can see a held-out item.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recdrill.data.dataset import Dataset, Interactions
from recdrill.data.ragged import Ragged
from recdrill.data.splits import EvalFold
from recdrill.errors import ConfigError


@dataclass(frozen=True)
class RecentWindow:
    """Training plus recent events, split by time for fine-tuning and for the comparison.

    Attributes:
        fine_tune_data: everything before ``split_time`` (training data and the recent events
            before it), over the training catalogue.
        held_out: every event at or after ``split_time`` (of a user with an earlier event), with
            its user's history before it; never part of ``fine_tune_data``.
        recent_rows: mask over ``fine_tune_data``'s interactions: True for the recent ones.
        combined: every event used, held-out ones included (up to ``now``): the freshest histories,
            for the snapshot a server keeps beside the candidate, never for training.
        window_start, split_time, now: the window ``[window_start, now]`` and its split (epoch s).
        n_recent: recent events inside the window; ``n_fine_tune`` of them before ``split_time``.
        n_dropped: recent events left out because their item is not in the training catalogue.
    """

    fine_tune_data: Dataset
    held_out: EvalFold
    recent_rows: np.ndarray
    combined: Dataset
    window_start: int
    split_time: int
    now: int
    n_recent: int
    n_fine_tune: int
    n_dropped: int


def align_recent(training: Dataset, recent: Dataset) -> tuple[Dataset, np.ndarray, int]:
    """``training`` and ``recent`` as one dataset over the training catalogue.

    Items and users are matched by their external ids (a feedback export carries strings: item ids
    as the catalogue has them, user pseudonyms); users new to the training data are appended.
    An event in both (same user, item and second) is counted once, as a recent event: training data
    that already holds the recent events (a whole shop) then gives the same window as one that does not.

    Returns:
        The combined dataset, a mask of its recent interactions, and how many recent events were
        dropped because their item is not in the training catalogue.

    Example:
        >>> from recdrill.data.shopsim import ShopSim
        >>> shop = ShopSim(n_items=200, n_users=100, n_events=3000, seed=1).generate()
        >>> late = shop.interactions.timestamp >= np.quantile(shop.interactions.timestamp, 0.9)
        >>> both, is_recent, dropped = align_recent(
        ...     shop.with_interactions(shop.interactions.select(~late)),
        ...     shop.with_interactions(shop.interactions.select(late)))
        >>> len(both.interactions) == len(shop.interactions), int(is_recent.sum()) == int(late.sum()), dropped
        (True, True, 0)
    """
    item_index = pd.Index(training.catalog.item_ids.astype(str))
    if not item_index.is_unique:
        raise ConfigError(f"{training.name}: item ids are not unique, recent events cannot be matched")
    items = item_index.get_indexer(recent.catalog.item_ids.astype(str))[recent.interactions.item]
    known = items >= 0
    n_dropped = int(np.count_nonzero(~known))
    users_known = pd.Index(training.user_ids.astype(str))
    recent_user_ids = recent.user_ids.astype(str)
    new_ids = pd.Index(recent_user_ids).difference(users_known)
    all_users = users_known.append(new_ids)
    users = all_users.get_indexer(recent_user_ids)[recent.interactions.user]
    picked = recent.interactions.select(known)
    old = training.interactions
    columns = {
        "user": np.concatenate([old.user, users[known]]),
        "item": np.concatenate([old.item, items[known]]),
        "timestamp": np.concatenate([old.timestamp, picked.timestamp]),
        "event": np.concatenate([old.event, picked.event]),
    }
    is_recent = np.concatenate([np.zeros(len(old), dtype=bool), np.ones(len(picked), dtype=bool)])
    frame = pd.DataFrame({k: columns[k] for k in ("user", "item", "timestamp")})
    keep = ~frame.duplicated(keep="last").to_numpy()  # an event in both is kept as a recent one
    price = None
    if old.price is not None:
        recent_price = picked.price if picked.price is not None else np.full(len(picked), np.nan)
        price = np.concatenate([old.price, recent_price])[keep]
    merged = Interactions(
        columns["user"][keep],
        columns["item"][keep],
        columns["timestamp"][keep],
        columns["event"][keep],
        price=price,
    )
    # Dataset.create sorts by (user, time); carry the recent mask through that order.
    marker = Interactions(merged.user, merged.item, merged.timestamp, is_recent[keep].astype(np.int8))
    user_ids = np.asarray(all_users, dtype=object)
    combined = Dataset.create(training.name, user_ids, training.catalog, merged, has_time=True)
    order = Dataset.create(training.name, user_ids, training.catalog, marker, has_time=True)
    return combined, order.interactions.event.astype(bool), n_dropped


def split_recent(
    training: Dataset, recent: Dataset, *, now: float | None, window_s: float, holdout_share: float
) -> RecentWindow:
    """Align ``recent`` with ``training`` and split its window ``[now - window_s, now]`` by time.

    ``now`` defaults to the last recent event's time. Recent events outside the window are unused.

    Raises:
        ConfigError: the window holds no recent event, or too few distinct seconds to split.
    """
    combined, is_recent, n_dropped = align_recent(training, recent)
    stamps = combined.interactions.timestamp
    end = int(now) if now is not None else int(stamps[is_recent].max(initial=0))
    start = int(end - window_s)
    in_window = is_recent & (stamps >= start) & (stamps <= end)
    if not in_window.any():
        raise ConfigError(f"no recent event lies in the window [{start}, {end}] (recent_window_s={window_s})")
    split = int(np.ceil(np.quantile(stamps[in_window], 1.0 - holdout_share)))
    # Events after ``now`` and recent events before the window take no part.
    used = (stamps <= end) & (~is_recent | in_window)
    kept = combined.with_interactions(combined.interactions.select(used))
    kept_recent = is_recent[used]
    kept_stamps = stamps[used]
    if not kept_stamps.min() < split <= kept_stamps.max():
        raise ConfigError("the recent window spans too little time to hold out its last events")
    fold = held_out_fold(kept, split)
    before = kept_stamps < split
    return RecentWindow(
        fine_tune_data=fold.fit_data,
        held_out=fold,
        recent_rows=kept_recent[before],
        combined=kept,
        window_start=start,
        split_time=split,
        now=end,
        n_recent=int(np.count_nonzero(in_window)),
        n_fine_tune=int(np.count_nonzero(kept_recent & before)),
        n_dropped=n_dropped,
    )


def held_out_fold(data: Dataset, split: int) -> EvalFold:
    """Every event of ``data`` at or after ``split`` as a target, shown its user's history before it.

    ``fit_data`` is everything before ``split``. Events with no earlier event of their user (nothing
    to recommend from) are left out.

    Example:
        >>> from recdrill.data.shopsim import ShopSim
        >>> shop = ShopSim(n_items=200, n_users=100, n_events=3000, seed=1).generate()
        >>> split = int(np.quantile(shop.interactions.timestamp, 0.9))
        >>> fold = held_out_fold(shop, split)
        >>> int(fold.fit_data.interactions.timestamp.max()) < split, len(fold) > 250
        (True, True)
    """
    inter = data.interactions
    sequences = data.sequences()  # values in the interactions' (user, time) order
    rows = np.flatnonzero(inter.timestamp >= split)
    starts = sequences.indptr[inter.user[rows]]
    has_history = rows > starts
    rows, starts = rows[has_history], starts[has_history]
    lengths = rows - starts
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    offsets = np.repeat(starts - indptr[:-1], lengths) + np.arange(indptr[-1])
    histories = Ragged(indptr, sequences.values[offsets])
    fit_data = data.with_interactions(inter.select(inter.timestamp < split))
    users = inter.user[rows].astype(np.int64)
    return EvalFold("held-out", fit_data, users, histories, inter.item[rows].astype(np.int32))


def recent_weighted(data: Dataset, recent_rows: np.ndarray, weight: int) -> Dataset:
    """``data`` with its recent events counted ``weight`` times, for models that can only refit.

    Each extra copy is the recent events of every user under a new user id (``<id>#recent<k>``), so
    co-occurrence and popularity counts lean toward what the shop does now, while a user's
    sequence keeps its order. ``weight=1`` returns ``data`` unchanged.
    """
    if weight <= 1 or not recent_rows.any():
        return data
    inter = data.interactions
    recent = inter.select(recent_rows)
    users, local = np.unique(recent.user, return_inverse=True)
    parts, ids = [inter], [data.user_ids]
    for copy in range(1, weight):
        offset = data.n_users + (copy - 1) * len(users)
        parts.append(
            Interactions(local + offset, recent.item, recent.timestamp, recent.event, price=recent.price)
        )
        ids.append(np.array([f"{data.user_ids[u]}#recent{copy}" for u in users], dtype=object))
    merged = Interactions(
        np.concatenate([p.user for p in parts]),
        np.concatenate([p.item for p in parts]),
        np.concatenate([p.timestamp for p in parts]),
        np.concatenate([p.event for p in parts]),
        price=None
        if inter.price is None
        else np.concatenate([p.price for p in parts if p.price is not None]),
    )
    return Dataset.create(data.name, np.concatenate(ids), data.catalog, merged, has_time=data.has_time)
