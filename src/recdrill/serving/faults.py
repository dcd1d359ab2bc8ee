"""Fault points inside the request path, shared by every worker through a small SQLite table.

A fault is data (point, kind, parameters, expiry). Workers read the active set at most every
``refresh_s`` seconds, so a fault set through one worker reaches all of them, and a fault past its
TTL stops acting by itself, whether or not anyone calls again.
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

FaultPointName = Literal["ranker", "fallback"]
FaultKind = Literal["latency", "error", "nan"]
FAULT_POINTS: tuple[str, ...] = get_args(FaultPointName)
FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)


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
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.execute(
            "CREATE TABLE IF NOT EXISTS faults (id TEXT PRIMARY KEY, point TEXT, kind TEXT, "
            "latency_ms REAL, rate REAL, created_at REAL, expires_at REAL)"
        )
        self._connection.commit()
        self._cached: tuple[Fault, ...] = ()
        # -inf, not -1: monotonic time starts near 0 at boot, so "-1" could look fresh to a long refresh_s.
        self._cached_at = -math.inf

    def add(self, point: str, kind: str, ttl_s: float, latency_ms: float = 0.0, rate: float = 1.0) -> Fault:
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

    def active(self) -> tuple[Fault, ...]:
        """Unexpired faults, re-read from the table at most every ``refresh_s`` seconds."""
        now = time.monotonic()
        if now - self._cached_at >= self.refresh_s:
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
