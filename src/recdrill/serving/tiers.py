"""Degradation tiers: each answers a recommendation request its own way behind one small protocol.

The router tries tiers in order; a tier that raises, runs late or returns invalid scores is skipped.
The last tier (popularity) works from precomputed arrays and cannot fail.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from recdrill.data.ragged import Ragged
from recdrill.data.snapshot import ShopSnapshot
from recdrill.errors import ModelError
from recdrill.eval.ranking import exclude, top_k, validate_scores
from recdrill.models.base import BaseRecommender
from recdrill.serving.faults import FaultPoint


@dataclass(frozen=True)
class TierRequest:
    """A request in dense ids: ``history`` oldest first; ``allowed`` restricts items (category)."""

    history: np.ndarray
    k: int
    allowed: np.ndarray | None = None


@dataclass(frozen=True)
class TierAnswer:
    items: np.ndarray  # dense ids, best first
    scores: np.ndarray  # finite float32, same length


class InvalidAnswerError(RuntimeError):
    """A tier computed an answer that must not reach a client (NaN or infinite scores)."""


class Tier(Protocol):
    """What every tier offers: a name for ``served_by`` and an async ``serve``."""

    name: str

    async def serve(self, request: TierRequest) -> TierAnswer: ...


class ModelTier:
    """The primary tier: a fitted recommender, behind the ``ranker`` fault point."""

    def __init__(self, model: BaseRecommender, fault_point: FaultPoint, name: str = "primary") -> None:
        self.model = model
        self.fault_point = fault_point
        self.name = name

    async def serve(self, request: TierRequest) -> TierAnswer:
        spoil = await self.fault_point.before_call()
        history = Ragged.from_lists([request.history])
        scores = np.array(self.model.score(history), dtype=np.float32, copy=True)
        if spoil:
            scores[:] = np.nan
        try:
            validate_scores(scores, 1, self.model.n_items_)
        except ModelError as exc:
            raise InvalidAnswerError(str(exc)) from exc
        return _best(exclude(scores, history)[0], request)


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
