"""LastGoodCache (LRU eviction, TTL expiry on an injected clock) and the cache tier over it."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from recdrill.errors import ConfigError
from recdrill.serving.cache import CachedList, LastGoodCache
from recdrill.serving.tiers import CachedTier, TierRequest, TierSkip


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def entry(*items: int) -> CachedList:
    return CachedList(np.array(items, dtype=np.int64), np.linspace(1.0, 0.5, len(items)).astype(np.float32))


def test_the_least_recently_used_user_is_evicted_first() -> None:
    cache = LastGoodCache(max_users=2, ttl_s=100, clock=Clock())
    cache.put(("a", None), entry(1))
    cache.put(("b", None), entry(2))
    assert cache.get(("a", None)) is not None  # a is now more recent than b
    cache.put(("c", None), entry(3))
    assert ("b", None) not in cache
    assert ("a", None) in cache and ("c", None) in cache
    assert len(cache) == 2


def test_writing_a_user_again_refreshes_it() -> None:
    cache = LastGoodCache(max_users=2, ttl_s=100, clock=Clock())
    cache.put(("a", None), entry(1))
    cache.put(("b", None), entry(2))
    cache.put(("a", None), entry(7))
    cache.put(("c", None), entry(3))
    found = cache.get(("a", None))
    assert found is not None and found.items.tolist() == [7]
    assert ("b", None) not in cache


def test_an_entry_expires_exactly_at_its_ttl() -> None:
    clock = Clock()
    cache = LastGoodCache(max_users=10, ttl_s=30, clock=clock)
    cache.put(("a", None), entry(1))
    clock.now = 10.0
    cache.put(("b", None), entry(2))
    clock.now = 29.5
    assert cache.get(("a", None)) is not None  # reading does not extend the TTL
    clock.now = 30.0
    assert cache.get(("a", None)) is None
    assert cache.get(("b", None)) is not None and len(cache) == 1
    clock.now = 40.0
    assert cache.get(("b", None)) is None and len(cache) == 0


def test_category_is_part_of_the_key() -> None:
    cache = LastGoodCache(clock=Clock())
    cache.put(("a", "Shoes"), entry(1))
    assert cache.get(("a", None)) is None
    assert cache.get(("a", "Shoes")) is not None


@pytest.mark.parametrize(("size", "ttl"), [(0, 10.0), (10, 0.0)])
def test_bad_sizes_are_refused(size: int, ttl: float) -> None:
    with pytest.raises(ConfigError, match="LastGoodCache"):
        LastGoodCache(max_users=size, ttl_s=ttl)


def serve(tier: CachedTier, history: list[int], k: int = 10, user: str | None = "a") -> list[int]:
    request = TierRequest(np.array(history, dtype=np.int64), k, user=user)
    return asyncio.run(tier.serve(request)).items.tolist()


def test_cache_tier_serves_the_list_minus_items_seen_since_and_at_most_k() -> None:
    cache = LastGoodCache(clock=Clock())
    cache.put(("a", None), entry(5, 3, 9, 1))
    tier = CachedTier(cache)
    assert serve(tier, [7]) == [5, 3, 9, 1]
    assert serve(tier, [3, 7]) == [5, 9, 1]
    assert serve(tier, [], k=2) == [5, 3]


@pytest.mark.parametrize(("user", "history"), [(None, [1]), ("someone-else", [1]), ("a", [5, 3])])
def test_cache_tier_skips_with_miss_when_it_has_nothing(user: str | None, history: list[int]) -> None:
    cache = LastGoodCache(clock=Clock())
    cache.put(("a", None), entry(5, 3))
    with pytest.raises(TierSkip) as skip:
        serve(CachedTier(cache), history, user=user)
    assert skip.value.reason == "miss"
