"""Sudden click spikes on one item from few users (poisoned feedback).

Rule (``recdrill.monitor.anomaly.monitor`` explains the defaults): at each evaluation time ``now``, an item
with ``c`` clicks in ``(now - window_s, now]`` from ``d`` distinct users is flagged when all hold:

* ``c >= min_clicks``;
* ``P(X >= c) < p_value`` for ``X ~ Poisson(expected)``, ``expected = max(rate * window_s,
  min_expected)``, ``rate`` the item's exponentially weighted click rate before the window
  (time constant ``reference_s``);
* ``d / c < max_distinct_share``: the clicks come from few users; a genuinely trending item is
  clicked by many.

The reference rate is a decayed count ``sum(exp(-(edge - t) / reference_s))`` over the clicks that
have left the window (``t <= edge = now - window_s``), divided by ``reference_s * (1 -
exp(-observed / reference_s))`` so that it is unbiased before a full time constant has been seen.
Flagged clicks never enter it, so an attack does not teach the baseline to expect the next one. No
item is flagged during the first ``min_reference_s`` of the stream (a detector that has just started
knows no rates; with 0, every item starts at ``min_expected``).

A flagged item's span runs from the start of the anomalous window to ``window_s`` after the last
anomalous evaluation (cool-down); every counted event on the item in it is flagged: genuine clicks
in those minutes cannot be told from poisoned ones, and losing a few costs retraining far less than
learning from an attack.

The stream is evaluated at most every ``step_s`` of event time and at the end of each update, so a
long catch-up batch is judged as if it had arrived live, in steps.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from recdrill.errors import ConfigError
from recdrill.monitor.anomaly.flags import BoolArray, EventBatch, Flag, FlagBook, FloatArray, ObjectArray

WINDOW_S = 60.0
REFERENCE_S = 3600.0
P_VALUE = 1e-6
MIN_CLICKS = 20
MAX_DISTINCT_SHARE = 0.3
MIN_EXPECTED = 1.0
MIN_REFERENCE_S = 300.0
STEP_S = 5.0
IntArray = NDArray[np.intp] | NDArray[np.int64]
RENORMALISE_AFTER = 50.0  # time constants: exp(50) is far from float64's overflow at exp(709)


class ItemClickSpikeRule:
    """Flags items whose clicks jump far above their usual rate while coming from few users.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> detector = ItemClickSpikeRule()
        >>> ts = np.sort(rng.uniform(0, 600, 3000))  # 600 s of clicks by 300 users on 100 items
        >>> users, items = rng.integers(0, 300, 3000).astype(str), rng.integers(0, 100, 3000).astype(str)
        >>> _ = detector.update(EventBatch.create(users, items, ["click"] * 3000, ts))
        >>> bots = EventBatch.create(["b1", "b2", "b3"] * 20, ["7"] * 60, ["click"] * 60, 600 + np.arange(60))
        >>> int(detector.update(bots).sum()), sorted(detector.flagged_items), detector.episodes
        (60, ['7'], 1)
    """

    kind = "item_click_spike"

    def __init__(
        self,
        window_s: float = WINDOW_S,
        reference_s: float = REFERENCE_S,
        p_value: float = P_VALUE,
        min_clicks: int = MIN_CLICKS,
        max_distinct_share: float = MAX_DISTINCT_SHARE,
        min_expected: float = MIN_EXPECTED,
        min_reference_s: float = MIN_REFERENCE_S,
        step_s: float = STEP_S,
        events: tuple[str, ...] = ("click",),
    ) -> None:
        if min(window_s, reference_s, step_s, min_expected) <= 0 or not 0 < p_value < 1:
            raise ConfigError(
                "ItemClickSpikeRule needs positive window_s, reference_s, step_s, min_expected "
                f"and 0 < p_value < 1, got {window_s}, {reference_s}, {step_s}, {min_expected}, {p_value}"
            )
        if min_clicks < 1 or not 0 < max_distinct_share <= 1 or min_reference_s < 0 or not events:
            raise ConfigError(
                "ItemClickSpikeRule needs min_clicks >= 1, 0 < max_distinct_share <= 1, "
                f"min_reference_s >= 0 and some events, got {min_clicks}, {max_distinct_share}, "
                f"{min_reference_s}, {events}"
            )
        self.window_s, self.reference_s, self.p_value = window_s, reference_s, p_value
        self.min_clicks, self.max_distinct_share = min_clicks, max_distinct_share
        self.min_expected, self.min_reference_s, self.step_s = min_expected, min_reference_s, step_s
        self.events = events
        self.book = FlagBook(self.kind)
        self.flags: list[Flag] = []
        self.now = -np.inf
        self._start = np.inf  # first event time (none yet): how much reference exists
        self._origin = 0.0  # decayed counts are kept as of this time
        self._codes: dict[str, int] = {}
        self._names = np.empty(0, dtype=object)
        self._reference = np.zeros(0, dtype=np.float64)
        self._items = np.empty(0, dtype=np.int64)  # the window's clicks: item codes, users, times
        self._users = np.empty(0, dtype=np.int64)  # as hashes (see UserBurstRule)
        self._ts = np.empty(0, dtype=np.float64)
        self._flagged = np.empty(0, dtype=bool)

    @property
    def flagged_items(self) -> frozenset[str]:
        """Items flagged at the latest event time seen."""
        return self.book.live(self.now)

    @property
    def episodes(self) -> int:
        """Spikes found so far (a spike that goes on counts once)."""
        return self.book.episodes

    def update(self, batch: EventBatch) -> BoolArray:
        """Add ``batch``'s counted events and evaluate; returns which of its events are flagged.

        ``flags`` then holds the spans this update opened or extended.
        """
        self.flags = []
        if batch.size == 0:
            return np.zeros(0, dtype=bool)
        if self._start == np.inf:
            self._start = self._origin = float(batch.ts.min())
        counted = np.isin(batch.events.astype(str), np.asarray(list(self.events), dtype=str))
        chosen = np.flatnonzero(counted)
        chosen = chosen[np.argsort(batch.ts[chosen], kind="stable")]
        steps = np.floor(batch.ts[chosen] / self.step_s)
        cuts = np.flatnonzero(np.diff(steps)) + 1
        for part in np.split(chosen, cuts):
            if len(part):
                self._add(batch.items[part], batch.users[part], batch.ts[part])
                self._evaluate(float(batch.ts[part].max()))
        if float(batch.ts.max()) > self.now:  # later events of other kinds move the clock on
            self._evaluate(float(batch.ts.max()))
        mask = counted & self.book.match(batch.items, batch.ts)
        self.book.expire(self.now)  # after matching: a long batch may hold a spike that has ended
        return mask

    def _add(self, items: ObjectArray, users: ObjectArray, ts: FloatArray) -> None:
        import pandas as pd  # imported on first use: serving workers load this module at start-up

        names, uniques = pd.factorize(items)
        fresh = [name for name in uniques if name not in self._codes]
        for name in fresh:  # per distinct new item, not per event
            self._codes[name] = len(self._codes)
        if fresh:
            self._names = np.concatenate([self._names, np.asarray(fresh, dtype=object)])
            self._reference = np.concatenate([self._reference, np.zeros(len(fresh))])
        codes = np.fromiter((self._codes[name] for name in uniques), np.int64, len(uniques))[names]
        self._items = np.concatenate([self._items, codes])
        self._users = np.concatenate([self._users, np.fromiter(map(hash, users), np.int64, len(users))])
        self._ts = np.concatenate([self._ts, ts])
        self._flagged = np.concatenate([self._flagged, np.zeros(len(ts), dtype=bool)])

    def _evaluate(self, now: float) -> None:
        self.now = now = max(self.now, now)
        edge = now - self.window_s
        self._fold(edge)
        if now - self._start < self.min_reference_s or len(self._items) == 0:
            return
        counts = np.bincount(self._items, minlength=len(self._names))
        candidates = np.flatnonzero(counts >= self.min_clicks)
        if len(candidates) == 0:
            return
        expected = np.maximum(self._rate(candidates, edge) * self.window_s, self.min_expected)
        from scipy.stats import poisson  # imported on first use, like pandas above

        surprising = candidates[poisson.sf(counts[candidates] - 1, expected) < self.p_value]
        if len(surprising) == 0:  # the usual case: count distinct users only when it matters
            return
        hit = surprising[self._distinct(surprising) < self.max_distinct_share * counts[surprising]]
        if len(hit):
            since, until = np.full(len(hit), edge), np.full(len(hit), now + self.window_s)
            self.flags += self.book.record(self._names[hit], since, until)
            self._flagged |= self.book.match(self._names[self._items], self._ts)

    def _fold(self, edge: float) -> None:
        """Move clicks that left the window into the reference (all but the flagged ones)."""
        leaving = self._ts <= edge
        if not leaving.any():
            return
        if (edge - self._origin) > RENORMALISE_AFTER * self.reference_s:
            self._reference *= np.exp((self._origin - edge) / self.reference_s)
            self._origin = edge
        into = leaving & ~self._flagged
        weights = np.exp((self._ts[into] - self._origin) / self.reference_s)
        np.add.at(self._reference, self._items[into], weights)
        keep = ~leaving
        self._items, self._users = self._items[keep], self._users[keep]
        self._ts, self._flagged = self._ts[keep], self._flagged[keep]

    def _rate(self, codes: IntArray, edge: float) -> FloatArray:
        """Clicks per second of each item before ``edge``, exponentially weighted, bias-corrected."""
        if edge <= self._start:  # no history yet (min_reference_s=0): only min_expected applies
            return np.zeros(len(codes))
        decayed = self._reference[codes] * np.exp((self._origin - edge) / self.reference_s)
        seen = -np.expm1(-(edge - self._start) / self.reference_s)
        rate: FloatArray = decayed / (self.reference_s * seen)
        return rate

    def _distinct(self, codes: IntArray) -> IntArray:
        """Distinct users among the window's clicks on each of these items."""
        inside = np.isin(self._items, codes)
        items, users = self._items[inside], self._users[inside]
        order = np.lexsort((users, items))
        items, users = items[order], users[order]
        first = np.ones(len(items), dtype=bool)
        first[1:] = (np.diff(items) != 0) | (np.diff(users) != 0)
        per_item: IntArray = np.bincount(items[first], minlength=len(self._names))[codes]
        return per_item
