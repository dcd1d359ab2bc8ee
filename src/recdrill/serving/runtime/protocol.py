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
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HEADER_TIMEOUT_ENV = "RECDRILL_HEADER_TIMEOUT_S"
DEFAULT_HEADER_TIMEOUT_S = 10.0
MAX_HEADER_BYTES = 64 * 1024  # request line and headers; httptools alone has no limit


def _answer(status: str) -> bytes:
    return f"HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".encode("ascii")


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
