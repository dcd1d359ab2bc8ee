"""The body reader on a real server: bodies are read before admission, bounded in size and time, and
must be standard JSON; hostile clients hold no capacity."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
import pytest
from starlette.types import Message, Receive, Scope, Send

from recdrill.serving.middleware.body_reader import BodyReader, nonstandard_json
from recdrill.serving.runtime.local_process import ServerProcess
from tests.serving.raw_http import connect, read_answer, request_head, send_once, status_of
from tests.serving.routes.conftest import serve_with_env

ADMIN = {"X-API-Key": "body-reader-key"}
MAX_BODY = 64 * 1024
BODY_TIMEOUT_S = 2


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {"RECDRILL_MAX_BODY_BYTES": str(MAX_BODY), "RECDRILL_BODY_TIMEOUT_S": str(BODY_TIMEOUT_S)}
    root = tmp_path_factory.mktemp("body-reader")
    yield from serve_with_env(root, env, admin_key=ADMIN["X-API-Key"], deadline_ms=10_000)


def slow_body(url: str) -> socket.socket:
    """A connection that sends a recommend request's headers and 1 of its 100 body bytes."""
    sock = connect(url)
    head = {"Host": "x", "Content-Type": "application/json", "Content-Length": "100"}
    sock.sendall(request_head("POST", "/v1/recommend", head) + b"{")
    return sock


def test_slow_bodies_hold_no_admission_slot_and_time_out(server: ServerProcess) -> None:
    slow = [slow_body(server.url) for _ in range(40)]  # 2.5x the worker's 16 admission slots
    try:
        with httpx.Client(base_url=server.url, timeout=10.0) as client:
            answers = [client.post("/v1/recommend", json={"history": ["i1"], "k": 5}) for _ in range(30)]
        assert [a.status_code for a in answers] == [200] * 30
        for sock in slow:  # each trickler is cut off at the body deadline, with a 408 and a close
            answer = read_answer(sock)
            assert status_of(answer) == 408 and b"not received within" in answer
    finally:
        for sock in slow:
            sock.close()


def test_a_declared_body_over_the_limit_is_a_413_before_it_is_read(server: ServerProcess) -> None:
    worker = psutil.Process(server.pid)
    before = worker.memory_info().rss
    head = {"Host": "x", "Content-Type": "application/json", "Content-Length": str(100 * 2**20)}
    with connect(server.url) as sock:
        sock.sendall(request_head("POST", "/v1/feedback", head) + b"x" * 2**20)  # 1 MiB of the 100
        answer = read_answer(sock)
    assert status_of(answer) == 413 and b"104857600 bytes declared" in answer
    assert worker.memory_info().rss - before < 20 * 2**20


def test_a_chunked_body_is_refused_as_soon_as_it_passes_the_limit(server: ServerProcess) -> None:
    sent = 0

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        for _ in range(1000):  # up to 16 MiB, far past the limit
            sent += 16384
            yield b" " * 16384

    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        try:
            answer = client.post(
                "/v1/feedback", content=chunks(), headers={"Content-Type": "application/json"}
            )
        except httpx.TransportError:  # the server may close while this side still writes
            return
    assert answer.status_code == 413 and "limit is 65536 bytes" in answer.json()["error"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/feedback", b'{"user_id": "u1", "item_id": "i1", "event": "click", "ts": Infinity}'),
        ("/v1/feedback", b'{"user_id": "u1", "item_id": "i1", "event": "click", "ts": NaN}'),
        ("/v1/recommend", b'{"history": ["i1"], "k": -Infinity}'),
    ],
)
def test_nonstandard_json_is_a_422(server: ServerProcess, path: str, body: bytes) -> None:
    answer = httpx.post(server.url + path, content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 422
    detail = answer.json()["detail"][0]
    assert detail["type"] == "json_invalid" and "is not JSON" in detail["msg"]


def test_a_bad_content_length_is_a_400(server: ServerProcess) -> None:
    head = {"Host": "x", "Content-Type": "application/json", "Content-Length": "ten", "Connection": "close"}
    assert status_of(send_once(server.url, request_head("POST", "/v1/feedback", head))) in (400,)


def test_nonstandard_json_names_the_constant() -> None:
    assert nonstandard_json(b"[1, -Infinity]") == "-Infinity is not JSON (RFC 8259 has no non-finite numbers)"
    assert nonstandard_json(b'{"a": "NaN"}') is None  # a string, not the constant
    assert nonstandard_json(b"[" * 100_000) == "JSON nested too deeply"  # refused, never raised


def test_the_app_gets_the_whole_body_once_then_the_connection(tmp_path: Path) -> None:
    seen: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(await receive())
        seen.append(await receive())

    async def run() -> None:
        parts = [
            {"type": "http.request", "body": b'{"a":', "more_body": True},
            {"type": "http.request", "body": b" 1}", "more_body": False},
            {"type": "http.disconnect"},
        ]

        async def receive() -> Message:
            return parts.pop(0)

        async def send(message: Message) -> None:
            raise AssertionError(f"nothing should be answered here: {message}")

        scope = {
            "type": "http",
            "method": "POST",
            "path": "/x",
            "headers": [(b"content-type", b"application/json")],
        }
        await BodyReader(app, max_bytes=1024, timeout_s=5.0)(scope, receive, send)

    asyncio.run(run())
    assert seen == [
        {"type": "http.request", "body": b'{"a": 1}', "more_body": False},
        {"type": "http.disconnect"},
    ]


def test_many_slow_clients_at_once_leave_recommendations_answered(server: ServerProcess) -> None:
    """The acceptance shape, scaled to a test: 64 slow bodies and 64 slow headers held while 50
    recommend probes are sent; every probe is a 200."""
    slow = [slow_body(server.url) for _ in range(64)]
    for _ in range(64):
        sock = connect(server.url)
        sock.sendall(b"POST /v1/recommend HTTP/1.1\r\nHost: x\r\n")  # headers never completed
        slow.append(sock)
    started = time.monotonic()
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            probe = {"history": ["i2"], "k": 5}
            codes = list(
                pool.map(
                    lambda _: httpx.post(server.url + "/v1/recommend", json=probe).status_code, range(50)
                )
            )
        assert codes == [200] * 50, f"after {time.monotonic() - started:.1f} s"
    finally:
        for sock in slow:
            sock.close()
