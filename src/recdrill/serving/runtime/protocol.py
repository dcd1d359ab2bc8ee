"""uvicorn's HTTP protocol with the two limits it lacks: a deadline for a request's headers, and a
cap on their size.

uvicorn closes an idle keep-alive connection (``timeout_keep_alive``), but a connection that has
sent part of a request line or header block is never timed out: one sending a header line every
5 s stayed open for good, and enough of them would hold every file descriptor a worker has. Here a
connection must complete each request's headers within ``header_timeout_s`` of opening (or of its
previous answer), and their size is capped at ``MAX_HEADER_BYTES``; past either it is answered
(408 or 431) and closed. Bodies have their own deadline in the app (``middleware/body_reader.py``).

The deadline is read from ``RECDRILL_HEADER_TIMEOUT_S`` (``ServeConfig.header_timeout_s``): uvicorn
builds protocols itself, with only its own configuration, in each worker process.

Every answer given here has a JSON body, as the app's own errors do: the 408 and 431, and the 503
uvicorn gives beyond ``limit_concurrency`` (``RECDRILL_MAX_CONNECTIONS``), which is plain text in
uvicorn and reads ``{"error": ..., "retry_after_s": 1}`` with a ``Retry-After`` header here.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from uvicorn.protocols.http import httptools_impl
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HEADER_TIMEOUT_ENV = "RECDRILL_HEADER_TIMEOUT_S"
DEFAULT_HEADER_TIMEOUT_S = 10.0
MAX_HEADER_BYTES = 64 * 1024  # request line and headers; httptools alone has no limit
RETRY_AFTER_S = 1
REFUSALS = {
    "408 Request Timeout": "request headers not received in time",
    "431 Request Header Fields Too Large": f"request line and headers over {MAX_HEADER_BYTES} bytes",
}
_BUSY_BODY = json.dumps(
    {
        "error": "overloaded: this worker has as many connections as it accepts; "
        f"retry after {RETRY_AFTER_S} s",
        "retry_after_s": RETRY_AFTER_S,
    }
).encode()


def _answer(status: str) -> bytes:
    body = json.dumps({"error": REFUSALS[status]})
    head = f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
    return (head + f"connection: close\r\n\r\n{body}").encode("ascii")


async def over_connection_limit(scope: Any, receive: Any, send: Any) -> None:
    """The answer beyond ``limit_concurrency``: uvicorn's own, with a JSON body and ``Retry-After``."""
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(_BUSY_BODY)).encode()),
        (b"retry-after", str(RETRY_AFTER_S).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": _BUSY_BODY, "more_body": False})


# uvicorn picks that answer by a module-level name in its httptools protocol, the base of the one
# below and the only one recdrill serves with (``local_backend.py``): replacing the name is the one
# way in without copying ``on_headers_complete``.
httptools_impl.service_unavailable = over_connection_limit  # type: ignore[attr-defined]


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` whose connections must send each request's headers in time and small."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout_s = float(os.environ.get(HEADER_TIMEOUT_ENV, DEFAULT_HEADER_TIMEOUT_S))
        self._header_deadline: asyncio.TimerHandle | None = None
        self._header_bytes = 0  # bytes received while waiting for the current request's headers

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_waiting()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        waiting = self._header_deadline is not None
        super().data_received(data)
        if waiting and self._header_deadline is not None:  # the headers are still not complete
            self._header_bytes += len(data)
            if self._header_bytes > MAX_HEADER_BYTES:
                self._refuse("431 Request Header Fields Too Large")

    def on_headers_complete(self) -> None:
        self._stop_waiting()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        pipelined = bool(self.pipeline)  # a queued request whose headers are in already
        super().on_response_complete()
        if not pipelined and not self.transport.is_closing():
            self._await_headers()  # the next request on this connection gets its own deadline

    def _await_headers(self) -> None:
        self._stop_waiting()
        self._header_bytes = 0
        self._header_deadline = self.loop.call_later(
            self.header_timeout_s, self._refuse, "408 Request Timeout"
        )

    def _stop_waiting(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _refuse(self, status: str) -> None:
        self._stop_waiting()
        if not self.transport.is_closing():
            self.transport.write(_answer(status))
            self.transport.close()
