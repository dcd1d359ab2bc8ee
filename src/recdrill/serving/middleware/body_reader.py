"""Read a request's body whole, bounded in size and time, before anything else holds capacity for it.

A request used to take its admission slot (``admission.py``) before its body arrived, and nothing
timed the body out: 16 connections that sent headers and one byte of body each held the worker's
16 slots, and every recommendation after them got a 429. This ASGI middleware sits outside
admission control and reads the body first:

* a declared ``Content-Length`` above ``max_bytes`` is answered 413 at once, the body unread; a
  chunked body is refused the moment it passes the limit, so at most ``max_bytes`` is ever held;
* the whole body must arrive within ``timeout_s`` of the headers, else 408: a trickling client
  holds a coroutine for a few seconds, never a slot;
* a JSON body (``application/json``, ``+json`` or no content type) must be standard JSON: Python's
  parser takes ``NaN`` and ``Infinity``, which a client could use to put non-finite numbers where
  the models and monitors expect finite ones, so they are refused (422, as any invalid body);
* the audit record the access gate opened (``access_gate.py``) gets its summary of the body.

Both refusals close the connection (the rest of the body is never read). The app downstream gets the
body in one message, then the connection's own messages (a disconnect).
"""

from __future__ import annotations

import asyncio
import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from recdrill.security.access import summary_of
from recdrill.security.audit import AUDIT_SCOPE_KEY, PendingAudit
from recdrill.serving.middleware.access_gate import send_json_error

CLOSE = {"Connection": "close"}


class BodyTooLarge(Exception):
    """The body passed the limit while it was read."""


class BodyReader:
    """Buffers each HTTP request body (up to ``max_bytes``, within ``timeout_s``) and checks JSON."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared == -1:
            await send_json_error(send, 400, "Content-Length is not a non-negative integer", CLOSE)
            return
        if declared is not None and declared > self.max_bytes:
            await self._too_large(send, f"{declared} bytes declared")
            return
        try:
            async with asyncio.timeout(self.timeout_s):
                body = await self._read(receive)
        except TimeoutError:
            error = f"request body not received within {self.timeout_s:g} s"
            await send_json_error(send, 408, error, CLOSE)
            return
        except BodyTooLarge:
            await self._too_large(send, "more sent")
            return
        if body is None:
            return  # the client went away before its body arrived: no one to answer
        if body and _is_json(scope) and (problem := nonstandard_json(body)) is not None:
            await _invalid_json(send, problem)
            return
        pending: PendingAudit | None = scope.get(AUDIT_SCOPE_KEY)
        if pending is not None:
            pending.summary = summary_of(body)
        await self.app(scope, _replay(body, receive), send)

    async def _read(self, receive: Receive) -> bytes | None:
        parts: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                raise BodyTooLarge
            parts.append(chunk)
            if not message.get("more_body", False):
                return b"".join(parts)

    async def _too_large(self, send: Send, what: str) -> None:
        error = f"request body too large: {what}, the limit is {self.max_bytes} bytes"
        await send_json_error(send, 413, error, CLOSE)


def nonstandard_json(body: bytes) -> str | None:
    """Why ``body`` is not standard JSON (``NaN``, ``Infinity``, ``-Infinity``), or None. A body that
    does not parse at all is left to the app, whose 422 names where it broke.

    >>> nonstandard_json(b'{"ts": Infinity}'), nonstandard_json(b'{"ts": 1.5}'), nonstandard_json(b"{")
    ('Infinity is not JSON (RFC 8259 has no non-finite numbers)', None, None)
    """
    found: list[str] = []

    def refuse(constant: str) -> None:
        found.append(constant)
        raise ValueError(constant)

    try:
        json.loads(body, parse_constant=refuse)
    except ValueError:
        pass  # a decode error (a subclass) or the constant: `found` tells which
    except RecursionError:
        return "JSON nested too deeply"
    if found:
        return f"{found[0]} is not JSON (RFC 8259 has no non-finite numbers)"
    return None


async def _invalid_json(send: Send, problem: str) -> None:
    """422 in the shape of every invalid request (``error_handlers.invalid_request``)."""
    body = json.dumps(
        {"error": "invalid request", "detail": [{"loc": ["body"], "msg": problem, "type": "json_invalid"}]}
    ).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 422, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _declared_length(scope: Scope) -> int | None:
    """The ``Content-Length`` header's value; None without one; -1 when it is not a number."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else -1
    return None


def _is_json(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            media: str = value.decode("latin-1").split(";", 1)[0].strip().lower()
            return media == "application/json" or (
                media.startswith("application/") and media.endswith("+json")
            )
    return True  # FastAPI parses a body without a content type as JSON


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the buffered body once, then the connection's own messages."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
