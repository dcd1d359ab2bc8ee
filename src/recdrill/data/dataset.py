"""The shop dataset: users, a product catalogue and time-ordered interactions.

Everything is held as numpy columns indexed by dense integer ids (``0..n-1``); the external ids
(strings as they appear in the source) are kept alongside so results can be mapped back.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from enum import IntEnum

import numpy as np

from recdrill.data.quality import DataQualityReport
from recdrill.data.ragged import Ragged


class EventType(IntEnum):
    """What a user did with an item; larger is a stronger signal."""

    VIEW = 0
    CLICK = 1
    CART = 2
    PURCHASE = 3


class Relevance(IntEnum):
    """Graded relevance of an item to a search query (ESCI-style, simplified)."""

    IRRELEVANT = 0
    PARTIAL = 1
    EXACT = 2


def _check_length(name: str, column: np.ndarray | None, n: int) -> None:
    if column is not None and len(column) != n:
        raise ValueError(f"column {name!r} has {len(column)} rows, expected {n}")


@dataclass(frozen=True)
class Catalog:
    """Products. Only ``item_ids`` is required; every other column may be ``None``.

    ``category`` and ``brand`` index into ``category_names``/``brand_names`` (-1 = unknown);
    ``category_parent`` gives each category's parent category (-1 = top level), making a tree;
    ``price`` is NaN where unknown; ``attributes`` holds attribute ids per item (brand/category ids
    of the Amazon data, or any other tags).
    """

    item_ids: np.ndarray
    title: np.ndarray | None = None
    category: np.ndarray | None = None
    category_names: tuple[str, ...] = ()
    category_parent: np.ndarray | None = None
    brand: np.ndarray | None = None
    brand_names: tuple[str, ...] = ()
    price: np.ndarray | None = None
    attributes: Ragged | None = None

    def __post_init__(self) -> None:
        n = len(self.item_ids)
        for name in ("title", "category", "brand", "price"):
            _check_length(name, getattr(self, name), n)
        if self.attributes is not None and len(self.attributes) != n:
            raise ValueError(f"attributes has {len(self.attributes)} rows, expected {n}")
        if self.category_parent is not None and len(self.category_parent) != len(self.category_names):
            raise ValueError("category_parent must have one entry per category name")

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def item_groups(self) -> Ragged | None:
        """Groups each item belongs to, for per-group models: its category (and the category's
        ancestors) when known, else its attribute ids, else ``None``."""
        if self.category is not None:
            groups: list[np.ndarray] = []
            item_index = np.arange(self.n_items)
            known = self.category >= 0
            level = np.where(known, self.category, -1)
            while np.any(level >= 0):
                has = level >= 0
                groups.append(np.stack([item_index[has], level[has]], axis=1))
                if self.category_parent is None:
                    break
                level = np.where(has, self.category_parent[np.maximum(level, 0)], -1)
            pairs = np.concatenate(groups) if groups else np.zeros((0, 2), dtype=np.int64)
            order = np.lexsort((pairs[:, 1], pairs[:, 0]))
            pairs = pairs[order]
            return Ragged.from_groups(pairs[:, 0], pairs[:, 1], self.n_items)
        return self.attributes


@dataclass(frozen=True)
class Interactions:
    """Events as parallel columns, sorted by user, then time, then source order.

    ``timestamp`` is seconds since the epoch, or the position in the user's sequence for sources
    without time (then ``Dataset.has_time`` is False). ``query`` indexes ``Dataset.queries``
    (-1 = not from a search); ``price`` is the price paid/shown at the time (NaN = unknown).
    """

    user: np.ndarray
    item: np.ndarray
    timestamp: np.ndarray
    event: np.ndarray
    query: np.ndarray | None = None
    price: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.user)
        for name in ("item", "timestamp", "event", "query", "price"):
            _check_length(name, getattr(self, name), n)

    def __len__(self) -> int:
        return len(self.user)

    def select(self, mask_or_index: np.ndarray) -> Interactions:
        def pick(column: np.ndarray | None) -> np.ndarray | None:
            return None if column is None else column[mask_or_index]

        return Interactions(
            user=self.user[mask_or_index],
            item=self.item[mask_or_index],
            timestamp=self.timestamp[mask_or_index],
            event=self.event[mask_or_index],
            query=pick(self.query),
            price=pick(self.price),
        )


@dataclass(frozen=True)
class Judgements:
    """Graded relevance labels for search: (query, item, grade) rows."""

    query: np.ndarray
    item: np.ndarray
    grade: np.ndarray

    def __post_init__(self) -> None:
        _check_length("item", self.item, len(self.query))
        _check_length("grade", self.grade, len(self.query))

    def __len__(self) -> int:
        return len(self.query)


@dataclass(frozen=True)
class Dataset:
    """Users, catalogue and interactions of one shop. Build it with :meth:`create`."""

    name: str
    user_ids: np.ndarray
    catalog: Catalog
    interactions: Interactions
    has_time: bool = True
    queries: tuple[str, ...] = ()
    judgements: Judgements | None = None
    quality: DataQualityReport | None = field(default=None, compare=False)

    @classmethod
    def create(
        cls,
        name: str,
        user_ids: np.ndarray,
        catalog: Catalog,
        interactions: Interactions,
        *,
        has_time: bool = True,
        queries: tuple[str, ...] = (),
        judgements: Judgements | None = None,
        quality: DataQualityReport | None = None,
    ) -> Dataset:
        """Check ids are in range, normalise dtypes and sort interactions by (user, time)."""
        n_users, n_items = len(user_ids), catalog.n_items
        user = np.asarray(interactions.user, dtype=np.int32)
        item = np.asarray(interactions.item, dtype=np.int32)
        if len(user) and (user.min() < 0 or user.max() >= n_users):
            raise ValueError(f"interaction user ids must lie in [0, {n_users})")
        if len(item) and (item.min() < 0 or item.max() >= n_items):
            raise ValueError(f"interaction item ids must lie in [0, {n_items})")
        timestamp = np.asarray(interactions.timestamp, dtype=np.int64)
        order = np.lexsort((np.arange(len(user)), timestamp, user))
        query = interactions.query
        if query is not None and len(query) and query.max() >= len(queries):
            raise ValueError(f"interaction query ids must be below {len(queries)}")
        normalised = Interactions(
            user=user,
            item=item,
            timestamp=timestamp,
            event=np.asarray(interactions.event, dtype=np.int8),
            query=None if query is None else np.asarray(query, dtype=np.int32),
            price=None if interactions.price is None else np.asarray(interactions.price, dtype=np.float64),
        ).select(order)
        return cls(
            name,
            np.asarray(user_ids, dtype=object),
            catalog,
            normalised,
            has_time,
            queries,
            judgements,
            quality,
        )

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return self.catalog.n_items

    def sequences(self) -> Ragged:
        """Each user's items in time order (one row per user, possibly empty)."""
        return Ragged.from_groups(self.interactions.user, self.interactions.item, self.n_users)

    def item_counts(self) -> np.ndarray:
        """How many interactions each item has."""
        return np.bincount(self.interactions.item, minlength=self.n_items)

    def with_interactions(self, interactions: Interactions) -> Dataset:
        """The same shop with a subset of its interactions (already sorted: a selection keeps order)."""
        return replace(self, interactions=interactions)

    def fingerprint(self) -> str:
        """Short digest of the item vocabulary: a model trained on one catalogue refuses another."""
        digest = hashlib.sha256()
        digest.update(str(self.n_items).encode())
        for item_id in self.catalog.item_ids:
            digest.update(b"\0" + str(item_id).encode())
        return digest.hexdigest()[:16]

    def interactions_digest(self) -> str:
        """Short digest of the interactions, to tell whether a model saw exactly this training data."""
        digest = hashlib.sha256()
        for column in (self.interactions.user, self.interactions.item, self.interactions.timestamp):
            digest.update(np.ascontiguousarray(column).tobytes())
        return digest.hexdigest()[:16]

    def summary(self) -> str:
        lengths = self.sequences().lengths
        return (
            f"{self.name}: {self.n_users:,} users, {self.n_items:,} items, "
            f"{len(self.interactions):,} interactions, mean history {lengths.mean():.1f}"
        )
