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


class GatedModel:
    """Scores as :class:`CountingModel` does, but each call waits (in whatever thread runs it) until
    the test opens ``gate``: "the model is still working" without timing anything. Bounded, so a
    failing test cannot hang."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.finished: list[int] = []  # the size of each call, once it has returned
        self.threads: set[str] = set()
        self._model = CountingModel()

    def score(self, histories: Ragged) -> np.ndarray:
        self.threads.add(threading.current_thread().name)
        self.gate.wait(timeout=30.0)
        scores = self._model.score(histories)
        self.finished.append(len(histories))
        return scores


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
    events: list[str] = []
    batcher = MicroBatcher(
        model.score, max_batch=64, max_wait_ms=30, on_batch=lambda n: events.append(f"batch {n}")
    )

    async def main() -> None:
        # Markers on the loop's own timer heap, around the batcher's 30 ms timer: timers fire in the
        # order they are due, however slow the machine, so the order tells when the batch went.
        loop = asyncio.get_running_loop()
        loop.call_later(0.015, events.append, "half max_wait")
        call = asyncio.ensure_future(batcher.score(np.array([1])))
        await asyncio.sleep(0)  # the call is queued and its timer armed
        loop.call_later(0.06, events.append, "twice max_wait")
        await call
        await asyncio.sleep(0.06)  # let the last marker fire

    asyncio.run(main())
    batcher.close()
    assert model.sizes == [1]
    assert events == ["half max_wait", "batch 1", "twice max_wait"]


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
    model = GatedModel()
    batcher = MicroBatcher(model.score, enabled=enabled, max_wait_ms=0)
    ticks = 0

    async def main() -> None:
        nonlocal ticks
        call = asyncio.ensure_future(batcher.score(np.array([1])))
        while not call.done():
            ticks += 1
            if ticks == 10:
                model.gate.set()  # only a loop that kept running can let the model finish
            await asyncio.sleep(0.01)

    asyncio.run(main())
    batcher.close()
    # The model held its call until the loop had gone round 10 times: on the loop itself, it would
    # have blocked the loop until the gate's timeout, with a single tick counted.
    assert ticks >= 10
    assert model.finished == [1] and threading.main_thread().name not in model.threads


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
    model = GatedModel()
    batcher = MicroBatcher(model.score, max_wait_ms=0)

    async def main() -> tuple[list[int], np.ndarray]:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await batcher.score(np.array([1]))
        finished_when_given_up = list(model.finished)
        model.gate.set()
        return finished_when_given_up, await batcher.score(np.array([2]))

    finished_when_given_up, row = asyncio.run(main())
    batcher.close()
    # The caller left at its deadline while the model still held its batch (it cannot finish before
    # the gate opens), not when the model finished.
    assert finished_when_given_up == []
    assert row[0] == 2.0
    assert model.finished == [1, 1]  # the abandoned batch finished, then the next one ran


def test_the_router_deadline_gives_up_on_a_late_batched_primary(tmp_path: Path) -> None:
    shop = ShopSim(n_items=200, n_users=100, n_events=2000, seed=2).generate()
    snapshot = ShopSnapshot.from_dataset(shop)
    knn = ItemKNNRecommender(neighbours=20).fit(shop)

    gate = threading.Event()
    finished: list[int] = []

    def slow_score(histories: Ragged) -> np.ndarray:
        # In the worker thread, held until the test opens the gate: the loop stays free, so the
        # deadline must fire while the model is still busy.
        gate.wait(timeout=30.0)
        finished.append(len(histories))
        return knn.score(histories)

    store = FaultStore(tmp_path / "faults.db")
    batcher = MicroBatcher(slow_score)
    try:
        tier = ModelTier(batcher, knn.n_items_, FaultPoint(store, "ranker"))
        router = TierRouter([tier], PopularityTier(snapshot), deadline_s=0.05)
        routed = asyncio.run(router.route(TierRequest(snapshot.histories.row(0).astype(np.int64), 5)))
        finished_when_answered = list(finished)
    finally:
        gate.set()
        batcher.close()
        store.close()
    assert routed.served_by == "popular" and routed.skipped == [("primary", "late")]
    assert len(routed.answer.items) == 5
    assert finished_when_answered == []  # answered by the fallback before the model call ended


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
