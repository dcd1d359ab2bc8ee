"""Fault points inside the request path, shared by every worker through a small SQLite table.

A fault is data (point, kind, parameters, expiry). Workers read the active set at most every
``refresh_s`` seconds, so a fault set through one worker reaches all of them, and a fault past its
TTL stops acting by itself, whether or not anyone calls again.

Points and their kinds (:data:`KINDS_BY_POINT`):

- ``ranker``, ``fallback`` (the model tiers, :class:`FaultPoint`): ``latency``, ``error``, ``nan``;
- ``cache`` (the last-good cache, :class:`CacheFaults`): ``empty`` (lookups miss, nothing is
  stored) and ``stale`` (the cache answers before the primary for users it holds, as a
  misconfigured cache in front of the model would);
- ``feedback`` (the feedback log's writer, :class:`FeedbackFaults`): ``latency`` (each group commit
  waits), ``error`` (a share of commits fail) and ``full`` (SQLite's own SQLITE_FULL, from a page
  limit at the file's current size).
"""

from __future__ import annotations

import asyncio
import math
import random
import sqlite3
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from recdrill._sqlite import switch_to_wal

FaultPointName = Literal["ranker", "fallback", "cache", "feedback"]
FaultKind = Literal["latency", "error", "nan", "empty", "stale", "full"]
FAULT_POINTS: tuple[str, ...] = get_args(FaultPointName)
FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)
_MODEL_KINDS = ("latency", "error", "nan")
KINDS_BY_POINT: dict[str, tuple[str, ...]] = {
    "ranker": _MODEL_KINDS,
    "fallback": _MODEL_KINDS,
    "cache": ("empty", "stale"),
    "feedback": ("latency", "error", "full"),
}


def validate_fault(point: str, kind: str) -> None:
    """Raise ValueError, naming both, when ``kind`` is not a kind of ``point``."""
    kinds = KINDS_BY_POINT.get(point)
    if kinds is None:
        raise ValueError(f"unknown fault point {point!r}; points: {', '.join(FAULT_POINTS)}")
    if kind not in kinds:
        raise ValueError(f"fault kind {kind!r} does not fit point {point!r} (its kinds: {', '.join(kinds)})")


class InjectedFaultError(RuntimeError):
    """Raised by an ``error`` fault: the tier fails as a real dependency would."""


@dataclass(frozen=True)
class Fault:
    """One injected fault. ``rate`` is the share of requests it hits; times are epoch seconds."""

    id: str
    point: str
    kind: str
    latency_ms: float
    rate: float
    created_at: float
    expires_at: float

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ttl_left_s": max(0.0, self.expires_at - time.time())}


class FaultStore:
    """Active faults in SQLite (``faults.db`` in the state folder), safe across processes."""

    def __init__(self, path: str | Path, refresh_s: float = 0.1) -> None:
        self.path = Path(path)
        self.refresh_s = refresh_s
        self._lock = threading.Lock()
        self._connection = sqlite3.connect(self.path, check_same_thread=False, timeout=5.0)
        switch_to_wal(self._connection)
        self._connection.execute(
            "CREATE TABLE IF NOT EXISTS faults (id TEXT PRIMARY KEY, point TEXT, kind TEXT, "
            "latency_ms REAL, rate REAL, created_at REAL, expires_at REAL)"
        )
        self._connection.commit()
        self._cached: tuple[Fault, ...] = ()
        # -inf, not -1: monotonic time starts near 0 at boot, so "-1" could look fresh to a long refresh_s.
        self._cached_at = -math.inf

    def add(self, point: str, kind: str, ttl_s: float, latency_ms: float = 0.0, rate: float = 1.0) -> Fault:
        """Store a fault for ``ttl_s`` seconds; ValueError when ``kind`` does not fit a known ``point``
        (a point no code reads, as a test may set, is stored and acts nowhere)."""
        if point in KINDS_BY_POINT:
            validate_fault(point, kind)
        now = time.time()
        fault = Fault(uuid.uuid4().hex[:12], point, kind, float(latency_ms), float(rate), now, now + ttl_s)
        with self._lock:
            self._connection.execute(
                "DELETE FROM faults WHERE expires_at <= ?", (now,)
            )  # keep the table small
            self._connection.execute(
                "INSERT INTO faults VALUES (?, ?, ?, ?, ?, ?, ?)", tuple(asdict(fault).values())
            )
            self._connection.commit()
            self._cached_at = -math.inf
        return fault

    def remove(self, fault_id: str) -> bool:
        with self._lock:
            # An expired fault is already gone as far as anyone can see: removing it finds nothing.
            deleted = self._connection.execute(
                "DELETE FROM faults WHERE id = ? AND expires_at > ?", (fault_id, time.time())
            ).rowcount
            self._connection.commit()
            self._cached_at = -math.inf
        return bool(deleted)

    def active(self, fresh: bool = False) -> tuple[Fault, ...]:
        """Unexpired faults, re-read from the table at most every ``refresh_s`` seconds (the request
        path), or now (``fresh``: the admin listing, which must not show a fault another worker just
        removed)."""
        now = time.monotonic()
        if fresh or now - self._cached_at >= self.refresh_s:
            with self._lock:
                rows = self._connection.execute(
                    "SELECT * FROM faults WHERE expires_at > ? ORDER BY created_at", (time.time(),)
                ).fetchall()
            self._cached = tuple(Fault(*row) for row in rows)
            self._cached_at = now
        wall = time.time()
        return tuple(f for f in self._cached if f.expires_at > wall)

    def close(self) -> None:
        with self._lock:
            self._connection.close()


class FaultPoint:
    """Applies the active faults of one point to a request: wait, fail, or spoil the scores."""

    def __init__(self, store: FaultStore, point: str, rng: random.Random | None = None) -> None:
        self.store = store
        self.point = point
        self._rng = rng or random.Random()

    def _hits(self) -> list[Fault]:
        return [f for f in self.store.active() if f.point == self.point and self._rng.random() < f.rate]

    async def before_call(self) -> bool:
        """Run latency and error faults; return True when this call's scores must be spoiled (NaN)."""
        hits = self._hits()
        if not hits:
            return False
        delay = sum(f.latency_ms for f in hits if f.kind == "latency")
        if delay > 0:
            await asyncio.sleep(delay / 1000.0)
        if any(f.kind == "error" for f in hits):
            raise InjectedFaultError(f"injected error at {self.point}")
        return any(f.kind == "nan" for f in hits)


class CacheFaults:
    """The ``cache`` point: decides per lookup whether the last-good cache is emptied or stale.

    ``empty``: lookups miss and answers are not stored (a cache flushed or down). ``stale``: the
    router asks the cache before the primary (``Route.first_when``), so a user the cache holds gets
    their old list, blind to what they did since, even while the model is healthy.
    """

    def __init__(self, store: FaultStore, rng: random.Random | None = None) -> None:
        self.store = store
        self._rng = rng or random.Random()

    def _hit(self, kind: str) -> bool:
        return any(
            f.point == "cache" and f.kind == kind and self._rng.random() < f.rate for f in self.store.active()
        )

    def empty(self) -> bool:
        """True when this lookup (or store) must find the cache empty."""
        return self._hit("empty")

    def stale(self) -> bool:
        """True when this request must be answered from the cache first."""
        return self._hit("stale")


class FeedbackFaults:
    """The ``feedback`` point, applied by the feedback log's writer thread before each group commit.

    ``latency`` sleeps before the transaction (outside SQLite's write lock, so other workers' writers
    are not held up: a slow store for this worker, acknowledgements late, nothing lost); ``error``
    fails the whole batch on a share ``rate`` of commits (never acknowledged); ``full`` caps the
    writer connection's ``max_page_count`` at the file's current page count, so SQLite itself fails
    inserts that need a new page with SQLITE_FULL (a size limit standing in for a full disk; rows
    that still fit into free space of existing pages go in, as on a nearly full disk). The cap is
    lifted at the first commit after the fault ends or expires.
    """

    def __init__(self, store: FaultStore, rng: random.Random | None = None) -> None:
        self.store = store
        self._rng = rng or random.Random()
        self._page_limit: int | None = None  # the connection's own max_page_count while capped

    def _active(self) -> list[Fault]:
        try:
            return [f for f in self.store.active() if f.point == "feedback"]
        except (sqlite3.Error, ValueError):  # the store closed at shutdown: no fault can act
            return []

    def before_commit(self, connection: sqlite3.Connection) -> None:
        """Apply the active faults to the commit about to run on ``connection`` (the writer's).

        Raises:
            InjectedFaultError: an ``error`` fault hit this commit.
        """
        active = self._active()
        full = any(f.kind == "full" for f in active)
        if full and self._page_limit is None:
            self._page_limit = int(connection.execute("PRAGMA max_page_count").fetchone()[0])
            pages = int(connection.execute("PRAGMA page_count").fetchone()[0])
            connection.execute(f"PRAGMA max_page_count = {pages}")
        elif not full and self._page_limit is not None:
            connection.execute(f"PRAGMA max_page_count = {self._page_limit}")
            self._page_limit = None
        delay_ms = sum(f.latency_ms for f in active if f.kind == "latency" and self._rng.random() < f.rate)
        if delay_ms > 0:
            time.sleep(delay_ms / 1000.0)
        if any(f.kind == "error" and self._rng.random() < f.rate for f in active):
            raise InjectedFaultError("injected error at feedback: the store refused the commit")

    @property
    def capped(self) -> bool:
        """Whether the writer's page limit is set by a ``full`` fault right now."""
        return self._page_limit is not None
