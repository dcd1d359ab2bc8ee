"""Admission control: a worker takes at most ``limit`` recommendation requests at once.

Beyond the limit a request may wait ``wait_s`` (a few milliseconds, a fraction of its deadline) for
a slot, first come first served; if none frees up it is answered with ``429 Too Many Requests``, a
``Retry-After`` header and a JSON body. Its body has been read by then (``body_reader.py`` sits
outside, with its own deadline), so a client slow to send one never holds a slot. Queueing it for
longer would only make it wait past its deadline while it holds memory and a connection (Ray Serve's
``max_queued_requests`` bounds its queue the same way). A 429 is cheap, tells a client to back
off, and keeps overload from turning into 5xx. The short wait is for bursts: an open-loop client
catching up after a pause, or the retries of requests a dead worker dropped, arrive together and
would otherwise be refused by a worker that is not overloaded at all (measured in
``benchmarks/worker_kill.py``).

It is a plain ASGI middleware on the event loop: a counter and a FIFO of waiting futures, no lock.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from recdrill.errors import ConfigError
from recdrill.serving.metrics import ServingMetrics

RETRY_AFTER_S = 1  # whole seconds: the header takes no fractions
SHED_ROUTE_KEY = "recdrill.shed_route"  # scope key naming the refused route for the metrics middleware


@dataclass
class WorkerLoad:
    """How many guarded requests a worker handles now, against its limit: admission control counts,
    the model batchers read it (a busy worker keeps model calls in the worker thread, ``batching.py``).
    """

    limit: int
    in_flight: int = 0

    def is_busy(self) -> bool:
        """At three quarters of the limit or more: requests are queueing, or about to."""
        return 4 * self.in_flight >= 3 * self.limit


class AdmissionControl:
    """Caps concurrent requests to ``paths`` at ``limit``; the rest wait up to ``wait_s`` for a slot,
    then get a fast 429. ``load`` (shared with the batchers) holds the count."""

    def __init__(
        self,
        app: ASGIApp,
        limit: int,
        metrics: ServingMetrics,
        paths: frozenset[str] = frozenset({"/v1/recommend"}),
        wait_s: float = 0.0,
        load: WorkerLoad | None = None,
    ) -> None:
        if limit < 1:
            raise ConfigError(f"admission limit must be >= 1, got {limit}")
        if wait_s < 0:
            raise ConfigError(f"admission wait must be >= 0 s, got {wait_s}")
        self.app = app
        self.limit = limit
        self.metrics = metrics
        self.paths = paths
        self.wait_s = wait_s
        self.load = load if load is not None else WorkerLoad(limit)
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._body = json.dumps(
            {
                "error": f"overloaded: this worker is at its limit of {limit} requests in flight; "
                f"retry after {RETRY_AFTER_S} s",
                "retry_after_s": RETRY_AFTER_S,
            }
        ).encode()

    @property
    def in_flight(self) -> int:
        return self.load.in_flight

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        if self.load.in_flight < self.limit:
            self.load.in_flight += 1
        elif not await self._wait_for_slot():
            self.metrics.shed.labels(scope["path"]).inc()
            scope[SHED_ROUTE_KEY] = scope["path"]
            await self._refuse(send)
            return
        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send)
        finally:
            self.metrics.in_flight.dec()
            self._release()

    async def _wait_for_slot(self) -> bool:
        """Wait up to ``wait_s`` for a finishing request to hand over its slot; True once handed."""
        if self.wait_s <= 0:
            return False
        slot = asyncio.get_running_loop().create_future()
        self._waiting.append(slot)
        try:
            async with asyncio.timeout(self.wait_s):
                await slot
            return True
        except TimeoutError:
            # The slot may have been handed over in the very step the timeout fired: then it is ours.
            return slot.done() and not slot.cancelled()
        except BaseException:
            if slot.done() and not slot.cancelled():
                self._release()  # the client went away just as it was handed a slot: pass it on
            raise
        finally:
            if not slot.done():
                slot.cancel()

    def _release(self) -> None:
        """Hand this slot to the longest waiting request still waiting, or free it."""
        while self._waiting:
            slot = self._waiting.popleft()
            if not slot.done():
                slot.set_result(None)  # in_flight is unchanged: one leaves, one enters
                return
        self.load.in_flight -= 1

    async def _refuse(self, send: Send) -> None:
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(self._body)).encode()),
            (b"retry-after", str(RETRY_AFTER_S).encode()),
        ]
        await send({"type": "http.response.start", "status": 429, "headers": headers})
        await send({"type": "http.response.body", "body": self._body})
