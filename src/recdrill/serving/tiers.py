"""Degradation tiers: each answers a recommendation request its own way behind one small protocol.

In the order the router tries them (``chain.py`` builds it):

- :class:`ModelTier` ``primary``: the served model, scored off the event loop through a batcher;
- :class:`ModelTier` ``fallback``: a cheaper item-to-item model, when one is configured;
- :class:`CachedTier` ``cache``: the user's last answer from the primary tier;
- :class:`CategoryPopularityTier` ``category``: best-sellers of the categories the user browses;
- :class:`PopularityTier` ``popular``: global best-sellers, from precomputed arrays; cannot fail.

A tier that raises, runs late or returns invalid scores is skipped. A tier that has nothing to say
for this request (no cached list, no category) raises :class:`TierSkip` with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import scipy.sparse as sp

from recdrill.data.snapshot import ShopSnapshot
from recdrill.errors import ModelError
from recdrill.eval.ranking import top_k, validate_scores
from recdrill.serving.batching import MicroBatcher
from recdrill.serving.cache import CacheKey, LastGoodCache
from recdrill.serving.fault_points import CacheFaults, FaultPoint

CATEGORY_PRIOR = 0.01  # weight of global popularity under the category term: orders the rest


@dataclass(frozen=True)
class TierRequest:
    """A request in dense ids: ``history`` oldest first; ``allowed`` restricts items (category);
    ``user`` keys the last-good cache (None for an anonymous history)."""

    history: np.ndarray
    k: int
    allowed: np.ndarray | None = None
    user: str | None = None
    category: str | None = None

    @property
    def cache_key(self) -> CacheKey | None:
        return None if self.user is None else (self.user, self.category)


@dataclass(frozen=True)
class TierAnswer:
    items: np.ndarray  # dense ids, best first
    scores: np.ndarray  # finite float32, same length


class InvalidAnswerError(RuntimeError):
    """A tier computed an answer that must not reach a client (NaN or infinite scores)."""


class TierSkip(Exception):
    """A tier has no answer for this request; not a failure (the breaker does not count it)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason = reason


class Tier(Protocol):
    """What every tier offers: a name for ``served_by`` and an async ``serve``."""

    name: str

    async def serve(self, request: TierRequest) -> TierAnswer: ...


class ModelTier:
    """A fitted recommender behind a fault point, scored through a :class:`MicroBatcher`."""

    def __init__(self, scorer: MicroBatcher, n_items: int, fault_point: FaultPoint, name: str = "primary"):
        self.scorer = scorer
        self.n_items = n_items
        self.fault_point = fault_point
        self.name = name

    async def serve(self, request: TierRequest) -> TierAnswer:
        poisoned = await self.fault_point.before_call()  # a drill's NaN fault hit this call
        scores = (await self.scorer.score(request.history))[None, :]
        if poisoned:
            scores[:] = np.nan
        try:
            validate_scores(scores, 1, self.n_items)
        except ModelError as exc:
            raise InvalidAnswerError(str(exc)) from exc
        row = scores[0]
        row[request.history] = -np.inf  # seen items (one history: no Ragged to build and check)
        return _best(row, request)


class CachedTier:
    """The user's last answer from the primary tier (same category), minus what they saw since.

    ``faults`` (the ``cache`` point) may empty it: every lookup then misses.
    """

    def __init__(self, cache: LastGoodCache, name: str = "cache", faults: CacheFaults | None = None) -> None:
        self.cache = cache
        self.name = name
        self.faults = faults

    async def serve(self, request: TierRequest) -> TierAnswer:
        key = request.cache_key
        if key is not None and self.faults is not None and self.faults.empty():
            raise TierSkip("miss", "the cache is emptied by a fault")
        found = None if key is None else self.cache.get(key)
        if found is None:
            raise TierSkip("miss", "no last-good list for this user")
        keep = ~np.isin(found.items, request.history)
        items, scores = found.items[keep][: request.k], found.scores[keep][: request.k]
        if len(items) == 0:
            raise TierSkip("miss", "every cached item was seen since")
        return TierAnswer(items, scores)


class CategoryPopularityTier:
    """Best-sellers of the categories (and their parents) in the user's history.

    ``score(i) = sum_g affinity(g) * share(i | g) + CATEGORY_PRIOR * share(i)``: the user's share
    of history in each category group times the item's share of that group's sales, as the
    ``catpop`` model does, from the snapshot alone.
    """

    def __init__(self, snapshot: ShopSnapshot, name: str = "category") -> None:
        self.name = name
        counts = snapshot.item_counts.astype(np.float64)
        self._share = counts / max(counts.sum(), 1.0)
        n_items, n_groups = snapshot.n_items, len(snapshot.category_names)
        rows: list[np.ndarray] = []
        cols: list[np.ndarray] = []
        level = snapshot.item_category.astype(np.int64)
        while np.any(level >= 0):  # the leaf category, then each ancestor
            known = np.flatnonzero(level >= 0)
            rows.append(known)
            cols.append(level[known])
            level = np.where(level >= 0, snapshot.category_parent[np.maximum(level, 0)], -1)
        member_rows = np.concatenate([np.zeros(0, dtype=np.int64), *rows])
        member_cols = np.concatenate([np.zeros(0, dtype=np.int64), *cols])
        # [n_items, n_groups] membership, and [n_groups, n_items] share(i | g).
        self._groups = sp.csr_matrix(
            (np.ones(len(member_rows)), (member_rows, member_cols)), shape=(n_items, max(n_groups, 1))
        )
        sales = sp.csr_matrix(self._groups.T @ sp.diags(counts))
        totals = np.asarray(sales.sum(axis=1)).ravel()
        self._group_share = sp.csr_matrix(sp.diags(1.0 / np.maximum(totals, 1.0)) @ sales)

    async def serve(self, request: TierRequest) -> TierAnswer:
        groups = self._groups[request.history]
        if groups.nnz == 0:
            raise TierSkip("no_category", "no category known for the history")
        affinity = np.asarray(groups.sum(axis=0)).ravel() / len(request.history)
        scores = (self._group_share.T @ affinity + CATEGORY_PRIOR * self._share).astype(np.float32)
        scores[request.history] = -np.inf
        return _best(scores, request)


class PopularityTier:
    """Best-sellers, restricted to the request's category and minus its history. Cannot fail."""

    def __init__(self, snapshot: ShopSnapshot, name: str = "popular") -> None:
        self.name = name
        counts = snapshot.item_counts.astype(np.float64)
        self._scores = (counts / max(counts.sum(), 1.0)).astype(np.float32)

    async def serve(self, request: TierRequest) -> TierAnswer:
        scores = self._scores.copy()
        scores[request.history] = -np.inf
        return _best(scores, request)


def _best(scores: np.ndarray, request: TierRequest) -> TierAnswer:
    """Top k of one score row, only among allowed items and never an excluded (-inf) one."""
    if request.allowed is not None:
        masked = np.full_like(scores, -np.inf)
        masked[request.allowed] = scores[request.allowed]
        scores = masked
    items, values = top_k(scores[None, :], request.k)
    keep = np.isfinite(values[0])
    return TierAnswer(items[0][keep], values[0][keep])
