"""How late a worker's event loop runs, and what held it when it stalled.

Every request of a worker runs on its one event loop, so whatever holds the loop (a synchronous
SQLite commit, a long pure-Python pass, a garbage collection of a large heap) delays every request
in flight by as long as it runs: the stalls of issue #17, whose cause a client-side latency figure
cannot tell from the client's own queueing. The watch measures them inside the worker:

* a tick task sleeps ``interval_s`` and records how much later than asked it woke up
  (``recdrill_event_loop_lag_seconds``, a histogram per worker): the delay every request on the
  loop shared at that moment;
* a watchdog thread notices when the loop has not ticked for ``stall_s`` beyond its interval, logs
  the loop thread's stack once per stall (the cause, by name, in the worker's log) and counts it
  (``recdrill_event_loop_stalls_total``).

Both cost next to nothing: 20 wake-ups a second of the tick task, 8 of the watchdog.

Example:
    >>> watch = LoopWatch(CollectorRegistry(), interval_s=0.05, stall_s=0.25, clock=lambda: 10.0)
    >>> watch.tick(before=9.0, after=9.35)  # woke 0.3 s late
    0.3
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
import traceback
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram

log = logging.getLogger(__name__)
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
STACK_FRAMES = 12  # innermost frames logged: enough to name the blocking call and its caller


class LoopWatch:
    """Measures the lag of the event loop it runs on; ``run`` is an asyncio task of the worker."""

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        interval_s: float = 0.05,
        stall_s: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval_s = interval_s
        self.stall_s = stall_s
        self.clock = clock
        self.lag = Histogram(
            "recdrill_event_loop_lag_seconds",
            "How much later than scheduled the worker's event loop ran a timer (what every request "
            "on the loop waited at that moment).",
            buckets=LAG_BUCKETS,
            registry=registry,
        )
        self.stalls = Counter(
            "recdrill_event_loop_stalls",
            "Times the event loop was held longer than the stall threshold (stack in the log).",
            registry=registry,
        )
        self._last_tick = clock()
        self._reported = False
        self._loop_thread: int | None = None
        self._stop = threading.Event()

    async def run(self) -> None:
        """Tick until cancelled, with the watchdog thread beside it."""
        self._loop_thread = threading.get_ident()
        self._last_tick = self.clock()
        self._stop = threading.Event()  # a fresh one: an app's lifespan may run more than once
        watchdog = threading.Thread(target=self._watch, name="loop-watchdog", daemon=True)
        watchdog.start()
        try:
            while True:
                before = self.clock()
                await asyncio.sleep(self.interval_s)
                self.tick(before, self.clock())
        finally:
            self._stop.set()

    def tick(self, before: float, after: float) -> float:
        """Record one timer that was due ``interval_s`` after ``before`` and ran at ``after``."""
        lag = round(max(0.0, after - before - self.interval_s), 9)
        self.lag.observe(lag)
        self._last_tick = after
        self._reported = False
        return lag

    def _watch(self) -> None:
        while not self._stop.wait(self.stall_s / 2):
            self.check(self.clock())

    def check(self, now: float) -> str | None:
        """At ``now``, report a stall in progress once: the loop thread's innermost frames (also
        logged as a warning), or None when the loop is on time or this stall was reported."""
        held = now - self._last_tick - self.interval_s
        if held < self.stall_s or self._reported or self._loop_thread is None:
            return None
        self._reported = True
        self.stalls.inc()
        frame = sys._current_frames().get(self._loop_thread)
        where = "".join(traceback.format_stack(frame)[-STACK_FRAMES:]) if frame else "<no frame>\n"
        log.warning("event loop held for %.0f ms so far, at:\n%s", held * 1000.0, where.rstrip())
        return where
