"""A shop snapshot: what a serving process needs to know about the shop, saved beside a model.

It maps external ids to dense ids, holds item popularity and categories (for the popularity tiers
and category filters) and each known user's most recent items (so a request may name only a user).
Saved as one ``snapshot.npz`` read without pickle; saved into a model folder, its digest joins the
folder's ``digests.json`` (:mod:`recdrill.digests`), so a load of the model checks it too.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from recdrill.data.dataset import Dataset
from recdrill.data.ragged import Ragged
from recdrill.digests import add_digest
from recdrill.errors import DataFormatError

SNAPSHOT_FILE = "snapshot.npz"
REFERENCE_REQUESTS = 2000


@dataclass(frozen=True)
class ShopSnapshot:
    """Ids, popularity, categories and recent histories of one shop.

    Example:
        >>> from recdrill.data.shopsim import ShopSim
        >>> shop = ShopSim(n_items=200, n_users=100, n_events=2000, seed=1).generate()
        >>> snap = ShopSnapshot.from_dataset(shop, history_length=5)
        >>> snap.item_index(["SKU-000003", "nope"]).tolist()
        [3, -1]
        >>> len(snap.histories.row(snap.user_index("U-000000")))
        5
    """

    item_ids: np.ndarray  # str [n_items]
    item_counts: np.ndarray  # int64 [n_items]
    item_category: np.ndarray  # int32 [n_items], -1 unknown
    category_names: tuple[str, ...]
    category_parent: np.ndarray  # int32 [n_categories], -1 top level
    user_ids: np.ndarray  # str [n_users]
    histories: Ragged  # each user's most recent items, oldest first
    item_price: np.ndarray | None = None  # float64 [n_items], NaN unknown; None: no prices at all
    # Histories as requests saw them during training (see ``event_histories``): the reference that
    # drift monitoring compares live requests with. None in snapshots saved before it existed.
    reference_histories: Ragged | None = None
    _item_order: np.ndarray = field(init=False, repr=False, compare=False)
    _user_order: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Sorted orders make id lookups a binary search rather than a scan per request.
        object.__setattr__(self, "_item_order", np.argsort(self.item_ids, kind="stable"))
        object.__setattr__(self, "_user_order", np.argsort(self.user_ids, kind="stable"))

    @classmethod
    def from_dataset(cls, dataset: Dataset, history_length: int = 50) -> ShopSnapshot:
        catalog = dataset.catalog
        no_category = np.full(dataset.n_items, -1, dtype=np.int32)
        return cls(
            item_ids=np.asarray(catalog.item_ids, dtype=str),
            item_counts=dataset.item_counts().astype(np.int64),
            item_category=no_category if catalog.category is None else catalog.category.astype(np.int32),
            category_names=catalog.category_names,
            category_parent=(
                np.full(len(catalog.category_names), -1, dtype=np.int32)
                if catalog.category_parent is None
                else catalog.category_parent.astype(np.int32)
            ),
            user_ids=np.asarray(dataset.user_ids, dtype=str),
            histories=dataset.sequences().last(history_length),
            item_price=None if catalog.price is None else np.asarray(catalog.price, dtype=np.float64),
            reference_histories=event_histories(dataset, REFERENCE_REQUESTS, history_length),
        )

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def item_index(self, item_ids: list[str]) -> np.ndarray:
        """Dense ids of the given external item ids; -1 for unknown ones."""
        return _lookup(self._item_order, self.item_ids, item_ids)

    def user_index(self, user_id: str) -> int:
        """Dense id of a user, or -1 if unknown."""
        return int(_lookup(self._user_order, self.user_ids, [user_id])[0])

    def category_items(self, name: str) -> np.ndarray | None:
        """Dense ids of the items in category ``name`` or any of its sub-categories; None if unknown."""
        if name not in self.category_names:
            return None
        wanted = self.category_names.index(name)
        level = self.item_category.copy()
        member = level == wanted
        # Walk up the tree so items of sub-categories count too.
        while np.any(level >= 0):
            level = np.where(level >= 0, self.category_parent[np.maximum(level, 0)], -1)
            member |= level == wanted
        return np.flatnonzero(member)

    def save(self, folder: str | Path) -> None:
        prices = {} if self.item_price is None else {"item_price": self.item_price}
        if self.reference_histories is not None:
            prices["reference_indptr"] = self.reference_histories.indptr
            prices["reference_values"] = self.reference_histories.values
        np.savez(
            Path(folder) / SNAPSHOT_FILE,
            allow_pickle=False,
            **prices,
            item_ids=self.item_ids,
            item_counts=self.item_counts,
            item_category=self.item_category,
            category_names=np.asarray(self.category_names, dtype=str),
            category_parent=self.category_parent,
            user_ids=self.user_ids,
            history_indptr=self.histories.indptr,
            history_values=self.histories.values,
        )
        add_digest(folder, SNAPSHOT_FILE)  # a model saved there first listed every file but this one

    @classmethod
    def load(cls, folder: str | Path) -> ShopSnapshot:
        path = Path(folder) / SNAPSHOT_FILE
        try:
            with path.open("rb") as handle, np.load(handle, allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}
            return cls(
                item_ids=arrays["item_ids"],
                item_counts=arrays["item_counts"],
                item_category=arrays["item_category"],
                category_names=tuple(str(n) for n in arrays["category_names"]),
                category_parent=arrays["category_parent"],
                user_ids=arrays["user_ids"],
                histories=Ragged(arrays["history_indptr"], arrays["history_values"]),
                item_price=arrays.get("item_price"),  # absent from snapshots saved before prices
                reference_histories=(
                    Ragged(arrays["reference_indptr"], arrays["reference_values"])
                    if "reference_indptr" in arrays
                    else None
                ),
            )
        except FileNotFoundError as exc:
            raise DataFormatError(path, "no shop snapshot: was the model saved by 'recdrill train'?") from exc
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
            raise DataFormatError(path, f"corrupt shop snapshot: {exc}") from exc


def event_histories(
    dataset: Dataset, n: int, history_length: int = 50, recent_share: float = 0.25, seed: int = 0
) -> Ragged:
    """What the history of a request looked like at up to ``n`` events of the last ``recent_share``
    of the timeline: each sampled event's user's items before it (its last ``history_length``).

    This, not each user's final history, is what live requests resemble: a request comes at some
    point of a user's life, after a varying number of items.

    Example:
        >>> from recdrill.data.shopsim import ShopSim
        >>> shop = ShopSim(n_items=200, n_users=100, n_events=2000, seed=1).generate()
        >>> rows = event_histories(shop, 50, history_length=5)
        >>> len(rows), int(rows.lengths.max()) <= 5, int(rows.lengths.min()) >= 1
        (50, True, True)
    """
    return histories_before(dataset, reference_events(dataset, n, recent_share, seed), history_length)


def reference_events(dataset: Dataset, n: int, recent_share: float = 0.25, seed: int = 0) -> np.ndarray:
    """Indices of up to ``n`` events, sampled from the last ``recent_share`` of the timeline among
    those with at least one earlier event of the same user (sorted)."""
    events = dataset.interactions
    if len(events) == 0:
        return np.zeros(0, dtype=np.int64)
    recent = events.timestamp >= np.quantile(events.timestamp, 1.0 - recent_share)
    candidates = np.flatnonzero(recent & (np.arange(len(events)) > _user_starts(events.user)))
    return np.sort(np.random.default_rng(seed).choice(candidates, min(n, len(candidates)), replace=False))


def histories_before(dataset: Dataset, events: np.ndarray, history_length: int = 50) -> Ragged:
    """Per event index, its user's last ``history_length`` items before it (dense item ids)."""
    interactions = dataset.interactions
    events = np.asarray(events, dtype=np.int64)
    starts = np.maximum(_user_starts(interactions.user)[events], events - history_length)
    lengths = events - starts
    indptr = np.zeros(len(events) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    offsets = np.repeat(starts - indptr[:-1], lengths) + np.arange(indptr[-1])
    return Ragged(indptr, interactions.item[offsets].astype(np.int32))


def _user_starts(user: np.ndarray) -> np.ndarray:
    """Per event, the index of its user's first event (interactions are sorted by user, then time)."""
    return np.searchsorted(user, user, side="left")


def _lookup(order: np.ndarray, ids: np.ndarray, wanted: list[str]) -> np.ndarray:
    if len(ids) == 0 or not wanted:
        return np.full(len(wanted), -1, dtype=np.int64)
    query = np.asarray(wanted, dtype=str)
    position = np.searchsorted(ids, query, sorter=order)
    position = np.minimum(position, len(ids) - 1)
    found = order[position]
    return np.where(ids[found] == query, found, -1).astype(np.int64)
