"""Bot-like bursts from one user: too many events in a sliding window, or too large a share of them.

Rules (``recdrill.monitor.anomaly.monitor`` explains the defaults): an event of user ``u`` at time ``t``
offends when, counting the events in ``(t - window_s, t]``,

* ``u`` sent more than ``max_events`` of them, or
* the window holds at least ``min_window_events`` events and ``u`` sent more than ``max_share`` of them.

A user is flagged from ``window_s`` before their first offending event (the events that made the
burst up) to ``window_s`` after their last one (a cool-down). Counting is exact per event and does
not depend on how the stream is cut into batches: the detector keeps the last ``window_s`` of events
(event time, sorted); per update it counts each new event's window among all traffic with two binary
searches, and among its user's events by sorting only the window's events of the batch's users by
(user, time) and searching again. Users are compared as 64-bit hashes, never as strings.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from recdrill.errors import ConfigError
from recdrill.monitor.anomaly.flags import BoolArray, EventBatch, Flag, FlagBook, FloatArray, ObjectArray

WINDOW_S = 10.0
MAX_EVENTS = 30
MAX_SHARE = 0.25
MIN_WINDOW_EVENTS = 100


class UserBurstRule:
    """Flags users who send events faster than a person could, or who dominate the traffic.

    Example:
        >>> detector = UserBurstRule()
        >>> ts = np.arange(60) * 0.1  # one user, 10 events per second for 6 s
        >>> mask = detector.update(EventBatch.create(["bot"] * 60, ["i"] * 60, ["click"] * 60, ts))
        >>> int(np.argmax(mask)), int(mask.sum()), sorted(detector.flagged_users), detector.episodes
        (0, 60, ['bot'], 1)
        >>> mask = detector.update(EventBatch.create(["bot", "human"], ["i", "i"], ["click"] * 2, [8.0, 8.0]))
        >>> mask.tolist()  # the bot is still in its cool-down
        [True, False]
    """

    kind = "user_burst"

    def __init__(
        self,
        window_s: float = WINDOW_S,
        max_events: int = MAX_EVENTS,
        max_share: float = MAX_SHARE,
        min_window_events: int = MIN_WINDOW_EVENTS,
    ) -> None:
        if window_s <= 0 or max_events < 1 or not 0 < max_share <= 1 or min_window_events < 1:
            raise ConfigError(
                "UserBurstRule needs window_s > 0, max_events >= 1, 0 < max_share <= 1 and "
                f"min_window_events >= 1, got {window_s}, {max_events}, {max_share}, {min_window_events}"
            )
        self.window_s = window_s
        self.max_events = max_events
        self.max_share = max_share
        self.min_window_events = min_window_events
        self.book = FlagBook(self.kind)
        self.flags: list[Flag] = []
        self.now = -np.inf
        self._hashes = np.empty(0, dtype=np.int64)  # the last window_s of events (event time)
        self._ts = np.empty(0, dtype=np.float64)

    @property
    def flagged_users(self) -> frozenset[str]:
        """Users flagged at the latest event time seen."""
        return self.book.live(self.now)

    @property
    def episodes(self) -> int:
        """Bursts found so far (a burst that goes on counts once)."""
        return self.book.episodes

    def update(self, batch: EventBatch) -> BoolArray:
        """Count ``batch`` into the window; returns which of its events belong to a flagged user.

        ``flags`` then holds the spans this update opened or extended (to quarantine earlier events).
        """
        self.flags = []
        if batch.size == 0:
            return np.zeros(0, dtype=bool)
        # Users as 64-bit hashes (Python's own, which a str caches), computed once per event:
        # numbers sort and match far faster than strings; two users share one with a chance of
        # about 1e-19 per pair, and the hashes never leave this process.
        hashes = np.fromiter(map(hash, batch.users), np.int64, batch.size)
        offending = self._offending(hashes, batch.ts)
        self._record(batch.users[offending], batch.ts[offending])
        self.now = max(self.now, float(batch.ts.max()))
        self._remember(hashes, batch.ts)
        mask = self.book.match(batch.users, batch.ts)
        self.book.expire(self.now)  # after matching: a long batch may hold a burst that has ended
        return mask

    def _offending(self, hashes: NDArray[np.int64], ts: FloatArray) -> BoolArray:
        """Which of the batch's events offend, counted among the window's and the batch's."""
        import pandas as pd  # imported on first use: serving workers load this module at start-up

        total = _in_window(self._ts, ts, self.window_s) + _in_window(np.sort(ts), ts, self.window_s)
        # Per user: only the window's events of users in the batch matter; sort just those.
        mine = pd.Series(self._hashes).isin(pd.unique(hashes)).to_numpy()
        users = np.concatenate([self._hashes[mine], hashes])
        times = np.concatenate([self._ts[mine], ts])
        codes, _ = pd.factorize(users)
        relative = times - times.min()
        # One key per (user, time): users are blocks further apart than any window.
        stride = float(relative.max()) + 2 * self.window_s + 1.0
        keys = codes * stride + relative
        per_user = _in_window(np.sort(keys), keys[int(mine.sum()) :], self.window_s)
        shared = (total >= self.min_window_events) & (per_user > self.max_share * total)
        offending: BoolArray = (per_user > self.max_events) | shared
        return offending

    def _remember(self, hashes: NDArray[np.int64], ts: FloatArray) -> None:
        """Keep the last ``window_s`` of events, sorted by time (a merge, as batches mostly come
        in order), so counting all traffic is two binary searches."""
        order = np.argsort(ts, kind="stable")
        in_order = len(self._ts) == 0 or ts[order[0]] >= self._ts[-1]
        all_hashes = np.concatenate([self._hashes, hashes[order]])
        all_ts = np.concatenate([self._ts, ts[order]])
        if not in_order:
            resort = np.argsort(all_ts, kind="stable")
            all_hashes, all_ts = all_hashes[resort], all_ts[resort]
        first = int(np.searchsorted(all_ts, self.now - self.window_s, side="right"))
        self._hashes, self._ts = all_hashes[first:], all_ts[first:]

    def _record(self, users: ObjectArray, ts: FloatArray) -> None:
        """One span per run of a user's offending events with gaps of at most two windows."""
        if len(users) == 0:
            return
        import pandas as pd  # imported on first use (see _offending)

        codes, uniques = pd.factorize(users)
        order = np.lexsort((ts, codes))
        codes, ts = codes[order], ts[order]
        starts = np.flatnonzero(
            np.concatenate([[True], (np.diff(codes) != 0) | (np.diff(ts) > 2 * self.window_s)])
        )
        firsts, lasts = ts[starts], np.maximum.reduceat(ts, starts)
        keys = np.asarray(uniques, dtype=object)[codes[starts]]
        self.flags = list(self.book.record(keys, firsts - self.window_s, lasts + self.window_s))


def _in_window(sorted_values: FloatArray, values: FloatArray, window: float) -> NDArray[np.intp]:
    """For each value ``v``, how many of ``sorted_values`` lie in ``(v - window, v]``."""
    upper = np.searchsorted(sorted_values, values, side="right")
    return upper - np.searchsorted(sorted_values, values - window, side="right")
