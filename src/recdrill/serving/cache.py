"""Last-good recommendations per user: what the primary tier last answered, kept for a while.

When the models cannot answer, a user's own recent list is better than best-sellers (Alibaba's
"context list" before the hot pool). The store is bounded (least recently used entries go first)
and entries expire after ``ttl_s``, so a stale list is never served for long.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from cachetools import TTLCache

from recdrill.errors import ConfigError


@dataclass(frozen=True)
class CachedList:
    """One remembered answer in dense item ids, best first."""

    items: np.ndarray
    scores: np.ndarray


CacheKey = tuple[str, str | None]  # (user, category)


class LastGoodCache:
    """A bounded LRU of answers with a time-to-live; ``clock`` is injectable for tests.

    Example:
        >>> now = [0.0]
        >>> cache = LastGoodCache(max_users=2, ttl_s=10, clock=lambda: now[0])
        >>> cache.put(("u1", None), CachedList(np.array([3, 1]), np.array([0.9, 0.5])))
        >>> cache.get(("u1", None)).items.tolist()
        [3, 1]
        >>> now[0] = 10.0
        >>> cache.get(("u1", None)) is None
        True
    """

    def __init__(
        self, max_users: int = 10_000, ttl_s: float = 600.0, clock: Callable[[], float] = time.monotonic
    ):
        if max_users < 1:
            raise ConfigError(f"The 'max_users' parameter of LastGoodCache must be >= 1, got {max_users}")
        if not ttl_s > 0:
            raise ConfigError(f"The 'ttl_s' parameter of LastGoodCache must be > 0, got {ttl_s}")
        self.max_users = max_users
        self.ttl_s = ttl_s
        self._entries: TTLCache[CacheKey, CachedList] = TTLCache(max_users, ttl_s, timer=clock)

    def put(self, key: CacheKey, answer: CachedList) -> None:
        self._entries[key] = answer

    def get(self, key: CacheKey) -> CachedList | None:
        """The entry, or None when absent or expired; a hit counts as a use for LRU eviction."""
        return self._entries.get(key)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        self._entries.expire()
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries
