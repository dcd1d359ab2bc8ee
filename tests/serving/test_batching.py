"""MicroBatcher: concurrent calls really share model calls, off the event loop, within deadlines."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from recdrill.data.ragged import Ragged
from recdrill.data.shopsim import ShopSim
from recdrill.data.snapshot import ShopSnapshot
from recdrill.models.itemknn import ItemKNNRecommender
from recdrill.serving.batching import MicroBatcher
from recdrill.serving.fault_points import FaultPoint, FaultStore
from recdrill.serving.router import TierRouter
from recdrill.serving.tiers import ModelTier, PopularityTier, TierRequest

N_ITEMS = 6


class CountingModel:
    """Scores item ``i`` of history ``h`` as ``sum(h) + i``; records each call's size and thread."""

    def __init__(self, delay_s: float = 0.0, fail: bool = False) -> None:
        self.delay_s = delay_s
        self.fail = fail
        self.sizes: list[int] = []
        self.threads: set[str] = set()

    def score(self, histories: Ragged) -> np.ndarray:
        self.sizes.append(len(histories))
        self.threads.add(threading.current_thread().name)
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.fail:
            raise RuntimeError("model exploded")
        sums = np.array([row.sum() for row in histories], dtype=np.float32)
        return sums[:, None] + np.arange(N_ITEMS, dtype=np.float32)[None, :]


async def score_all(batcher: MicroBatcher, n: int) -> list[np.ndarray]:
    return await asyncio.gather(*(batcher.score(np.array([i, 10 * i])) for i in range(n)))


def test_concurrent_calls_share_one_model_call_and_each_gets_its_own_row() -> None:
    model = CountingModel()
    batcher = MicroBatcher(model.score, max_batch=8, max_wait_ms=200)
    rows = asyncio.run(score_all(batcher, 8))
    batcher.close()
    assert model.sizes == [8]  # 8 requests, one model call
    for i, row in enumerate(rows):
        assert row.tolist() == (11 * i + np.arange(N_ITEMS)).tolist()


def test_a_batch_never_exceeds_max_batch_and_calls_waiting_meanwhile_go_next() -> None:
    model = CountingModel(delay_s=0.05)
    batcher = MicroBatcher(model.score, max_batch=3, max_wait_ms=200)
    rows = asyncio.run(score_all(batcher, 7))
    batcher.close()
    assert model.sizes == [3, 3, 1]
    assert [row[0] for row in rows] == [11.0 * i for i in range(7)]


def test_a_lone_call_waits_at_most_max_wait() -> None:
    model = CountingModel()
    batcher = MicroBatcher(model.score, max_batch=64, max_wait_ms=30)
    started = time.perf_counter()
    asyncio.run(score_all(batcher, 1))
    batcher.close()
    assert model.sizes == [1]
    assert 0.025 <= time.perf_counter() - started < 1.0


def test_switched_off_every_call_is_scored_alone_but_still_off_the_event_loop() -> None:
    model = CountingModel()
    batcher = MicroBatcher(model.score, max_batch=8, enabled=False)
    rows = asyncio.run(score_all(batcher, 5))
    batcher.close()
    assert model.sizes == [1] * 5
    assert [row[0] for row in rows] == [11.0 * i for i in range(5)]
    assert model.threads and threading.main_thread().name not in model.threads


@pytest.mark.parametrize("enabled", [True, False])
def test_the_event_loop_keeps_running_while_the_model_works(enabled: bool) -> None:
    model = CountingModel(delay_s=0.3)
    batcher = MicroBatcher(model.score, enabled=enabled, max_wait_ms=0)
    ticks = 0

    async def main() -> None:
        nonlocal ticks
        call = asyncio.ensure_future(batcher.score(np.array([1])))
        while not call.done():
            ticks += 1
            await asyncio.sleep(0.01)

    asyncio.run(main())
    batcher.close()
    assert ticks >= 10  # the loop went round many times during the 300 ms model call


def test_a_model_error_reaches_every_caller_of_the_batch() -> None:
    model = CountingModel(fail=True)
    batcher = MicroBatcher(model.score, max_batch=4, max_wait_ms=100)

    async def main() -> list[BaseException | np.ndarray]:
        calls = (batcher.score(np.array([i])) for i in range(4))
        return await asyncio.gather(*calls, return_exceptions=True)

    results = asyncio.run(main())
    batcher.close()
    assert model.sizes == [4]
    assert all(isinstance(r, RuntimeError) and "exploded" in str(r) for r in results)


def test_a_caller_that_gives_up_does_not_block_the_next_batch() -> None:
    model = CountingModel(delay_s=0.3)
    batcher = MicroBatcher(model.score, max_wait_ms=0)

    async def main() -> tuple[float, np.ndarray]:
        started = time.perf_counter()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await batcher.score(np.array([1]))
        gave_up = time.perf_counter() - started
        return gave_up, await batcher.score(np.array([2]))

    gave_up, row = asyncio.run(main())
    batcher.close()
    assert gave_up < 0.25  # the caller left at its deadline, not when the model finished
    assert row[0] == 2.0


def test_the_router_deadline_gives_up_on_a_late_batched_primary(tmp_path: Path) -> None:
    shop = ShopSim(n_items=200, n_users=100, n_events=2000, seed=2).generate()
    snapshot = ShopSnapshot.from_dataset(shop)
    knn = ItemKNNRecommender(neighbours=20).fit(shop)

    def slow_score(histories: Ragged) -> np.ndarray:
        time.sleep(0.5)  # in the worker thread: the loop stays free, the deadline must fire
        return knn.score(histories)

    store = FaultStore(tmp_path / "faults.db")
    try:
        tier = ModelTier(MicroBatcher(slow_score), knn.n_items_, FaultPoint(store, "ranker"))
        router = TierRouter([tier], PopularityTier(snapshot), deadline_s=0.05)
        started = time.perf_counter()
        routed = asyncio.run(router.route(TierRequest(snapshot.histories.row(0).astype(np.int64), 5)))
        elapsed = time.perf_counter() - started
    finally:
        store.close()
    assert routed.served_by == "popular" and routed.skipped == [("primary", "late")]
    assert elapsed < 0.4


@pytest.mark.parametrize(
    ("busy", "cost_s", "inline_expected"),
    [(False, 0.0001, True), (True, 0.0001, False), (False, 0.5, False)],
    ids=["fast-and-idle", "fast-but-busy", "slow"],
)
def test_fast_model_runs_on_the_event_loop_unless_the_worker_is_busy_or_the_model_slow(
    busy: bool, cost_s: float, inline_expected: bool
) -> None:
    threads: list[int] = []

    def score(histories: Ragged) -> np.ndarray:
        threads.append(threading.get_ident())
        return np.ones((len(histories), 3), dtype=np.float32)

    async def main() -> int:
        batcher = MicroBatcher(score, max_batch=8, max_wait_ms=0, inline_below_ms=2.0, busy=lambda: busy)
        await batcher.score(np.array([1]))  # the first call always runs in the thread: cost unknown
        batcher.cost_s = cost_s  # as measured by earlier calls
        await batcher.score(np.array([2]))
        batcher.close()
        return threading.get_ident()

    loop_thread = asyncio.run(main())
    assert threads[0] != loop_thread
    assert (threads[1] == loop_thread) is inline_expected
