"""TierRouter with real tiers (ItemKNN primary, popularity last) and the SQLite fault table."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from recdrill.data.dataset import Dataset
from recdrill.data.shopsim import ShopSim
from recdrill.data.snapshot import ShopSnapshot
from recdrill.models.base import BaseRecommender
from recdrill.models.itemknn import ItemKNNRecommender
from recdrill.serving.batching import MicroBatcher
from recdrill.serving.breaker import BreakerConfig, BreakerState, CircuitBreaker
from recdrill.serving.fault_points import FaultPoint, FaultStore
from recdrill.serving.router import Route, RoutedAnswer, TierRouter
from recdrill.serving.tiers import ModelTier, PopularityTier, Tier, TierAnswer, TierRequest

DEADLINE_S = 0.05


@dataclass(frozen=True)
class Shop:
    dataset: Dataset
    model: ItemKNNRecommender
    snapshot: ShopSnapshot


@pytest.fixture(scope="module")
def shop() -> Shop:
    dataset = ShopSim(n_items=300, n_users=150, n_events=4000, seed=3).generate()
    return Shop(dataset, ItemKNNRecommender(neighbours=30).fit(dataset), ShopSnapshot.from_dataset(dataset))


@pytest.fixture
def faults(tmp_path: Path) -> Iterator[FaultStore]:
    store = FaultStore(tmp_path / "faults.db")
    yield store
    store.close()


def model_tier(
    model: BaseRecommender, faults: FaultStore, point: str = "ranker", name: str = "primary"
) -> ModelTier:
    """A model as a tier, scored off the event loop (batching on, as served)."""
    return ModelTier(MicroBatcher(model.score), model.n_items_, FaultPoint(faults, point), name=name)


@pytest.fixture
def router(shop: Shop, faults: FaultStore) -> TierRouter:
    # Generous by default, so a loaded machine never turns a test about errors into one about lateness;
    # the tests about the deadline set DEADLINE_S themselves.
    return TierRouter([model_tier(shop.model, faults)], PopularityTier(shop.snapshot), deadline_s=1.0)


def history_of(shop: Shop, user: int = 0) -> np.ndarray:
    return shop.snapshot.histories.row(user).astype(np.int64)


def route(router: TierRouter, request: TierRequest) -> RoutedAnswer:
    return asyncio.run(router.route(request))


class _Recorded:
    """A real tier, wrapped to record how each call to it ended: ``answered``, ``failed``, or
    ``cancelled`` (the router cut it off). Tells "gave up at the deadline" from "waited the call
    out", and "skipped" from "called", without timing anything."""

    def __init__(self, tier: Tier) -> None:
        self.tier = tier
        self.name = tier.name
        self.calls: list[str] = []

    async def serve(self, request: TierRequest) -> TierAnswer:
        try:
            answer = await self.tier.serve(request)
        except asyncio.CancelledError:
            self.calls.append("cancelled")
            raise
        except Exception:
            self.calls.append("failed")
            raise
        self.calls.append("answered")
        return answer


def test_no_fault_is_served_by_the_primary_tier_with_the_models_own_ranking(
    shop: Shop, router: TierRouter
) -> None:
    history = history_of(shop)
    routed = route(router, TierRequest(history, k=10))
    assert routed.served_by == "primary" and routed.skipped == []
    expected = shop.model.recommend([history.tolist()], k=10)
    assert routed.answer.items.tolist() == expected.items[0].tolist()
    assert np.allclose(routed.answer.scores, expected.scores[0])


def test_latency_past_the_deadline_is_skipped_as_late_and_popular_answers(
    shop: Shop, faults: FaultStore
) -> None:
    primary = _Recorded(model_tier(shop.model, faults))
    router = TierRouter([primary], PopularityTier(shop.snapshot), deadline_s=DEADLINE_S)
    faults.add("ranker", "latency", ttl_s=60, latency_ms=500)
    routed = route(router, TierRequest(history_of(shop), k=10))
    assert routed.served_by == "popular"
    assert routed.skipped == [("primary", "late")]
    assert len(routed.answer.items) == 10
    # The router gave up at the deadline (the 500 ms sleep was cancelled), not after the sleep: an
    # answer after it would also be "late", but recorded as answered.
    assert primary.calls == ["cancelled"]


def test_latency_within_the_deadline_still_serves_primary(
    shop: Shop, router: TierRouter, faults: FaultStore
) -> None:
    faults.add("ranker", "latency", ttl_s=60, latency_ms=5)
    routed = route(router, TierRequest(history_of(shop), k=10))
    assert routed.served_by == "primary" and routed.skipped == []


def test_error_fault_is_skipped_as_error(shop: Shop, router: TierRouter, faults: FaultStore) -> None:
    faults.add("ranker", "error", ttl_s=60)
    routed = route(router, TierRequest(history_of(shop), k=10))
    assert routed.served_by == "popular"
    assert routed.skipped == [("primary", "error")]


def test_nan_fault_is_skipped_as_invalid_and_no_nan_is_returned(
    shop: Shop, router: TierRouter, faults: FaultStore
) -> None:
    faults.add("ranker", "nan", ttl_s=60)
    routed = route(router, TierRequest(history_of(shop), k=10))
    assert routed.served_by == "popular"
    assert routed.skipped == [("primary", "invalid")]
    assert np.all(np.isfinite(routed.answer.scores))


def test_fault_at_rate_zero_never_hits(shop: Shop, router: TierRouter, faults: FaultStore) -> None:
    faults.add("ranker", "error", ttl_s=60, rate=0.0)
    for _ in range(20):
        assert route(router, TierRequest(history_of(shop), k=5)).served_by == "primary"


@pytest.mark.parametrize("fault", [None, "error"])
def test_category_restriction_is_honoured_by_both_tiers(
    shop: Shop, router: TierRouter, faults: FaultStore, fault: str | None
) -> None:
    if fault is not None:
        faults.add("ranker", fault, ttl_s=60)
    name = shop.snapshot.category_names[0]
    allowed = shop.snapshot.category_items(name)
    assert allowed is not None and len(allowed) > 20
    routed = route(router, TierRequest(history_of(shop, 1), k=10, allowed=allowed))
    assert routed.served_by == ("primary" if fault is None else "popular")
    assert len(routed.answer.items) == 10
    assert set(routed.answer.items.tolist()) <= set(allowed.tolist())


@pytest.mark.parametrize("fault", [None, "nan"])
def test_history_items_are_never_returned(
    shop: Shop, router: TierRouter, faults: FaultStore, fault: str | None
) -> None:
    if fault is not None:
        faults.add("ranker", fault, ttl_s=60)
    # The most popular items as history: popularity would rank them first if they were not excluded.
    popular_first = np.argsort(-shop.snapshot.item_counts, kind="stable")[:15].astype(np.int64)
    for history in (history_of(shop, 2), popular_first):
        routed = route(router, TierRequest(history, k=20))
        assert routed.served_by == ("primary" if fault is None else "popular")
        assert len(routed.answer.items) == 20
        assert not set(routed.answer.items.tolist()) & set(history.tolist())


def test_popular_tier_with_a_tiny_category_returns_fewer_items_never_excluded_ones(shop: Shop) -> None:
    allowed = np.array([1, 2, 3], dtype=np.int64)
    answer = asyncio.run(
        PopularityTier(shop.snapshot).serve(TierRequest(np.array([2], dtype=np.int64), 10, allowed))
    )
    assert sorted(answer.items.tolist()) == [1, 3]
    assert np.all(np.isfinite(answer.scores))


class _SlowTier:
    """Answers correctly, but blocks past the deadline without yielding to the event loop."""

    name = "slow"

    async def serve(self, request: TierRequest) -> TierAnswer:
        time.sleep(DEADLINE_S * 2)
        return TierAnswer(np.arange(request.k), np.ones(request.k, dtype=np.float32))


class _OverfullTier:
    """Returns more items than asked for: a malformed answer."""

    name = "overfull"

    async def serve(self, request: TierRequest) -> TierAnswer:
        return TierAnswer(np.arange(request.k + 1), np.ones(request.k + 1, dtype=np.float32))


def test_an_answer_that_arrives_after_the_deadline_is_discarded(shop: Shop) -> None:
    router = TierRouter([_SlowTier()], PopularityTier(shop.snapshot), deadline_s=DEADLINE_S)
    routed = route(router, TierRequest(history_of(shop), k=5))
    assert routed.served_by == "popular" and routed.skipped == [("slow", "late")]


def test_tiers_are_tried_in_order_and_each_skip_is_recorded(shop: Shop, faults: FaultStore) -> None:
    faults.add("ranker", "error", ttl_s=60)
    tiers = [_OverfullTier(), model_tier(shop.model, faults)]
    router = TierRouter(tiers, PopularityTier(shop.snapshot), deadline_s=1.0)
    routed = route(router, TierRequest(history_of(shop), k=5))
    assert routed.served_by == "popular"
    assert routed.skipped == [("overfull", "invalid"), ("primary", "error")]


# --- circuit breakers -------------------------------------------------------------------------


def test_an_open_tier_is_skipped_at_once_without_calling_it(shop: Shop, faults: FaultStore) -> None:
    now = [0.0]
    breaker = CircuitBreaker("primary", BreakerConfig(min_calls=3, open_s=60), clock=lambda: now[0])
    primary = _Recorded(model_tier(shop.model, faults))
    router = TierRouter([Route(primary, breaker=breaker)], PopularityTier(shop.snapshot), deadline_s=1.0)
    request = TierRequest(history_of(shop), k=10)
    faults.add("ranker", "error", ttl_s=60)
    for _ in range(3):
        assert route(router, request).skipped == [("primary", "error")]
    assert breaker.state is BreakerState.OPEN
    assert primary.calls == ["failed"] * 3
    # Now a 500 ms stall: an open breaker must not even start the call.
    router.deadline_s = DEADLINE_S
    faults.add("ranker", "latency", ttl_s=60, latency_ms=500)
    routed = route(router, request)
    assert routed.served_by == "popular" and routed.skipped == [("primary", "open")]
    assert primary.calls == ["failed"] * 3  # the tier was not called at all
    assert breaker.counts() == (3, 3, 3)  # the skipped call was not counted as a call


def test_late_answers_count_as_failures_and_trip_the_breaker(shop: Shop, faults: FaultStore) -> None:
    breaker = CircuitBreaker("primary", BreakerConfig(min_calls=2, open_s=60))
    primary = model_tier(shop.model, faults)
    router = TierRouter([Route(primary, breaker=breaker)], PopularityTier(shop.snapshot), deadline_s=0.03)
    faults.add("ranker", "latency", ttl_s=60, latency_ms=200)
    request = TierRequest(history_of(shop), k=10)
    assert [route(router, request).skipped for _ in range(3)] == [
        [("primary", "late")],
        [("primary", "late")],
        [("primary", "open")],
    ]


def test_each_tier_gets_only_its_share_of_the_deadline(shop: Shop, faults: FaultStore) -> None:
    faults.add("ranker", "latency", ttl_s=60, latency_ms=400)
    slow = _Recorded(model_tier(shop.model, faults))
    request = TierRequest(history_of(shop), k=10)
    # The control: with the whole of a generous deadline, the 400 ms call answers.
    roomy = TierRouter([Route(slow, share=1.0)], PopularityTier(shop.snapshot), deadline_s=60.0)
    assert route(roomy, request).served_by == "primary" and slow.calls == ["answered"]
    router = TierRouter([Route(slow, share=0.25)], PopularityTier(shop.snapshot), deadline_s=0.8)
    routed = route(router, request)
    # 0.25 of 800 ms is 200 ms: the 400 ms call is cut there (cancelled, not waited out), though
    # the deadline had room for it.
    assert routed.served_by == "popular" and routed.skipped == [("primary", "late")]
    assert slow.calls == ["answered", "cancelled"]
