"""The fault table (FaultStore, FaultPoint) and the ``cache`` and ``feedback`` fault points, in process:
a real chain (ItemKNN on saved folders, the SQLite fault table) and a real FeedbackLog in tmp_path.

Live-server tests of the same faults, through the drill catalogue, are in
tests/drills/faults/test_cache.py and tests/drills/faults/test_store.py.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from recdrill.data.dataset import Dataset
from recdrill.data.pseudonymise import Pseudonymiser
from recdrill.data.snapshot import ShopSnapshot
from recdrill.errors import FeedbackLogError
from recdrill.models.itemknn import ItemKNNRecommender
from recdrill.serving import fault_points
from recdrill.serving.cache import CachedList, LastGoodCache
from recdrill.serving.config import ServeConfig
from recdrill.serving.fault_points import FaultPoint, FaultStore, FeedbackFaults
from recdrill.serving.feedback.log import FeedbackLog
from recdrill.serving.feedback.schema import FeedbackEvent
from recdrill.serving.generation import Generation, WorkerResources, load_generation
from recdrill.serving.metrics import ServingMetrics
from recdrill.serving.router import RoutedAnswer
from recdrill.serving.schemas import FaultRequest, FeedbackLookupRequest
from recdrill.serving.tiers import TierRequest

PSEUDONYMS = Pseudonymiser(b"k" * 32)


@pytest.fixture
def resources(tmp_path: Path) -> Iterator[WorkerResources]:
    faults = FaultStore(tmp_path / "faults.db", refresh_s=0.0)  # every check re-reads: no waiting
    config = ServeConfig(tmp_path / "unused", tmp_path, deadline_ms=1000.0)
    yield WorkerResources(config, ServingMetrics(), faults, LastGoodCache())
    faults.close()


@pytest.fixture
def generation(resources: WorkerResources, tmp_path: Path, chain_shop: Dataset) -> Iterator[Generation]:
    folder = tmp_path / "model"
    ItemKNNRecommender(neighbours=10).fit(chain_shop).save(folder)
    ShopSnapshot.from_dataset(chain_shop).save(folder)
    loaded = load_generation(folder, resources)  # no fallback/: primary, cache, category, popular
    yield loaded
    loaded.close()


def route(generation: Generation, history: list[int], user: str | None = "u1") -> RoutedAnswer:
    request = TierRequest(np.array(history, dtype=np.int64), k=3, user=user)
    return asyncio.run(generation.router.route(request))


def answer_once(
    resources: WorkerResources, generation: Generation, history: list[int], user: str = "u1"
) -> RoutedAnswer:
    """What the app does: a primary answer becomes the user's last-good list."""
    routed = route(generation, history, user)
    assert routed.served_by == "primary"
    resources.remember((user, None), CachedList(routed.answer.items, routed.answer.scores))
    return routed


# --- the fault table ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("point", "kind"), [("cache", "nan"), ("cache", "latency"), ("feedback", "stale"), ("ranker", "full")]
)
def test_a_kind_that_does_not_fit_its_point_is_refused_naming_both(
    resources: WorkerResources, point: str, kind: str
) -> None:
    with pytest.raises(ValidationError, match=f"fault kind '{kind}' does not fit point '{point}'"):
        FaultRequest.model_validate({"point": point, "kind": kind, "ttl_s": 5})
    with pytest.raises(ValueError, match=f"'{kind}' does not fit point '{point}'"):
        resources.faults.add(point, kind, ttl_s=5)
    assert resources.faults.active() == ()


def test_the_new_points_accept_their_kinds() -> None:
    for point, kind in [("cache", "empty"), ("cache", "stale"), ("feedback", "latency")]:
        assert FaultRequest.model_validate({"point": point, "kind": kind, "ttl_s": 5}).kind == kind
    assert FaultRequest.model_validate({"point": "feedback", "kind": "full", "ttl_s": 5}).point == "feedback"


@pytest.mark.parametrize("ids", [[], [""], ["x" * 129], ["ok"] * 10_001, "e-1"])
def test_lookup_bodies_are_bounded(ids: object) -> None:
    with pytest.raises(ValidationError):
        FeedbackLookupRequest.model_validate({"event_ids": ids})


# --- the store and one fault point, on their own --------------------------------------------------


def test_fault_expires_after_its_ttl_without_any_call(faults: FaultStore) -> None:
    fault = faults.add("ranker", "error", ttl_s=0.3)
    assert [f.id for f in faults.active()] == [fault.id]
    time.sleep(0.5)  # nothing touches the store meanwhile
    assert faults.active() == ()


def test_expired_fault_stops_acting_even_inside_the_refresh_interval(tmp_path: Path) -> None:
    store = FaultStore(tmp_path / "faults.db", refresh_s=3600.0)  # the cache is never re-read
    try:
        store.add("ranker", "nan", ttl_s=0.2)
        assert len(store.active()) == 1
        time.sleep(0.35)
        assert store.active() == ()
    finally:
        store.close()


def test_remove_returns_whether_a_fault_was_removed(faults: FaultStore) -> None:
    kept = faults.add("ranker", "latency", ttl_s=60, latency_ms=10)
    gone = faults.add("ranker", "error", ttl_s=60)
    assert faults.remove(gone.id) is True
    assert faults.remove(gone.id) is False
    assert faults.remove("no-such-id") is False
    assert [f.id for f in faults.active()] == [kept.id]


def test_two_stores_on_one_file_see_each_others_faults(tmp_path: Path) -> None:
    first = FaultStore(tmp_path / "faults.db", refresh_s=0.1)
    second = FaultStore(tmp_path / "faults.db", refresh_s=0.1)
    try:
        assert second.active() == ()  # primes second's cache with "no faults"
        fault = first.add("ranker", "error", ttl_s=60, rate=0.5)
        time.sleep(0.2)  # past second's refresh interval
        seen = second.active()
        assert [(f.id, f.kind, f.rate) for f in seen] == [(fault.id, "error", 0.5)]
        other = second.add("ranker", "nan", ttl_s=60)
        assert [f.id for f in first.active()] == [fault.id, other.id]
        assert second.remove(fault.id) is True
        time.sleep(0.2)
        assert [f.id for f in first.active()] == [other.id]
    finally:
        first.close()
        second.close()


def test_fault_point_only_applies_faults_of_its_own_point(faults: FaultStore) -> None:
    faults.add("elsewhere", "error", ttl_s=60)
    assert asyncio.run(FaultPoint(faults, "ranker").before_call()) is False
    faults.add("ranker", "nan", ttl_s=60)
    assert asyncio.run(FaultPoint(faults, "ranker").before_call()) is True


# --- cache ----------------------------------------------------------------------------------------


def test_empty_cache_misses_and_stores_nothing(resources: WorkerResources, generation: Generation) -> None:
    answer_once(resources, generation, [4, 5, 6])
    resources.faults.add("ranker", "error", ttl_s=60)
    assert route(generation, [4, 5, 6]).served_by == "cache"  # the control: the cache holds u1
    fault = resources.faults.add("cache", "empty", ttl_s=60)
    routed = route(generation, [4, 5, 6])
    assert routed.served_by == "category"
    assert routed.skipped == [("primary", "error"), ("cache", "miss")]
    resources.remember(("u2", None), CachedList(np.array([7, 9]), np.array([2.0, 1.0], dtype=np.float32)))
    assert ("u2", None) not in resources.cache  # nothing is stored while the fault is active
    resources.faults.remove(fault.id)
    assert route(generation, [4, 5, 6]).served_by == "cache"  # the entry was only hidden


def test_stale_cache_answers_first_with_a_healthy_primary(
    resources: WorkerResources, generation: Generation
) -> None:
    first = answer_once(resources, generation, [4, 5, 6])
    fault = resources.faults.add("cache", "stale", ttl_s=60)
    newer = [4, 5, 6, 11, 12]  # the user moved on: the primary would answer differently
    fresh = asyncio.run(generation.router.routes[0].tier.serve(TierRequest(np.array(newer), k=3)))
    stale = route(generation, newer)
    assert stale.served_by == "cache" and stale.skipped == []
    cached = [i for i in first.answer.items.tolist() if i not in newer]
    assert stale.answer.items.tolist() == cached[:3]  # the old list, blind to the new actions
    assert stale.answer.items.tolist() != fresh.items.tolist()
    unknown = route(generation, [4, 5, 6], user="u9")  # not held: the primary still answers
    assert unknown.served_by == "primary" and unknown.skipped == [("cache", "miss")]
    resources.faults.remove(fault.id)
    assert route(generation, newer).served_by == "primary"


def test_stale_at_rate_zero_never_jumps_the_queue(resources: WorkerResources, generation: Generation) -> None:
    answer_once(resources, generation, [4, 5, 6])
    resources.faults.add("cache", "stale", ttl_s=60, rate=0.0)
    assert all(route(generation, [4, 5, 6]).served_by == "primary" for _ in range(20))


# --- feedback -------------------------------------------------------------------------------------


@pytest.fixture
def faults(tmp_path: Path) -> Iterator[FaultStore]:
    store = FaultStore(tmp_path / "faults.db", refresh_s=0.0)
    yield store
    store.close()


@pytest.fixture
def log(tmp_path: Path, faults: FaultStore) -> Iterator[FeedbackLog]:
    opened = FeedbackLog(
        tmp_path / "feedback.db",
        pseudonymiser=PSEUDONYMS,
        sealer=None,
        faults=FeedbackFaults(faults, rng=random.Random(3)),
    )
    yield opened
    opened.close()


def event(n: int) -> FeedbackEvent:
    return FeedbackEvent(f"user-{n % 7}", f"SKU-{n:06d}", "click", 1.0, event_id=f"ev-{n:06d}")


def test_slow_store_acknowledges_late_and_loses_nothing(log: FeedbackLog, faults: FaultStore) -> None:
    faults.add("feedback", "latency", ttl_s=60, latency_ms=300)
    started = time.monotonic()
    row = log.append(event(1))
    assert time.monotonic() - started >= 0.3
    assert row == 1 and log.present(["ev-000001"]) == {"ev-000001"}


def test_failing_store_fails_a_share_of_commits_and_never_acknowledges_them(
    log: FeedbackLog, faults: FaultStore
) -> None:
    log.append(event(0))
    fault = faults.add("feedback", "error", ttl_s=60, rate=0.5)
    acked, refused = [], []
    for n in range(1, 41):  # one at a time: each append is its own commit
        try:
            log.append(event(n))
            acked.append(f"ev-{n:06d}")
        except FeedbackLogError as exc:
            assert "injected error at feedback" in str(exc)
            refused.append(f"ev-{n:06d}")
    assert 5 <= len(refused) <= 35  # rate 0.5 of 40 (seeded)
    assert log.present(acked + refused) == set(acked)  # refused: not stored either
    faults.remove(fault.id)
    assert log.append(event(99)) > 0


def test_full_store_fails_with_sqlite_full_and_recovers_when_the_fault_ends(
    log: FeedbackLog, faults: FaultStore
) -> None:
    acked = [f"ev-{n:06d}" for n in range(30) if log.append(event(n))]
    fault = faults.add("feedback", "full", ttl_s=60)
    first_error = None
    for n in range(30, 2030):  # rows that still fit into free space of existing pages go in
        try:
            log.append(event(n))
        except FeedbackLogError as exc:
            first_error = str(exc)
            break
        acked.append(f"ev-{n:06d}")
    assert first_error is not None and "database or disk is full" in first_error
    assert log.faults is not None and log.faults.capped
    for n in range(3000, 3020):  # once full, every insert fails
        with pytest.raises(FeedbackLogError, match="full"):
            log.append(event(n))
    assert log.present(acked) == set(acked) and log.count() == len(acked)
    faults.remove(fault.id)
    assert log.append(event(5000)) > 0  # the page cap is lifted at the next commit
    assert not log.faults.capped


class FakeClock:
    """Stands in for the ``time`` module inside ``fault_points``: wall and monotonic time move only
    when the test says so (or when a latency fault "sleeps"), so a TTL expires exactly when told."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds


def test_full_store_recovers_when_the_fault_expires(
    log: FeedbackLog, faults: FaultStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    monkeypatch.setattr(fault_points, "time", clock)
    log.append(event(0))
    faults.add("feedback", "full", ttl_s=0.5)
    refused = None
    for n in range(1, 2001):  # fill the last free pages; the clock stands still meanwhile
        try:
            log.append(event(n))
        except FeedbackLogError as exc:
            assert "database or disk is full" in str(exc)
            refused = f"ev-{n:06d}"
            break
    assert refused is not None, "the store never filled up under the full fault"
    assert log.faults is not None and log.faults.capped
    clock.advance(0.4)  # inside the TTL: still full
    with pytest.raises(FeedbackLogError, match="full"):
        log.append(event(5000))
    clock.advance(0.2)  # past the TTL: the fault has expired without anyone removing it
    assert faults.active() == ()
    assert log.append(event(9999)) > 0
    assert log.present(["ev-009999", refused, "ev-005000"]) == {"ev-009999"}  # refused: never stored
    assert not log.faults.capped


def test_present_names_exactly_the_stored_ids_as_the_client_sent_them(log: FeedbackLog) -> None:
    log.append(event(1))
    log.append(FeedbackEvent("u", "SKU-1", "view", 1.0, event_id="ev-jane@example.com"))  # scrubbed
    asked = ["ev-000001", "ev-jane@example.com", "ev-000002", "ev-000001"]
    assert log.present(asked) == {"ev-000001", "ev-jane@example.com"}
    assert log.present([f"none-{n}" for n in range(1200)]) == set()  # several chunks
