"""Replay a shop's event log through the live monitor on a simulated clock, to measure how often a
stationary stream raises an alert and how fast injected drift is detected.

Models are trained on the events before ``train_end``. Each replayed event becomes one request, as
a known user's client sends it (the user's items before the event, and the model's top 10 for that
history), and one feedback event with the price shown. Two phases:

1. *stationary*: events drawn at random from the reference period (the training timeline's last
   quarter, as ``ShopSnapshot.reference_histories``, minus the events that reference holds), so
   the stream has exactly the reference's distribution: every alert here is a false alarm;
2. *live*: the events of ``[train_end, stop)`` in time order, at the same rate; ``onset`` marks
   when injected drift starts. (A shop's own slow change shows up here too: its users age, so
   histories lengthen.)

Passes run every ``pass_s`` simulated seconds, as the live monitor's loop does. An *alert* is what
the ``RecdrillFeatureDrift`` rule pages on: a feature's flag held for ``sustain_s`` (its ``for:``).

Example (small, so that doctest runs it quickly)::

    >>> from recdrill.data.shopsim import ShopSim
    >>> shop = ShopSim(n_items=200, n_users=600, n_events=30_000, seed=3).generate()
    >>> t = shop.interactions.timestamp
    >>> cut = int(t.min() + 0.8 * (t.max() - t.min()))
    >>> result = replay_shop(shop, train_end=cut, stop=int(t.max()), stationary_s=600,
    ...                      live_s=300, min_current=50)
    >>> result.requests > 0, [a for a in result.alerts if a[1] <= 600]
    (True, [])
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from prometheus_client import CollectorRegistry

from recdrill.data.dataset import Dataset, EventType
from recdrill.data.snapshot import REFERENCE_REQUESTS, ShopSnapshot, histories_before, reference_events
from recdrill.errors import ConfigError
from recdrill.models.base import BaseRecommender
from recdrill.models.itemknn import ItemKNNRecommender
from recdrill.models.popularity import PopularityRecommender
from recdrill.monitor.live import LiveMonitor, LiveMonitorConfig
from recdrill.serving.observers import FeedbackSeen, ObserverContext, RecommendSeen, ServedModels

HISTORY_LENGTH = 50


@dataclass
class ReplayResult:
    """What a replay saw: each feature's flag per pass, the alerts, detection times after onset."""

    requests: int = 0
    passes: int = 0
    stationary_s: float = 0.0
    onset_s: float | None = None  # simulated second at which injected drift starts
    flags: dict[str, list[bool]] = field(default_factory=dict)
    pass_times: list[float] = field(default_factory=list)
    requests_at: list[int] = field(default_factory=list)  # requests replayed by each pass
    alerts: list[tuple[str, float]] = field(default_factory=list)  # (feature, simulated second)
    first_flag: dict[str, float] = field(default_factory=dict)  # feature -> seconds after onset
    pass_ms: float = 0.0  # mean wall time of one monitor pass

    def requests_until(self, second: float) -> int:
        """Requests replayed by the pass at ``second``."""
        index = int(np.searchsorted(self.pass_times, second))
        return self.requests_at[min(index, len(self.requests_at) - 1)]


def train_models(dataset: Dataset, train_end: int) -> tuple[Dataset, BaseRecommender, BaseRecommender]:
    """The shop cut at ``train_end``, an item-to-item primary and a popularity fallback fitted on it."""
    train = dataset.with_interactions(dataset.interactions.select(dataset.interactions.timestamp < train_end))
    return train, ItemKNNRecommender().fit(train), PopularityRecommender().fit(train)


def replay_shop(
    dataset: Dataset,
    *,
    train_end: int,
    stop: int,
    stationary_s: float = 3600.0,
    live_s: float = 1800.0,
    rate_per_s: float | None = None,
    onset: int | None = None,
    pass_s: float = 5.0,
    sustain_s: float = 600.0,
    window: int = 5000,
    min_current: int = 300,
    seed: int = 0,
) -> ReplayResult:
    """Run both phases; the stationary one at ``rate_per_s`` (default: the live phase's rate)."""
    train, primary, fallback = train_models(dataset, train_end)
    snapshot = ShopSnapshot.from_dataset(train, HISTORY_LENGTH)
    served = ServedModels("replay", snapshot, primary, fallback)
    events = dataset.interactions
    live = np.flatnonzero((events.timestamp >= train_end) & (events.timestamp < stop))
    live = live[np.argsort(events.timestamp[live], kind="stable")]
    live_at = stationary_s + (events.timestamp[live] - train_end) * live_s / max(1, stop - train_end)
    rate = rate_per_s or len(live) / live_s
    # The reference period's events, minus those the reference holds: same distribution, unseen.
    pool = reference_events(train, len(train.interactions))
    pool = np.setdiff1d(pool, reference_events(train, REFERENCE_REQUESTS))
    pool = np.flatnonzero(events.timestamp < train_end)[pool]  # training's event indices -> the shop's
    if len(pool) == 0:
        raise ConfigError(
            f"the reference period holds no events beyond the {REFERENCE_REQUESTS} of the reference: "
            "replay a larger shop"
        )
    rng = np.random.default_rng(seed)
    n_stationary = int(rate * stationary_s)
    stationary = rng.choice(pool, n_stationary, replace=n_stationary > len(pool))
    order = np.concatenate([stationary, live])
    at = np.concatenate([np.sort(rng.uniform(0, stationary_s, n_stationary)), live_at])
    result = ReplayResult(stationary_s=stationary_s)
    if onset is not None:
        result.onset_s = stationary_s + (onset - train_end) * live_s / max(1, stop - train_end)
    config = LiveMonitorConfig(interval_s=pass_s, window=window, min_current=min_current)
    with tempfile.TemporaryDirectory() as state:
        monitor = LiveMonitor(ObserverContext(CollectorRegistry(), Path(state), lambda: served), config)
        _run(dataset, monitor, served, order, at, stationary_s + live_s, pass_s, sustain_s, result)
    return result


def _run(
    dataset: Dataset,
    monitor: LiveMonitor,
    served: ServedModels,
    order: np.ndarray,
    at: np.ndarray,
    seconds: float,
    pass_s: float,
    sustain_s: float,
    result: ReplayResult,
) -> None:
    since: dict[str, float] = {}
    alerted: set[str] = set()
    spent, start = 0.0, 0
    for now in np.arange(pass_s, seconds + pass_s / 2, pass_s).tolist():
        end = int(np.searchsorted(at, now, side="left"))
        if end > start:
            observe_events(dataset, monitor, served, order[start:end], now)
        result.requests += end - start
        start = end
        began = time.perf_counter()
        flags = monitor.process(now=now)
        spent += time.perf_counter() - began
        result.passes += 1
        result.pass_times.append(now)
        result.requests_at.append(result.requests)
        for name, flag in flags.items():
            # A feature whose detector came later (a warm-up reference) was not flagged before.
            result.flags.setdefault(name, [False] * (result.passes - 1)).append(flag)
            if not flag:
                since.pop(name, None)
                alerted.discard(name)
                continue
            since.setdefault(name, now)
            if result.onset_s is not None and now >= result.onset_s:
                result.first_flag.setdefault(name, now - result.onset_s)
            if name not in alerted and now - since[name] >= sustain_s:
                alerted.add(name)
                result.alerts.append((name, now))
    result.pass_ms = 1000.0 * spent / max(1, result.passes)


def observe_events(
    dataset: Dataset, monitor: LiveMonitor, served: ServedModels, batch: np.ndarray, now: float
) -> None:
    """Show ``monitor`` the shop's events ``batch`` at ``now``, as a server would: each one's
    recommendation (the primary's, for the history before it) and the event itself as feedback."""
    events = dataset.interactions
    histories = histories_before(dataset, batch, HISTORY_LENGTH)
    top = served.primary.recommend(histories, k=10)
    for i, j in enumerate(batch.tolist()):
        history = histories.row(i).astype(np.int64)
        seen = RecommendSeen(
            now, history, 0, 0, True, top.items[i], top.scores[i], "primary", "primary", served.snapshot
        )
        monitor.recommend(seen)
        price = None if events.price is None or np.isnan(events.price[j]) else float(events.price[j])
        event = EventType(int(events.event[j])).name.lower()
        monitor.feedback(FeedbackSeen(now, str(events.item[j]), event, price, j))
