"""Counts every answer (429s from admission control included) and its latency per route template.

Labels are route templates (``/admin/faults/{fault_id}``), not paths, to bound label values; a
request that admission control refused before routing is counted under the path it guarded. A plain
ASGI middleware: Starlette's ``BaseHTTPMiddleware`` would cost more than the model call.
"""

from __future__ import annotations

import asyncio
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from recdrill.serving.metrics import ServingMetrics
from recdrill.serving.middleware.admission import SHED_ROUTE_KEY

CLIENT_CLOSED = 499  # nginx's "client closed request"


class RequestMetrics:
    """``recdrill_requests_total{route, status}``, the latency histogram and the 5xx count."""

    def __init__(self, app: ASGIApp, metrics: ServingMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, capture)
        except asyncio.CancelledError:
            # The client went away and the server cancelled the request (Ray Serve does; uvicorn lets
            # it finish): not a server error.
            if status == 500:
                status = CLIENT_CLOSED
            raise
        finally:
            # Admission control refuses before routing: it names the path it guarded instead.
            route = getattr(scope.get("route"), "path", None) or scope.get(SHED_ROUTE_KEY, "unmatched")
            self.metrics.requests.labels(route, str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)
            if status >= 500:
                self.metrics.errors.labels(route).inc()
