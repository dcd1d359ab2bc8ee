"""What the anomaly detectors share: a batch of events as arrays, and the book of flagged spans.

A flag is a key (a user pseudonym, an item id) and a span of event time ``[since, until]``: every
event of that key in the span is flagged, including events that came before the anomaly was
recognised (they made it up) and, for a cool-down, events shortly after. Spans of one key that touch
merge into one episode; an episode is what ``recdrill_anomalies_total`` counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from recdrill.errors import ConfigError

ObjectArray = NDArray[np.object_]
FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


@dataclass(frozen=True)
class EventBatch:
    """Events as parallel arrays: ``users`` (ids or pseudonyms), ``items``, ``events`` (kinds such
    as ``click``), ``ts`` (event time, epoch seconds).

    Example:
        >>> EventBatch.create(["u1", "u2"], ["i1", "i1"], ["click", "view"], [1.0, 2.0]).size
        2
    """

    users: ObjectArray
    items: ObjectArray
    events: ObjectArray
    ts: FloatArray

    @classmethod
    def create(cls, users: ArrayLike, items: ArrayLike, events: ArrayLike, ts: ArrayLike) -> EventBatch:
        """Build a batch from anything array-like.

        Raises:
            ConfigError: the arrays differ in length, or a timestamp is not finite.
        """
        columns = [np.asarray(c, dtype=object).ravel() for c in (users, items, events)]
        times = np.asarray(ts, dtype=np.float64).ravel()
        lengths = {len(c) for c in (*columns, times)}
        if len(lengths) != 1:
            raise ConfigError(f"an event batch needs arrays of one length, got lengths {sorted(lengths)}")
        if not np.isfinite(times).all():
            raise ConfigError("an event batch needs finite timestamps")
        return cls(columns[0], columns[1], columns[2], times)

    @classmethod
    def empty(cls) -> EventBatch:
        """A batch of no events."""
        return cls.create([], [], [], [])

    @property
    def size(self) -> int:
        """Number of events."""
        return len(self.ts)


@dataclass(frozen=True)
class Flag:
    """One flagged key over ``[since, until]`` (event time). ``new``: the episode began in the
    update that reported it (it was extended otherwise)."""

    kind: str
    key: str
    since: float
    until: float
    new: bool


@dataclass
class FlagBook:
    """The live flags of one detector, keyed by user or item; merges, expires and matches events."""

    kind: str
    spans: dict[str, tuple[float, float]] = field(default_factory=dict)
    episodes: int = 0

    def record(self, keys: ArrayLike, since: ArrayLike, until: ArrayLike) -> list[Flag]:
        """Add spans (one per key, a few per update); returns the resulting flags, merged with
        overlapping live spans of the same key."""
        flags = []
        columns = (np.asarray(keys, dtype=object), np.asarray(since), np.asarray(until))
        for key, start, end in zip(*columns, strict=True):
            old = self.spans.get(key)
            new = old is None or float(start) > old[1]
            span = (float(start), float(end)) if new or old is None else (old[0], max(old[1], float(end)))
            self.spans[key] = span
            self.episodes += new
            flags.append(Flag(self.kind, str(key), span[0], span[1], new))
        return flags

    def expire(self, now: float) -> None:
        """Forget spans whose cool-down has passed."""
        self.spans = {key: span for key, span in self.spans.items() if span[1] >= now}

    def live(self, now: float) -> frozenset[str]:
        """Keys flagged at event time ``now``."""
        return frozenset(key for key, (since, until) in self.spans.items() if since <= now <= until)

    def match(self, keys: ObjectArray, ts: FloatArray) -> BoolArray:
        """Which events (``keys[i]`` at ``ts[i]``) fall in a live span of their key (vectorised)."""
        if not self.spans or len(keys) == 0:
            return np.zeros(len(keys), dtype=bool)
        import pandas as pd  # imported on first use: serving workers load this module at start-up

        index = pd.Index(list(self.spans), dtype=object)
        bounds = np.array(list(self.spans.values()), dtype=np.float64)
        where = index.get_indexer(pd.Index(keys, dtype=object))
        lo, hi = bounds[where, 0], bounds[where, 1]
        hit: BoolArray = (where >= 0) & (ts >= lo) & (ts <= hi)
        return hit
