"""Open-loop pacing that degrades instead of stalling when the sender is short of CPU.

Every traffic generator of a drill (the judged replay, the audited feedback, a fault's side
traffic) sends on a precomputed schedule. A sender that falls behind its schedule (its process
shares the CPU with busy neighbours, or with a side-traffic thread of its own) must not send the
overdue requests late in one burst: a burst of hundreds of requests queues them all in httpx's
connection pool, whose bookkeeping (``httpcore`` 1.0's ``_assign_requests_to_connections``) walks
every queued request against every connection on each arrival and departure, so the cost of each
request grows with the queue (encode/httpcore#1035). The sender falls further behind, the queue
grows, and a drill that was a little short of CPU stops answering altogether; that is how a
``peak-day`` drill beside busy processes hung during its 150/s ``feature-drift`` step.

A :class:`Pacer` keeps the sender honest instead:

- a request whose send time passed more than ``slack_s`` ago is *skipped*: not sent, and counted
  (``late``), so a report can say how much of its traffic the client itself could not send;
- at most ``max_in_flight`` requests wait for answers at once (the connection pool's size, so no
  request ever queues inside the pool); one scheduled while that many are out is skipped as well
  (``busy``);
- skipping many in a row still yields to the event loop now and then, so timers, progress lines
  and the drill's stop checks keep running.

Skipped requests are the client's shortfall, not the server's: they count against nothing but the
strength of the judgement (see ``recdrill.drills.journal``).

Example:
    >>> import asyncio
    >>> pacer = Pacer(slack_s=0.25, clock=lambda: 100.0)
    >>> asyncio.run(pacer.wait(99.9)), asyncio.run(pacer.wait(99.0))  # 0.1 s late: sent; 1 s: skipped
    (True, False)
    >>> pacer.counts()
    {'sent': 1, 'skipped_late': 1, 'skipped_busy': 0}
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

SEND_SLACK_S = 0.25  # how late a request may still go out; later ones are skipped
YIELD_EVERY = 64  # skipped requests in a row before the pacer lets the event loop run
MIN_IN_FLIGHT, MAX_IN_FLIGHT = 32, 512  # the bounds of in_flight_limit


@dataclass
class Pacer:
    """Decides, request by request, whether a scheduled request goes out now or is skipped.

    Parameters:
        slack_s: a request whose send time passed more than this long ago is skipped.
        max_in_flight: at most this many requests launched through :meth:`launch` at once.
        clock: the clock of the schedule (seconds; ``time.monotonic`` unless a test injects one).
    """

    slack_s: float = SEND_SLACK_S
    max_in_flight: int = 256
    clock: Callable[[], float] = time.monotonic
    sent: int = 0
    late: int = 0
    busy: int = 0
    _in_flight: int = field(default=0, init=False, repr=False)
    _skips_in_a_row: int = field(default=0, init=False, repr=False)

    @property
    def skipped(self) -> int:
        """Requests not sent: late ones and those over the in-flight limit."""
        return self.late + self.busy

    @property
    def in_flight(self) -> int:
        return self._in_flight

    async def wait(
        self, due: float, *, stopped: Callable[[], bool] | None = None, poll_s: float | None = None
    ) -> bool:
        """Sleep until ``due`` (a value of ``clock``); True: send the request now, False: it is
        skipped (and counted) or ``stopped()`` turned true while waiting.

        ``poll_s`` caps each sleep, so that a ``stopped`` set from another thread is seen promptly.
        """
        while True:
            delay = due - self.clock()
            if delay <= 0:
                break
            if stopped is not None and stopped():
                return False
            await asyncio.sleep(delay if poll_s is None else min(delay, poll_s))
        if -delay > self.slack_s:
            self.late += 1
            await self._skipped()
            return False
        if self._in_flight >= self.max_in_flight:
            self.busy += 1
            await self._skipped()
            return False
        self._skips_in_a_row = 0
        self.sent += 1
        return True

    def launch(self, request: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Start a request that :meth:`wait` let through; it counts as in flight until it ends."""
        self._in_flight += 1
        task = asyncio.create_task(request)
        task.add_done_callback(self._landed)
        return task

    def counts(self) -> dict[str, int]:
        """``sent``, ``skipped_late`` and ``skipped_busy`` so far."""
        return {"sent": self.sent, "skipped_late": self.late, "skipped_busy": self.busy}

    def _landed(self, _: asyncio.Task[None]) -> None:
        self._in_flight -= 1

    async def _skipped(self) -> None:
        # Skipping is cheap, but thousands in a row (a sender minutes behind) would hold the loop.
        self._skips_in_a_row += 1
        if self._skips_in_a_row % YIELD_EVERY == 0:
            await asyncio.sleep(0)


def in_flight_limit(rate: float, timeout_s: float, attempts: int = 1) -> int:
    """A limit on requests in flight that a slow server alone cannot reach: every request of the
    last ``attempts * timeout_s`` seconds at ``rate`` still out (each attempt ends by its timeout),
    with room for Poisson bunching, between 32 and 512 (a process's file descriptors are finite).

    Reaching it means the sender's own event loop is too slow to see its answers and timeouts.

    >>> in_flight_limit(30, 2.0, attempts=2), in_flight_limit(2000, 2.0)
    (172, 512)
    """
    expected = rate * timeout_s * attempts
    return int(min(MAX_IN_FLIGHT, max(MIN_IN_FLIGHT, math.ceil(expected + 4 * math.sqrt(expected) + 8))))
