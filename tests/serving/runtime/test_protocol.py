"""The guarded HTTP protocol on a real server: headers must arrive in time and small; well-behaved
keep-alive and pipelined clients are unaffected."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from recdrill.serving.config import ServeConfig
from recdrill.serving.runtime.local_process import ServerProcess
from recdrill.serving.runtime.protocol import DEFAULT_HEADER_TIMEOUT_S, HEADER_TIMEOUT_ENV, MAX_HEADER_BYTES
from tests.serving.raw_http import connect, read_answer, request_head, send_once, status_of
from tests.serving.routes.conftest import serve_with_env

HEADER_TIMEOUT_S = 1.0
CONNECTION_CAP = 3


def json_body(answer: bytes) -> dict[str, object]:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"content-type: application/json" in head.lower(), head
    return json.loads(body)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {HEADER_TIMEOUT_ENV: str(HEADER_TIMEOUT_S)}
    yield from serve_with_env(tmp_path_factory.mktemp("protocol"), env, deadline_ms=10_000)


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server whose worker takes at most ``CONNECTION_CAP`` connections (uvicorn's limit_concurrency)."""
    env = {"RECDRILL_MAX_CONNECTIONS": str(CONNECTION_CAP)}
    yield from serve_with_env(tmp_path_factory.mktemp("capped"), env)


def test_headers_trickled_a_line_at_a_time_are_cut_off_with_a_408(server: ServerProcess) -> None:
    with connect(server.url) as sock:
        sock.sendall(b"POST /v1/recommend HTTP/1.1\r\nHost: x\r\n")
        answer = b""
        for i in range(20):  # a header line every 0.3 s: never done, until the server gives up
            try:
                sock.sendall(f"X-Slow-{i}: 1\r\n".encode())
            except OSError:
                break
            time.sleep(0.3)
        answer = read_answer(sock)
    assert status_of(answer) == 408
    assert json_body(answer) == {"error": "request headers not received in time"}


def test_a_connection_that_sends_nothing_is_closed(server: ServerProcess) -> None:
    with connect(server.url) as sock:
        assert status_of(read_answer(sock)) == 408  # then the server closed it (read_answer saw EOF)


def test_headers_over_the_size_cap_are_a_431(server: ServerProcess) -> None:
    filler = b"X-Filler: " + b"a" * 1000 + b"\r\n"
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + filler * (MAX_HEADER_BYTES // len(filler) + 2)
    answer = send_once(server.url, head)
    assert status_of(answer) == 431
    assert "over 65536 bytes" in str(json_body(answer)["error"])


def test_keep_alive_and_pipelined_requests_are_answered(server: ServerProcess) -> None:
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    with connect(server.url) as sock:
        sock.sendall(request * 2 + b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = read_answer(sock)
    assert answer.count(b"HTTP/1.1 200") == 3 and b"408" not in answer


def test_the_default_matches_the_config() -> None:
    assert ServeConfig.__dataclass_fields__["header_timeout_s"].default == DEFAULT_HEADER_TIMEOUT_S


def test_beyond_the_connection_cap_the_answer_is_a_json_503_then_capacity_returns(
    capped: ServerProcess,
) -> None:
    get = request_head("GET", "/healthz", {"Host": "x", "Connection": "close"})
    idle = [connect(capped.url) for _ in range(CONNECTION_CAP)]  # keep-alive clients holding their slots
    try:
        time.sleep(0.2)  # the worker has accepted them all
        answer = send_once(capped.url, get)
        assert status_of(answer) == 503
        assert b"retry-after: 1" in answer.lower()
        assert json_body(answer) == {
            "error": "overloaded: this worker has as many connections as it accepts; retry after 1 s",
            "retry_after_s": 1,
        }
    finally:
        for sock in idle:
            sock.close()
    deadline = time.monotonic() + 10.0
    while status_of(answer := send_once(capped.url, get)) != 200 and time.monotonic() < deadline:
        time.sleep(0.05)  # the worker notices the closed connections on its next loop pass
    assert status_of(answer) == 200
