"""Live drift monitoring of a serving worker: a ``ServingObserver`` (``recdrill.serving.observers``).

Each worker compares the traffic it serves with a reference built from training: the snapshot's
``reference_histories`` (what requests' histories looked like at sampled training events, see
``ShopSnapshot``), sent through the primary model once (so model outputs have a reference too).
Snapshots saved before those existed fall back to up to ``reference_users`` users' final histories.
Every ``interval_s`` the observations buffered since the last pass become features
(``features.py``), which update one streaming detector per feature (Evidently's default test for its
kind and reference size, ``choose.py``) over a sliding window of the last ``window`` values. A
feature is evaluated only once its window holds ``min_current`` values, so a quiet worker never
alarms on a handful of requests.

Why a window of 5,000: live requests are not independent draws. One user's session sends several
requests within minutes, all from that user's tastes, so a window of a few hundred requests holds a
few dozen users and its category mix swings far more than the reference's. In ShopSim's time-ordered
traffic a 2,000-request window raised category alerts with no drift at all; the reference and a
shuffled stream of the same period never did (``benchmarks/drift_detection.py``).

Feedback has no training reference (the snapshot keeps no events): its features take the first
``window`` events a worker sees as their reference, except ``feedback_log_price``, compared with the
catalogue prices of the reference histories' items.

Label-free quality: each pass scores a sample of the pass's primary answers with the fallback model
too, and reports the share of the primary's top 10 that the fallback's top 10 holds
(``recdrill_tier_agreement10``), with its own detector against the reference histories' agreement.
A falling agreement with steady inputs means one of the two models changed behaviour.

Metrics (per worker; the alert rules take the max over workers): ``recdrill_drift_score``,
``recdrill_drift_threshold``, ``recdrill_drift_detected`` (0/1), ``recdrill_drift_window_values``
by feature. A reload to another snapshot rebuilds the reference.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from prometheus_client import Gauge

from recdrill.data.ragged import Ragged
from recdrill.data.snapshot import ShopSnapshot
from recdrill.errors import ConfigError
from recdrill.models.base import BaseRecommender, Recommendations
from recdrill.monitor.drift.bins import ColumnKind
from recdrill.monitor.drift.defaults import default_detector
from recdrill.monitor.drift.detector import Detector
from recdrill.monitor.features import (
    CATEGORICAL_FEATURES,
    PRICE_FLOOR,
    feedback_features,
    history_features,
    item_categories,
    request_features,
)
from recdrill.serving.observers import FeedbackSeen, ObserverContext, RecommendSeen, ServedModels

log = logging.getLogger(__name__)
TOP_K = 10


@dataclass(frozen=True)
class LiveMonitorConfig:
    """Knobs of the live monitor; ``from_env`` reads ``RECDRILL_MONITOR_*`` (workers get them)."""

    interval_s: float = 5.0
    window: int = 5000
    min_current: int = 300
    reference_users: int = 2000
    agreement_sample: int = 32
    buffer: int = 50_000  # observations kept between passes; beyond it the oldest are dropped
    seed: int = 0

    def __post_init__(self) -> None:
        if self.interval_s <= 0 or self.window < 2 or self.min_current < 1 or self.reference_users < 2:
            raise ConfigError(f"invalid live monitor settings: {self}")

    @classmethod
    def from_env(cls) -> LiveMonitorConfig:
        values: dict[str, Any] = {}
        for name, parse in (("interval_s", float), ("window", int), ("min_current", int)):
            variable = f"RECDRILL_MONITOR_{name.upper()}"
            if variable in os.environ:
                try:
                    values[name] = parse(os.environ[variable])
                except ValueError:
                    raise ConfigError(f"{variable} must be a number, got {os.environ[variable]!r}") from None
        return cls(**values)


class LiveMonitor:
    """Feature drift of one worker's traffic against the training reference."""

    def __init__(self, context: ObserverContext, config: LiveMonitorConfig | None = None) -> None:
        self.config = config or LiveMonitorConfig()
        self.served: Callable[[], ServedModels] = context.served
        self._recommended: deque[RecommendSeen] = deque(maxlen=self.config.buffer)
        self._feedback: deque[FeedbackSeen] = deque(maxlen=self.config.buffer)
        self._snapshot: ShopSnapshot | None = None
        self._category = np.zeros(0, dtype=np.int64)
        self.detectors: dict[str, Detector] = {}
        self._pending_reference: dict[str, list[np.ndarray]] = {}
        self.drifting_since: dict[str, float] = {}
        labels = ["feature"]
        self._score = Gauge(
            "recdrill_drift_score", "Drift score per feature (p-value or distance, see method).",
            labels, registry=context.registry, multiprocess_mode="liveall",
        )  # fmt: skip
        self._threshold = Gauge(
            "recdrill_drift_threshold", "Threshold the drift score is compared with.",
            labels, registry=context.registry, multiprocess_mode="liveall",
        )  # fmt: skip
        self._detected = Gauge(
            "recdrill_drift_detected", "1 while the feature's current window has drifted.",
            labels, registry=context.registry, multiprocess_mode="livemax",
        )  # fmt: skip
        self._values = Gauge(
            "recdrill_drift_window_values", "Values in the feature's current window.",
            labels, registry=context.registry, multiprocess_mode="liveall",
        )  # fmt: skip
        self._agreement = Gauge(
            "recdrill_tier_agreement10",
            "Share of the primary's top 10 the fallback's top 10 also holds (label-free quality).",
            registry=context.registry,
            multiprocess_mode="liveall",
        )

    # The hot path: append and return.
    def recommend(self, seen: RecommendSeen) -> None:
        self._recommended.append(seen)

    def feedback(self, seen: FeedbackSeen) -> None:
        self._feedback.append(seen)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.config.interval_s)
            try:
                await asyncio.to_thread(self.process)
            except Exception:  # monitoring must never take serving down
                log.exception("live monitor pass failed")

    def close(self) -> None:
        self._recommended.clear()
        self._feedback.clear()

    def process(self, now: float | None = None) -> dict[str, bool]:
        """One pass over what was observed since the last; returns the drift flag per feature."""
        now = time.time() if now is None else now
        served = self.served()
        if self._snapshot is not served.snapshot:
            self._build_reference(served)
        recommended = _drain(self._recommended)
        feedback = _drain(self._feedback)
        batches: dict[str, np.ndarray] = {}
        current = [seen for seen in recommended if seen.snapshot is self._snapshot]
        if current:
            batches.update(self._request_batch(current))
            batches["tier_agreement10"] = self._agreement_values(served, current)
        if feedback:
            batches.update(feedback_features([f.event for f in feedback], [f.price for f in feedback]))
        for name, values in batches.items():
            if len(values):
                self._update(name, values)
        return self._publish(now)

    def _build_reference(self, served: ServedModels) -> None:
        snapshot = served.snapshot
        self._snapshot = snapshot
        self._category = item_categories(snapshot)
        histories = snapshot.reference_histories
        if histories is None:  # a snapshot saved before it kept one: users' final histories
            rng = np.random.default_rng(self.config.seed)
            users = np.flatnonzero(snapshot.histories.lengths > 0)
            users = rng.choice(users, size=min(self.config.reference_users, len(users)), replace=False)
            histories = snapshot.histories.take(users)
        reference = history_features(histories, snapshot, self._category)
        top = _recommend(served.primary, histories)
        reference["rec_category"] = self._category[top.items[:, 0]]
        reference["top_score"] = top.scores[:, 0].astype(np.float64)
        reference["unknown_items"] = np.array(["known"] * len(histories))
        reference["user_kind"] = np.array(["known"] * len(histories))
        if snapshot.item_price is not None:
            prices = snapshot.item_price[histories.values]
            prices = prices[~np.isnan(prices)]
            reference["feedback_log_price"] = np.log(np.maximum(prices, PRICE_FLOOR))
        if served.fallback is not None:
            other = _recommend(served.fallback, histories)
            reference["tier_agreement10"] = _overlap(top.items, other.items)
        self.detectors = {
            name: self._detector(name, values) for name, values in reference.items() if len(values) > 1
        }
        self._pending_reference = {"feedback_event": []}
        self.drifting_since.clear()
        log.info("live monitor: reference of %d histories, %d features", len(histories), len(self.detectors))

    def _detector(self, name: str, reference: np.ndarray) -> Detector:
        kind: ColumnKind = "categorical" if name in CATEGORICAL_FEATURES else "numeric"
        return default_detector(reference, kind=kind, window=self.config.window)

    def _request_batch(self, seen: list[RecommendSeen]) -> dict[str, np.ndarray]:
        histories = Ragged.from_lists([s.history for s in seen])
        items = Ragged.from_lists([s.items[:TOP_K] for s in seen])
        primary = [s for s in seen if s.served_by == s.first_tier and len(s.scores)]
        return request_features(
            histories,
            seen[0].snapshot,
            self._category,
            given=np.array([s.given for s in seen]),
            unknown=np.array([s.unknown for s in seen]),
            user_known=[s.user_known for s in seen],
            items=items,
            top_scores=np.array([s.scores[0] for s in primary], dtype=np.float64),
        )

    def _agreement_values(self, served: ServedModels, seen: list[RecommendSeen]) -> np.ndarray:
        if served.fallback is None:
            return np.zeros(0)
        primary = [s for s in seen if s.served_by == s.first_tier and len(s.history) and len(s.items)]
        primary = primary[-self.config.agreement_sample :]
        if not primary:
            return np.zeros(0)
        k = min(TOP_K, *(len(s.items) for s in primary))
        other = served.fallback.recommend(Ragged.from_lists([s.history for s in primary]), k=k)
        values = _overlap(np.stack([s.items[:k] for s in primary]), other.items)
        self._agreement.set(float(values.mean()))
        return values

    def _update(self, name: str, values: np.ndarray) -> None:
        detector = self.detectors.get(name)
        if detector is None:
            # Features without a training reference take their first ``window`` values as one.
            pending = self._pending_reference.get(name)
            if pending is None:
                return
            pending.append(values)
            gathered = np.concatenate(pending)
            if len(gathered) >= self.config.window:
                self.detectors[name] = self._detector(name, gathered[: self.config.window])
                del self._pending_reference[name]
            return
        detector.update(values)

    def _publish(self, now: float) -> dict[str, bool]:
        flags: dict[str, bool] = {}
        for name, detector in self.detectors.items():
            ready = detector.n_seen >= self.config.min_current
            drift = ready and detector.drift_detected
            flags[name] = drift
            if ready:
                self._score.labels(name).set(detector.score)
            self._threshold.labels(name).set(detector.threshold)
            self._detected.labels(name).set(1.0 if drift else 0.0)
            self._values.labels(name).set(detector.n_seen)
            if drift:
                self.drifting_since.setdefault(name, now)
            else:
                self.drifting_since.pop(name, None)
        return flags


def live_monitor(context: ObserverContext) -> LiveMonitor:
    """The observer factory ``recdrill serve`` names (``recdrill.monitor.live:live_monitor``)."""
    return LiveMonitor(context, LiveMonitorConfig.from_env())


def _recommend(model: BaseRecommender, histories: Ragged, chunk: int = 32) -> Recommendations:
    """Top 10 per history, in small chunks: this runs beside serving, and one large numpy call holds
    the GIL for its whole length (256 histories of a 10k-item shop: tens of milliseconds, every
    request waiting); 32 keep each call near a millisecond."""
    parts = [model.recommend(histories.take(np.arange(i, min(i + chunk, len(histories)))), k=TOP_K)
             for i in range(0, len(histories), chunk)]  # fmt: skip
    return Recommendations(
        np.concatenate([p.items for p in parts]), np.concatenate([p.scores for p in parts])
    )


def _overlap(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Per row, the share of ``first``'s items that ``second`` also holds."""
    hits = (first[:, :, None] == second[:, None, :]).any(axis=2)
    return np.asarray(hits.mean(axis=1), dtype=np.float64)


def _drain(buffer: deque[Any]) -> list[Any]:
    # popleft until empty: safe while the event loop keeps appending from another thread's view.
    out = []
    while buffer:
        out.append(buffer.popleft())
    return out
