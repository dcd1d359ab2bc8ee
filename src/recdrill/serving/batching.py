"""Model calls off the event loop, and concurrent single-user calls combined into one model call.

Scoring one history costs a Python-to-C round trip, a sparse product and a thread hop; scoring 16
at once costs little more than one. :class:`MicroBatcher` collects the histories of concurrent
requests and scores them together in a worker thread, so the event loop keeps accepting requests
meanwhile. A batch goes when it holds ``max_batch`` histories, when the first of them has waited
``max_wait_ms``, or at once when the previous batch finishes and calls are already waiting (they
waited while it ran). One batch runs at a time per batcher: a second would only fight the first
for the same cores.

A fast model is scored inline instead: when the batches' recent cost (an exponentially weighted
mean) is under ``inline_below_ms`` and the worker keeps up (the batch is not full, no call waits
behind it, and ``busy()``, admission control's count, is under three quarters of its limit), the
event loop calls the model itself. Handing a call to the worker thread and back costs more than
scoring a few histories with an item-to-item model (about a tenth of a request's CPU time, measured
with py-spy on ``benchmarks/serving_overhead.py``), and with one BLAS thread per worker the thread
buys no parallelism. A slow model (the Transformer on a CPU) stays in the thread, so that the
router's deadline can still answer from another tier while it runs; a fast model that turns slow
moves back there after a call or two. Under overload the thread is kept too: in
``benchmarks/surge.py``, inline calls at any batch size left the loop too little time to read
requests, and 3,749 of 38,265 requests timed out at the client instead of getting a 429. Fault
latency is an ``asyncio.sleep`` before the call, so it never blocks the loop either way.

With ``enabled=False`` each call is scored alone, always in the worker thread (the baseline of
``benchmarks/batching.py``). A caller that stops waiting (the router's deadline) just drops its
future; a batch already running finishes, and its row for that caller is thrown away.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from recdrill.data.ragged import Ragged
from recdrill.errors import ConfigError

ScoreFn = Callable[[Ragged], np.ndarray]  # histories -> float32 [n, n_items]
BatchListener = Callable[[int], None]


@dataclass
class _Waiting:
    history: np.ndarray
    future: asyncio.Future[np.ndarray]
    since: float


class MicroBatcher:
    """Scores histories with ``score`` in batches of at most ``max_batch``, in one worker thread.

    Example:
        >>> calls = []
        >>> def score(h):
        ...     calls.append(len(h))
        ...     return np.ones((len(h), 3), dtype=np.float32)
        >>> async def main():
        ...     batcher = MicroBatcher(score, max_batch=8, max_wait_ms=50)
        ...     rows = await asyncio.gather(*(batcher.score(np.array([i])) for i in range(5)))
        ...     batcher.close()
        ...     return len(rows)
        >>> asyncio.run(main()), calls
        (5, [5])
    """

    def __init__(
        self,
        score: ScoreFn,
        max_batch: int = 16,
        max_wait_ms: float = 1.0,
        enabled: bool = True,
        on_batch: BatchListener | None = None,
        inline_below_ms: float = 0.0,
        busy: Callable[[], bool] | None = None,
    ) -> None:
        if max_batch < 1:
            raise ConfigError(f"The 'max_batch' parameter of MicroBatcher must be >= 1, got {max_batch}")
        if not max_wait_ms >= 0:
            raise ConfigError(f"The 'max_wait_ms' parameter of MicroBatcher must be >= 0, got {max_wait_ms}")
        self._score = score
        self.max_batch = max_batch
        self.max_wait_s = max_wait_ms / 1000.0
        self.enabled = enabled
        self.on_batch = on_batch
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="recdrill-model")
        self._waiting: list[_Waiting] = []
        self._busy = False
        self._timer: asyncio.TimerHandle | None = None
        self.inline_below_s = max(0.0, inline_below_ms) / 1000.0
        self.cost_s = float("inf")  # recent cost of a batch; unknown until the first one ran
        self.busy = busy

    async def score(self, history: np.ndarray) -> np.ndarray:
        """Scores of every item for one history (float32 ``[n_items]``, the caller's own copy)."""
        loop = asyncio.get_running_loop()
        if not self.enabled:
            return await loop.run_in_executor(self._executor, self._score_one, history)
        future: asyncio.Future[np.ndarray] = loop.create_future()
        self._waiting.append(_Waiting(history, future, time.perf_counter()))
        if len(self._waiting) >= self.max_batch or self.max_wait_s == 0:
            self._dispatch(loop)
        elif self._timer is None and not self._busy:
            self._timer = loop.call_later(self.max_wait_s, self._dispatch, loop)
        return await future

    def close(self) -> None:
        """Stop the worker thread once the batch it runs (if any) is done."""
        self._executor.shutdown(wait=False)

    def _score_one(self, history: np.ndarray) -> np.ndarray:
        if self.on_batch is not None:
            self.on_batch(1)
        return np.array(self._score(Ragged.from_lists([history]))[0], dtype=np.float32, copy=True)

    def _dispatch(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._busy:
            return  # the running batch dispatches the waiting calls when it finishes
        batch = [w for w in self._waiting[: self.max_batch] if not w.future.done()]
        del self._waiting[: self.max_batch]
        if not batch:
            self._schedule(loop)
            return
        self._busy = True
        histories = Ragged.from_lists([w.history for w in batch])
        if self.on_batch is not None:
            self.on_batch(len(batch))
        # Inline only while the worker keeps up: a full batch, calls waiting behind it, or admission
        # control near its limit mean overload, where the thread lets the loop go on reading requests
        # (and refusing the excess with a fast 429) while the model computes.
        busy = len(batch) == self.max_batch or bool(self._waiting) or (self.busy is not None and self.busy())
        if self.cost_s < self.inline_below_s and not busy:
            done: asyncio.Future[np.ndarray] = loop.create_future()
            try:
                done.set_result(self._timed_score(histories))
            except Exception as exc:  # the callers see the model's error, as from the thread
                done.set_exception(exc)
            self._finish(loop, batch, done, inline=True)
            return
        running = loop.run_in_executor(self._executor, self._timed_score, histories)
        running.add_done_callback(lambda done: self._finish(loop, batch, done))

    def _timed_score(self, histories: Ragged) -> np.ndarray:
        began = time.perf_counter()
        try:
            return self._score(histories)
        finally:
            spent = time.perf_counter() - began
            # Weighted 1/2: one slow call is enough to leave the event loop.
            self.cost_s = spent if self.cost_s == float("inf") else 0.5 * self.cost_s + 0.5 * spent

    def _finish(
        self,
        loop: asyncio.AbstractEventLoop,
        batch: list[_Waiting],
        done: asyncio.Future[np.ndarray],
        inline: bool = False,
    ) -> None:
        self._busy = False
        error = done.exception() if not done.cancelled() else asyncio.CancelledError()
        if error is None:
            scores = done.result()
            if scores.shape[0] != len(batch):
                error = ValueError(f"model scored {scores.shape[0]} histories of a batch of {len(batch)}")
        for row, waiting in enumerate(batch):
            if waiting.future.done():
                continue  # its caller gave up (deadline) meanwhile
            if error is not None:
                waiting.future.set_exception(error)
            else:
                waiting.future.set_result(np.array(scores[row], dtype=np.float32, copy=True))
        if inline:
            # Let the loop read new requests (and admission control refuse the excess) before the next
            # batch: back to back inline batches would starve it under overload.
            loop.call_soon(self._schedule, loop)
        else:
            self._schedule(loop)

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        """After a batch: calls that arrived while it ran have waited long enough already, so go."""
        self._waiting = [w for w in self._waiting if not w.future.done()]
        if self._waiting:
            self._dispatch(loop)
