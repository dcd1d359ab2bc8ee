"""Observers of served traffic: how monitoring sees every answer without serving knowing about it.

Serving must not depend on monitoring (dependencies point serving -> monitor), yet drift detection
needs each request's features. So the app accepts observers named by an import spec
(``ServeConfig.observers``, ``RECDRILL_OBSERVERS="package.module:factory"``): each worker imports
the factory at start-up and calls it with the worker's ``ObserverContext``. ``recdrill serve``
names ``recdrill.monitor.live:live_monitor`` unless told ``--no-monitor``.

The hot path only hands an observer a frozen record (a few microseconds: an observer must append
it to a buffer and return); the observer's ``run`` coroutine does the vectorised work in the
background, and is cancelled at shutdown.

Example:
    >>> load_factory("recdrill.serving.observers:NullObserver").__name__
    'NullObserver'
"""

from __future__ import annotations

import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from prometheus_client import CollectorRegistry

from recdrill.data.snapshot import ShopSnapshot
from recdrill.errors import ConfigError
from recdrill.models.base import BaseRecommender


@dataclass(frozen=True)
class ServedModels:
    """The model version a worker serves now, read fresh by an observer each time (reloads swap it)."""

    version: str
    snapshot: ShopSnapshot
    primary: BaseRecommender
    fallback: BaseRecommender | None


@dataclass(frozen=True)
class RecommendSeen:
    """One answered ``/v1/recommend``, in the dense ids of ``snapshot``.

    ``given`` counts the history ids the client sent, ``unknown`` those not in the catalogue;
    ``user_known`` is None for an anonymous request.
    """

    at: float
    history: np.ndarray
    given: int
    unknown: int
    user_known: bool | None
    items: np.ndarray
    scores: np.ndarray
    served_by: str
    first_tier: str
    snapshot: ShopSnapshot


@dataclass(frozen=True)
class FeedbackSeen:
    """One committed ``/v1/feedback`` event (the raw user id never leaves the request: none here)."""

    at: float
    item_id: str
    event: str
    price: float | None
    row_id: int


@dataclass(frozen=True)
class ObserverContext:
    """What an observer may use: the worker's metrics registry and state folder, and the models
    served right now."""

    registry: CollectorRegistry
    state_dir: Path
    served: Callable[[], ServedModels]


class ServingObserver(Protocol):
    def recommend(self, seen: RecommendSeen) -> None: ...

    def feedback(self, seen: FeedbackSeen) -> None: ...

    async def run(self) -> None: ...

    def close(self) -> None: ...


ObserverFactory = Callable[[ObserverContext], ServingObserver]


class NullObserver:
    """Observes nothing; a reference implementation of the protocol."""

    def __init__(self, context: ObserverContext | None = None) -> None:
        self.context = context

    def recommend(self, seen: RecommendSeen) -> None:
        pass

    def feedback(self, seen: FeedbackSeen) -> None:
        pass

    async def run(self) -> None:
        pass

    def close(self) -> None:
        pass


def load_factory(spec: str) -> ObserverFactory:
    """The callable ``module:name`` names (resolved by :func:`pkgutil.resolve_name`).

    Raises:
        ConfigError: the spec is malformed, or the module or the name cannot be imported.
    """
    module_name, sep, name = spec.partition(":")
    if not sep or not module_name or not name:
        raise ConfigError(f"observer {spec!r} must look like 'package.module:factory'")
    try:
        factory = pkgutil.resolve_name(spec)
    except ImportError as exc:
        raise ConfigError(f"observer {spec!r}: cannot import {module_name} ({exc})") from None
    except AttributeError:
        factory = None
    if not callable(factory):
        raise ConfigError(f"observer {spec!r}: {module_name} has no callable {name!r}")
    return factory  # type: ignore[no-any-return]
