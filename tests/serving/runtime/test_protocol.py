"""The guarded HTTP protocol on a real server: headers must arrive in time and small; well-behaved
keep-alive and pipelined clients are unaffected."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from recdrill.serving.config import ServeConfig
from recdrill.serving.runtime.local_process import ServerProcess
from recdrill.serving.runtime.protocol import DEFAULT_HEADER_TIMEOUT_S, HEADER_TIMEOUT_ENV, MAX_HEADER_BYTES
from tests.serving.raw_http import connect, read_answer, send_once, status_of
from tests.serving.routes.conftest import chain_dataset, save_model

HEADER_TIMEOUT_S = 1.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("protocol")
    model = save_model(root / "itemknn", chain_dataset())
    with pytest.MonkeyPatch.context() as env:
        env.setenv(HEADER_TIMEOUT_ENV, str(HEADER_TIMEOUT_S))
        server = ServerProcess(model, root / "state", deadline_ms=10_000, extra_args=["--no-monitor"])
        server.start()
    try:
        yield server
    finally:
        server.stop()


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


def test_a_connection_that_sends_nothing_is_closed(server: ServerProcess) -> None:
    with connect(server.url) as sock:
        assert status_of(read_answer(sock)) == 408  # then the server closed it (read_answer saw EOF)


def test_headers_over_the_size_cap_are_a_431(server: ServerProcess) -> None:
    filler = b"X-Filler: " + b"a" * 1000 + b"\r\n"
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + filler * (MAX_HEADER_BYTES // len(filler) + 2)
    assert status_of(send_once(server.url, head)) == 431


def test_keep_alive_and_pipelined_requests_are_answered(server: ServerProcess) -> None:
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    with connect(server.url) as sock:
        sock.sendall(request * 2 + b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = read_answer(sock)
    assert answer.count(b"HTTP/1.1 200") == 3 and b"408" not in answer


def test_the_default_matches_the_config() -> None:
    assert ServeConfig.__dataclass_fields__["header_timeout_s"].default == DEFAULT_HEADER_TIMEOUT_S
