"""The access gate on a real server: keys checked before bodies, every guarded call audited whatever
its body, complete 405s, and a 400 for HTTP/1.1 without Host."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import psutil
import pytest
from fastapi.routing import APIRoute

from recdrill.contract import AUDIT_DB
from recdrill.security.audit import AuditLog
from recdrill.security.roles import Role
from recdrill.serving.app import create_app
from recdrill.serving.config import ServeConfig
from recdrill.serving.middleware.access_gate import flat_routes, role_of
from recdrill.serving.routes import ROUTERS
from recdrill.serving.runtime.local_process import ServerProcess
from tests.serving.raw_http import connect, read_answer, request_head, send_once, status_of
from tests.serving.routes.conftest import chain_dataset, save_model

ADMIN = {"X-API-Key": "access-gate-key"}
GUARDED_POSTS = ["/admin/models/reload", "/admin/faults", "/admin/models/canary", "/admin/feedback/lookup"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("access-gate")
    model = save_model(root / "itemknn", chain_dataset())
    with ServerProcess(
        model, root / "state", admin_key=ADMIN["X-API-Key"], deadline_ms=10_000, extra_args=["--no-monitor"]
    ) as running:
        yield running


def audit_rows(server: ServerProcess, since: float, path: str) -> list[int]:
    log = AuditLog(server.state_dir / AUDIT_DB)
    try:
        return [r.status for r in log.records(since) if r.path == path]
    finally:
        log.close()


@pytest.mark.parametrize("path", GUARDED_POSTS)
def test_a_malformed_body_without_a_key_is_a_401_and_audited(server: ServerProcess, path: str) -> None:
    since = time.time()
    answer = httpx.post(server.url + path, content=b"{", headers={"Content-Type": "application/json"})
    assert answer.status_code == 401 and "X-API-Key" in answer.json()["error"]
    assert audit_rows(server, since, path) == [401]


@pytest.mark.parametrize("path", GUARDED_POSTS)
def test_a_malformed_body_with_a_key_is_a_422_and_audited(server: ServerProcess, path: str) -> None:
    since = time.time()
    answer = httpx.post(
        server.url + path, content=b"{", headers={**ADMIN, "Content-Type": "application/json"}
    )
    assert answer.status_code == 422 and answer.json()["error"] == "invalid request"
    assert audit_rows(server, since, path) == [422]


def test_a_huge_body_without_a_key_is_refused_unread(server: ServerProcess) -> None:
    worker = psutil.Process(server.pid)
    before = worker.memory_info().rss
    head = {"Host": "x", "Content-Type": "application/json", "Content-Length": str(100 * 2**20)}
    for key, status in ((None, 401), (ADMIN["X-API-Key"], 413)):
        headers = head if key is None else {**head, **ADMIN}
        with connect(server.url) as sock:
            sock.sendall(request_head("POST", "/admin/faults", headers) + b"{" * 2**20)
            assert status_of(read_answer(sock)) == status
    assert worker.memory_info().rss - before < 20 * 2**20


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("OPTIONS", "/admin/faults", "POST, GET"),
        ("PUT", "/admin/faults", "POST, GET"),
        ("OPTIONS", "/admin/models/canary", "POST, GET, DELETE"),
        ("GET", "/v1/recommend", "POST"),
    ],
)
def test_a_405_names_every_allowed_method(server: ServerProcess, method: str, path: str, allow: str) -> None:
    since = time.time()
    answer = httpx.request(method, server.url + path, headers=ADMIN)
    assert answer.status_code == 405
    assert sorted(answer.headers["Allow"].split(", ")) == sorted(allow.split(", "))
    assert "not allowed" in answer.json()["error"]
    if path.startswith("/admin"):
        assert audit_rows(server, since, path) == [405]


def test_http_1_1_without_host_is_a_400_and_1_0_is_answered(server: ServerProcess) -> None:
    no_host = send_once(server.url, b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert status_of(no_host) == 400 and b"Host header" in no_host
    assert status_of(send_once(server.url, b"GET /healthz HTTP/1.0\r\n\r\n")) == 200


def test_a_wrong_key_on_an_open_route_is_a_401_before_the_body(server: ServerProcess) -> None:
    answer = httpx.post(
        server.url + "/v1/recommend",
        content=b"{",
        headers={"X-API-Key": "nope", "Content-Type": "application/json"},
    )
    assert answer.status_code == 401


def test_every_route_declares_the_role_the_gate_enforces(tmp_path_factory: pytest.TempPathFactory) -> None:
    app = create_app(
        ServeConfig(model_dir=tmp_path_factory.mktemp("unused"), state_dir=tmp_path_factory.mktemp("s"))
    )
    routes = flat_routes(app.routes, ROUTERS)
    roles = {(sorted(r.methods)[0], r.path): role_of(r) for r in routes if isinstance(r, APIRoute)}
    assert roles[("POST", "/v1/recommend")] is Role.READER
    assert roles[("POST", "/v1/feedback")] is Role.WRITER
    assert roles[("GET", "/healthz")] is None and roles[("GET", "/metrics")] is None
    assert all(
        role is not None and role.audited for (_, path), role in roles.items() if path.startswith("/admin")
    )
