"""Per-key rate limits: a token bucket for each authenticated key, in each worker's memory.

A key may make ``burst`` requests at once and ``rate_per_s`` a second on average after that. Buckets
exist only for keys that authenticated, so unknown keys cannot grow the table. Each worker process
keeps its own buckets (sharing them would cost a database round trip per request), so with N
workers a key can get up to N times its rate: set the per-worker figure accordingly.

Hand-written rather than taken from ``limits`` (slowapi's engine): that library offers fixed and
moving windows, not a token bucket, and its storage layer is more than a dict needs.

>>> clock = iter([0.0, 0.0, 0.0, 0.5]).__next__
>>> limiter = RateLimiter(rate_per_s=2.0, burst=2, clock=clock)
>>> [limiter.wait_s("k") for _ in range(3)], limiter.wait_s("k")
([0.0, 0.0, 0.5], 0.0)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from recdrill.errors import ConfigError


@dataclass
class _Bucket:
    rate_per_s: float
    burst: int
    tokens: float
    updated: float


class RateLimiter:
    """Token buckets by key name, with a default rate and burst that a key may override."""

    def __init__(self, rate_per_s: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ConfigError(f"rate limit must be positive, got rate_per_s={rate_per_s!r} burst={burst!r}")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def wait_s(self, name: str, rate_per_s: float | None = None, burst: int | None = None) -> float:
        """Take a token for ``name``: 0.0 when the request may go ahead, else the seconds to wait."""
        rate = rate_per_s or self.rate_per_s
        size = burst or self.burst
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(name)
            if bucket is None or (bucket.rate_per_s, bucket.burst) != (rate, size):
                bucket = self._buckets[name] = _Bucket(rate, size, float(size), now)
            bucket.tokens = min(float(size), bucket.tokens + (now - bucket.updated) * rate)
            bucket.updated = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / rate
