"""The tier chain of one loaded model version: load, check, and wire primary to popular.

A :class:`Generation` is everything that changes when a model is reloaded (model, snapshot, tiers
built from them, version); :class:`WorkerResources` is what outlives reloads (fault table, last-good cache,
breakers, metrics). :func:`load_generation` is the one way to build a generation, at start-up and
on ``POST /admin/models/reload`` alike, and it refuses a model that does not load or does not give
finite scores on a probe batch of real histories.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from recdrill.data.ragged import Ragged
from recdrill.data.snapshot import ShopSnapshot
from recdrill.errors import ModelFileError
from recdrill.models.base import BaseRecommender
from recdrill.models.factory import load_model
from recdrill.serving.batching import MicroBatcher
from recdrill.serving.breaker import BreakerConfig, BreakerState, CircuitBreaker
from recdrill.serving.cache import CachedList, CacheKey, LastGoodCache
from recdrill.serving.config import ServeConfig
from recdrill.serving.fault_points import CacheFaults, FaultPoint, FaultStore
from recdrill.serving.metrics import ServingMetrics
from recdrill.serving.middleware.admission import WorkerLoad
from recdrill.serving.router import Route, TierRouter
from recdrill.serving.tiers import CachedTier, CategoryPopularityTier, ModelTier, PopularityTier, Tier

log = logging.getLogger(__name__)

# Each tier's share of the request deadline (at most what is left when its turn comes). The
# primary gets most of it; the fallback model is cheaper; cache and popularity take microseconds.
SHARES = {"primary": 0.7, "fallback": 0.25, "cache": 1.0, "category": 1.0}
PROBE_USERS = 16


@dataclass
class WorkerResources:
    """What a worker keeps across model reloads."""

    config: ServeConfig
    metrics: ServingMetrics
    faults: FaultStore
    cache: LastGoodCache
    breakers: dict[str, CircuitBreaker] = field(default_factory=dict)
    load: WorkerLoad | None = None  # admission control's count; None: never busy (tests, tools)
    cache_faults: CacheFaults = field(init=False)  # the ``cache`` fault point, over ``faults``

    def __post_init__(self) -> None:
        self.cache_faults = CacheFaults(self.faults)

    def remember(self, key: CacheKey, answer: CachedList) -> None:
        """Keep a primary answer as the user's last-good list, unless a fault empties the cache."""
        if not self.cache_faults.empty():
            self.cache.put(key, answer)

    def breaker(self, tier: str, slow_call_s: float) -> CircuitBreaker:
        """The tier's breaker, made on first use and kept (with its state) across reloads."""
        if tier not in self.breakers:
            config = BreakerConfig(
                min_calls=self.config.breaker_min_calls,
                open_s=self.config.breaker_open_s,
                slow_call_s=slow_call_s,
            )
            self.breakers[tier] = CircuitBreaker(tier, config, listeners=[self._on_transition])
            self.metrics.breaker_state.labels(tier).set(BreakerState.CLOSED)
        return self.breakers[tier]

    def _on_transition(self, tier: str, old: BreakerState, new: BreakerState) -> None:
        log.warning("circuit breaker of tier %s: %s -> %s", tier, old.name, new.name)
        self.metrics.breaker_state.labels(tier).set(new)
        self.metrics.breaker_transitions.labels(tier, new.name.lower()).inc()


@dataclass
class Generation:
    """One loaded model version and the tier chain built around it, swapped whole on reload."""

    model_dir: Path
    model: BaseRecommender
    fallback: BaseRecommender | None
    snapshot: ShopSnapshot
    version: str
    router: TierRouter
    popular: PopularityTier
    batchers: list[MicroBatcher]
    category_items: dict[str, np.ndarray] = field(default_factory=dict)

    def close(self) -> None:
        for batcher in self.batchers:
            batcher.close()


def fallback_dir_for(model_dir: Path, config: ServeConfig) -> Path | None:
    """The configured fallback folder, else ``<model_dir>/fallback`` when present, else None."""
    if config.fallback_model_dir is not None:
        return config.fallback_model_dir
    beside = model_dir / "fallback"
    return beside if beside.is_dir() else None


def load_generation(model_dir: Path, resources: WorkerResources) -> Generation:
    """Load and check the model in ``model_dir`` (and its fallback), and build the tier chain.

    Raises:
        ModelFileError: a model is missing, corrupt, for another catalogue, or gives bad scores.
        DataFormatError: the shop snapshot beside the model is missing or corrupt.
    """
    model_dir = Path(model_dir)
    model = load_model(model_dir)
    snapshot = ShopSnapshot.load(model_dir)
    validate_model(model, snapshot, model_dir)
    fallback_dir = fallback_dir_for(model_dir, resources.config)
    fallback = None
    if fallback_dir is not None:
        fallback = load_model(fallback_dir)
        validate_model(fallback, snapshot, fallback_dir)
    version = f"{model.kind}-{model.trained_on_[:8]}-{files_digest(model_dir)}"
    return _wire(model_dir, model, fallback, snapshot, version, resources)


def validate_model(model: BaseRecommender, snapshot: ShopSnapshot, path: Path) -> None:
    """Refuse a model for another catalogue or one that gives non-finite scores on real histories."""
    if model.n_items_ != snapshot.n_items:
        raise ModelFileError(
            path, f"model scores {model.n_items_} items but the shop snapshot has {snapshot.n_items}"
        )
    users = np.flatnonzero(snapshot.histories.lengths > 0)[:PROBE_USERS]
    probe = Ragged.from_lists([snapshot.histories.row(int(u)) for u in users] + [[]])
    try:
        scores = np.asarray(model.score(probe))
    except (ValueError, IndexError) as exc:
        raise ModelFileError(path, f"model fails on a probe batch: {exc}") from exc
    if scores.shape != (len(probe), snapshot.n_items) or not np.isfinite(scores).all():
        raise ModelFileError(path, f"model gives no finite scores of shape {(len(probe), snapshot.n_items)}")


def files_digest(model_dir: Path) -> str:
    """Six hex digits of the saved files: two models trained on the same data still differ."""
    digest = hashlib.blake2b(digest_size=3)
    for name in ("model.json", "state.npz"):
        with (model_dir / name).open("rb") as handle:
            digest.update(hashlib.file_digest(handle, "blake2b").digest())
    return digest.hexdigest()


def _wire(
    model_dir: Path,
    model: BaseRecommender,
    fallback: BaseRecommender | None,
    snapshot: ShopSnapshot,
    version: str,
    resources: WorkerResources,
) -> Generation:
    config, metrics = resources.config, resources.metrics
    deadline_s = config.deadline_ms / 1000.0
    routes: list[Route] = []
    batchers: list[MicroBatcher] = []
    models = [("primary", "ranker", model), ("fallback", "fallback", fallback)]
    for name, point, each in models:
        if each is None:
            continue
        batcher = MicroBatcher(
            each.score,
            max_batch=config.batch_max,
            max_wait_ms=config.batch_wait_ms,
            enabled=config.batching,
            inline_below_ms=config.inline_below_ms,
            busy=None if resources.load is None else resources.load.is_busy,
            on_batch=metrics.batch_size.labels(name).observe,
        )
        batchers.append(batcher)
        tier = ModelTier(batcher, each.n_items_, FaultPoint(resources.faults, point), name=name)
        budget = SHARES[name] * deadline_s
        routes.append(Route(tier, SHARES[name], resources.breaker(name, slow_call_s=0.8 * budget)))
    # In-memory tiers fail only by a bug or a starved CPU; their breakers guard against both.
    cached = CachedTier(resources.cache, faults=resources.cache_faults)
    in_memory: list[Tier] = [cached, CategoryPopularityTier(snapshot)]
    for each_tier in in_memory:
        breaker = resources.breaker(each_tier.name, slow_call_s=math.inf)
        # A stale cache (a fault) answers before the models for the users it holds.
        first_when = resources.cache_faults.stale if each_tier is cached else None
        routes.append(Route(each_tier, SHARES[each_tier.name], breaker, first_when))
    popular = PopularityTier(snapshot)
    router = TierRouter(routes, popular, deadline_s=deadline_s)
    return Generation(model_dir, model, fallback, snapshot, version, router, popular, batchers)
