"""Tags every HTTP response of a served worker with ``X-Recdrill-Worker: <pid>``, so that drills
and tests can tell which worker answered (and when a replacement starts answering).

A plain ASGI wrapper (Starlette's ``BaseHTTPMiddleware`` would cost more than the model call).
"""

from __future__ import annotations

import os

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from recdrill.contract import WORKER_HEADER


class WorkerHeader:
    """ASGI wrapper adding ``X-Recdrill-Worker: <pid>`` to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.header = (WORKER_HEADER.lower().encode(), str(os.getpid()).encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def tagged(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), self.header]
            await send(message)

        await self.app(scope, receive, tagged)
