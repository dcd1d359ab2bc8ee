"""Admission control: a worker takes at most ``limit`` recommendation requests at once.

Beyond the limit a request is answered at once with ``429 Too Many Requests``, a ``Retry-After``
header and a JSON body, before its body is even read. Queueing it instead would only make it wait
past its deadline while it holds memory and a connection (Ray Serve's ``max_queued_requests`` does
the same). A 429 is cheap, tells a client to back off, and keeps overload from turning into 5xx.

It is a plain ASGI middleware: a counter on the event loop, no lock and no queue.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from recdrill.errors import ConfigError
from recdrill.serving.metrics import ServingMetrics

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

RETRY_AFTER_S = 1  # whole seconds: the header takes no fractions
SHED_ROUTE_KEY = "recdrill.shed_route"  # scope key naming the refused route for the metrics middleware


class AdmissionControl:
    """Caps concurrent requests to ``paths`` at ``limit``; the rest get a fast 429."""

    def __init__(
        self,
        app: ASGIApp,
        limit: int,
        metrics: ServingMetrics,
        paths: frozenset[str] = frozenset({"/v1/recommend"}),
    ) -> None:
        if limit < 1:
            raise ConfigError(f"admission limit must be >= 1, got {limit}")
        self.app = app
        self.limit = limit
        self.metrics = metrics
        self.paths = paths
        self.in_flight = 0
        self._body = json.dumps(
            {
                "error": f"overloaded: this worker is at its limit of {limit} requests in flight; "
                f"retry after {RETRY_AFTER_S} s",
                "retry_after_s": RETRY_AFTER_S,
            }
        ).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            self.metrics.shed.labels(scope["path"]).inc()
            scope[SHED_ROUTE_KEY] = scope["path"]
            await self._refuse(send)
            return
        self.in_flight += 1
        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
            self.metrics.in_flight.dec()

    async def _refuse(self, send: Send) -> None:
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(self._body)).encode()),
            (b"retry-after", str(RETRY_AFTER_S).encode()),
        ]
        await send({"type": "http.response.start", "status": 429, "headers": headers})
        await send({"type": "http.response.body", "body": self._body})
