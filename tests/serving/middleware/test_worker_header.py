"""WorkerHeader: every HTTP response of a worker names its pid, around hand-written ASGI apps and a
real FastAPI app, in process."""

from __future__ import annotations

import asyncio
import os

import httpx
from fastapi import FastAPI, HTTPException
from starlette.types import Message, Receive, Scope, Send

from recdrill.contract import WORKER_HEADER
from recdrill.serving.middleware.worker_header import WorkerHeader

PID = str(os.getpid()).encode()


async def call(app: WorkerHeader, kind: str = "http") -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app({"type": kind, "path": "/", "method": "GET", "headers": []}, receive, send)
    return sent


def test_the_header_is_this_processs_pid_under_the_contracts_name() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        pass

    assert WorkerHeader(app).header == (b"x-recdrill-worker", PID)
    assert WORKER_HEADER.lower() == "x-recdrill-worker"


def test_the_header_is_added_after_the_apps_own_headers_and_the_body_is_untouched() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 201, "headers": [(b"x-own", b"1")]})
        await send({"type": "http.response.body", "body": b"payload"})

    start, body = asyncio.run(call(WorkerHeader(app)))
    assert start["status"] == 201
    assert start["headers"] == [(b"x-own", b"1"), (b"x-recdrill-worker", PID)]
    assert body == {"type": "http.response.body", "body": b"payload"}


def test_a_start_message_without_headers_gets_only_the_worker_header() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 204})
        await send({"type": "http.response.body", "body": b""})

    start, _ = asyncio.run(call(WorkerHeader(app)))
    assert start["headers"] == [(b"x-recdrill-worker", PID)]


def test_other_scopes_pass_through_untouched() -> None:
    async def lifespan(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "lifespan.startup.complete"})

    assert asyncio.run(call(WorkerHeader(lifespan), kind="lifespan")) == [
        {"type": "lifespan.startup.complete"}
    ]


def test_every_response_of_a_real_app_is_tagged_refusals_included() -> None:
    app = FastAPI()

    @app.get("/ok")
    async def ok() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/refused")
    async def refused() -> None:
        raise HTTPException(403, detail="no")

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=WorkerHeader(app))
        async with httpx.AsyncClient(transport=transport, base_url="http://worker") as client:
            return [await client.get(path) for path in ("/ok", "/refused", "/missing")]

    responses = asyncio.run(run())
    assert [r.status_code for r in responses] == [200, 403, 404]
    assert [r.headers[WORKER_HEADER] for r in responses] == [str(os.getpid())] * 3
    assert responses[0].json() == {"status": "ok"}
