"""Access control on a real server: every route of the app against every kind of caller.

The route list comes from ``create_app(...).routes`` and must equal the table below, so a new
endpoint fails this file until someone decides which role it needs.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from recdrill.cli import main
from recdrill.cli.api_keys import revoke_key
from recdrill.drills.replayer import Replayer, ReplayPlan
from recdrill.security.audit import AuditLog, AuditRecord
from recdrill.security.keystore import KeyStore
from recdrill.serving.app import create_app
from recdrill.serving.config import ServeConfig
from recdrill.serving.runtime.local_process import ServerProcess

SHOP = "shopsim:n_items=500,n_users=400,n_events=8000"
BOOTSTRAP_KEY = "bootstrap-admin-secret"
PUBLIC = None
# (method, route template) -> the role it needs; PUBLIC for probes, metrics and the API docs.
NEEDS: dict[tuple[str, str], str | None] = {
    ("POST", "/v1/recommend"): "reader",
    ("POST", "/v1/feedback"): "writer",
    ("POST", "/admin/faults"): "operator",
    ("GET", "/admin/faults"): "operator",
    ("DELETE", "/admin/faults/{fault_id}"): "operator",
    ("POST", "/admin/feedback/lookup"): "operator",
    ("POST", "/admin/models/reload"): "admin",
    ("POST", "/admin/models/canary"): "admin",
    ("DELETE", "/admin/models/canary"): "admin",
    ("GET", "/admin/models/canary"): "operator",
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    **{
        (m, p): PUBLIC
        for m in ("GET", "HEAD")
        for p in ("/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc")
    },
}
GRANTS = {
    "reader": {"reader"},
    "writer": {"writer"},
    "operator": {"operator", "reader", "writer"},
    "admin": {"admin", "operator", "reader", "writer"},
}
BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/v1/recommend"): {"k": 3},
    ("POST", "/v1/feedback"): {"user_id": "U-matrix", "item_id": "SKU-000001", "event": "view"},
    ("POST", "/admin/faults"): {"kind": "latency", "latency_ms": 0, "rate": 0.0, "ttl_s": 1},
    ("POST", "/admin/models/canary"): {"version": "v404", "share": 0.1},  # no such version: 404
    ("POST", "/admin/feedback/lookup"): {"event_ids": ["matrix-e-1"]},
}


@dataclass(frozen=True)
class Caller:
    name: str  # what the audit log should say
    key: str | None
    role: str | None  # None: not a valid key


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("model") / "itemknn"
    assert main(["train", "--data", SHOP, "--model", "itemknn", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def callers(home: Path) -> dict[str, Caller]:
    found = {
        "anonymous": Caller("<no key>", None, None),
        "unknown": Caller("<unknown key>", "rdk_not-a-key-anyone-was-given", None),
        "bootstrap": Caller("env:RECDRILL_ADMIN_KEY", BOOTSTRAP_KEY, "admin"),
    }
    with KeyStore.open(home / "keys.db", create=True) as store:
        for role in GRANTS:
            found[role] = Caller(f"matrix-{role}", store.create(f"matrix-{role}", role), role)
        revoked = store.create("matrix-revoked", "admin")
        store.revoke("matrix-revoked")
        found["revoked"] = Caller("matrix-revoked (revoked)", revoked, None)
    return found


@pytest.fixture(scope="module")
def server(model_dir: Path, home: Path, callers: dict[str, Caller]) -> Iterator[ServerProcess]:
    with pytest.MonkeyPatch.context() as env:  # the child server inherits this environment
        env.setenv("RECDRILL_HOME", str(home))
        env.setenv("RECDRILL_KEY_STORE", str(home / "keys.db"))
        env.setenv("RECDRILL_KEY_RATE_PER_S", "1000")  # the matrix must not hit the default limit
        env.setenv("RECDRILL_KEY_BURST", "1000")
        running = ServerProcess(model_dir, home / "state", admin_key=BOOTSTRAP_KEY, deadline_ms=500).start()
    yield running
    running.stop()


@pytest.fixture
def api(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        yield client


def audit_rows(state_dir: Path, since: float, until: float = float("inf")) -> list[AuditRecord]:
    log = AuditLog(state_dir / "audit.db")
    try:
        return [r for r in log.records(since) if r.at <= until]
    finally:
        log.close()


def call(client: httpx.Client, method: str, route: str, key: str | None) -> httpx.Response:
    headers = {"X-API-Key": key} if key is not None else {}
    body = BODIES.get((method, route))
    path = route.replace("{fault_id}", "no-such-fault")
    return client.request(method, path, json=body, headers=headers)


def test_the_matrix_covers_every_route_of_the_app(tmp_path: Path) -> None:
    app = create_app(ServeConfig(tmp_path / "model", tmp_path / "state"))
    routes: set[tuple[str, str]] = set()
    pending = list(app.routes)
    while pending:
        route = pending.pop()
        included = getattr(route, "original_router", None)  # an included APIRouter: its own routes
        if included is not None:
            pending.extend(included.routes)
            continue
        # A mount or websocket has no methods: "*" keeps it in the comparison.
        path = str(getattr(route, "path", route))
        routes |= {(method, path) for method in getattr(route, "methods", None) or {"*"}}
    assert routes == set(NEEDS), "a route was added or removed: give it a role in NEEDS"


def test_each_caller_gets_exactly_its_allowed_set_and_json_refusals(
    api: httpx.Client, server: ServerProcess, callers: dict[str, Caller]
) -> None:
    started = time.time()
    sent: list[tuple[str, str, str, int]] = []  # audited calls: who, method, path, status
    for caller in callers.values():
        allowed = set()
        for (method, route), needed in NEEDS.items():
            response = call(api, method, route, caller.key)
            if needed is PUBLIC:
                assert response.status_code < 400, (caller.name, route, response.text)
                continue
            if needed in ("operator", "admin"):
                sent.append((caller.name, method, response.request.url.path, response.status_code))
            if caller.role is None:  # no key, unknown key, revoked key
                assert response.status_code == 401, (caller.name, route, response.text)
                assert response.json()["error"] and "X-API-Key" in response.headers["WWW-Authenticate"]
            elif needed in GRANTS[caller.role]:
                assert response.status_code in (200, 201, 404), (caller.name, route, response.text)
                allowed.add((method, route))
            else:
                assert response.status_code == 403, (caller.name, route, response.text)
                error = response.json()["error"]
                assert caller.name in error and f"role {caller.role}" in error and needed in error
        expected = {r for r, needed in NEEDS.items() if caller.role and needed in GRANTS[caller.role]}
        assert allowed == expected, caller.name
    # Every operator/admin call, allowed or refused, is in the audit log with its outcome.
    rows = audit_rows(server.state_dir, started, time.time())
    assert Counter((r.who, r.method, r.path, r.status) for r in rows) == Counter(sent)
    assert {r.status for r in rows} >= {200, 201, 401, 403, 404}
    reload_rows = [r for r in rows if r.path == "/admin/models/reload" and r.who == "matrix-admin"]
    assert [(r.needed_role, r.key_role) for r in reload_rows] == [("admin", "admin")]
    fault_rows = [r for r in rows if r.method == "POST" and r.path == "/admin/faults" and r.status == 201]
    assert fault_rows and all("kind=latency" in r.summary and "ttl_s=1" in r.summary for r in fault_rows)


def test_no_key_or_hash_reaches_the_audit_log_or_the_server_log(
    api: httpx.Client, server: ServerProcess, callers: dict[str, Caller]
) -> None:
    for caller in callers.values():
        call(api, "GET", "/admin/faults", caller.key)
    stored = b"".join(p.read_bytes() for p in server.state_dir.glob("audit.db*"))
    stored += server.log_path.read_bytes()
    assert b"matrix-operator" in stored  # the log is there and names callers
    for caller in callers.values():
        if caller.key is not None:
            assert caller.key.encode() not in stored, caller.name
            assert hashlib.sha256(caller.key.encode()).hexdigest().encode() not in stored, caller.name


def test_a_key_revoked_while_the_server_runs_is_refused_at_once(
    api: httpx.Client, server: ServerProcess, home: Path
) -> None:
    with KeyStore.open(home / "keys.db") as store:
        key = store.create("soon-revoked", "operator")
    assert api.get("/admin/faults", headers={"X-API-Key": key}).status_code == 200
    revoked = CliRunner().invoke(revoke_key, ["soon-revoked", "--store", str(home / "keys.db")])
    assert revoked.exit_code == 0, revoked.output
    refused = api.get("/admin/faults", headers={"X-API-Key": key})
    assert refused.status_code == 401 and "revoked" in refused.json()["error"]
    assert api.post("/v1/recommend", json={"k": 3}, headers={"X-API-Key": key}).status_code == 401
    last = audit_rows(server.state_dir, time.time() - 60)[-1]
    assert (last.who, last.status) == ("soon-revoked (revoked)", 401)


def test_a_key_past_its_burst_gets_429_with_retry_after_and_others_are_not_slowed(
    api: httpx.Client, server: ServerProcess, home: Path, callers: dict[str, Caller]
) -> None:
    with KeyStore.open(home / "keys.db") as store:  # one token per 100 s: no refill during the test
        reader = store.create("bursty-reader", "reader", rate_per_s=0.01, burst=3)
        operator = store.create("bursty-operator", "operator", rate_per_s=0.01, burst=1)
    statuses = [api.post("/v1/recommend", json={"k": 3}, headers={"X-API-Key": reader}) for _ in range(5)]
    assert [r.status_code for r in statuses] == [200, 200, 200, 429, 429]
    limited = statuses[3]
    assert 1 <= int(limited.headers["Retry-After"]) <= 100
    assert "rate limit" in limited.json()["error"] and "bursty-reader" in limited.json()["error"]
    other = {"X-API-Key": callers["reader"].key or ""}
    assert api.post("/v1/recommend", json={"k": 3}, headers=other).status_code == 200
    started = time.time()
    first, second = (api.get("/admin/faults", headers={"X-API-Key": operator}) for _ in range(2))
    assert (first.status_code, second.status_code) == (200, 429)
    rows = audit_rows(server.state_dir, started)
    assert [(r.who, r.status) for r in rows] == [("bursty-operator", 200), ("bursty-operator", 429)]


# --- without a key store: the demo's open mode ---------------------------------------------------


@pytest.fixture(scope="module")
def open_server(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    empty_home = tmp_path_factory.mktemp("open-home")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RECDRILL_HOME", str(empty_home))  # no keys.db there: no key store
        env.delenv("RECDRILL_KEY_STORE", raising=False)
        running = ServerProcess(
            model_dir, empty_home / "state", admin_key=BOOTSTRAP_KEY, deadline_ms=500
        ).start()
    yield running
    running.stop()


def test_without_a_key_store_reader_and_writer_are_open_and_admin_still_needs_the_key(
    open_server: ServerProcess,
) -> None:
    started = time.time()
    with httpx.Client(base_url=open_server.url, timeout=30.0) as client:
        for (method, route), needed in NEEDS.items():
            anonymous = call(client, method, route, None)
            if needed in (PUBLIC, "reader", "writer"):
                assert anonymous.status_code < 400, (route, anonymous.text)
            else:
                assert anonymous.status_code == 401 and anonymous.json()["error"], route
                assert call(client, method, route, BOOTSTRAP_KEY).status_code in (200, 201, 404), route
        wrong = client.post("/v1/recommend", json={"k": 3}, headers={"X-API-Key": "rdk_wrong"})
        assert wrong.status_code == 401  # a key that is presented is checked, even where none is needed
    rows = audit_rows(open_server.state_dir, started)
    audited = [r for r in NEEDS.items() if r[1] in ("operator", "admin")]
    assert Counter(r.who for r in rows) == {"<no key>": len(audited), "env:RECDRILL_ADMIN_KEY": len(audited)}


def test_without_any_key_admin_endpoints_refuse_everyone(model_dir: Path, tmp_path: Path) -> None:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RECDRILL_HOME", str(tmp_path))
        env.delenv("RECDRILL_KEY_STORE", raising=False)
        env.delenv("RECDRILL_ADMIN_KEY", raising=False)
        server = ServerProcess(model_dir, tmp_path / "state", deadline_ms=500).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30.0) as client:
            for key in (None, "", BOOTSTRAP_KEY):
                response = call(client, "GET", "/admin/faults", key)
                assert response.status_code == 401 and response.json()["error"]
            assert call(client, "POST", "/v1/recommend", None).status_code == 200
    finally:
        server.stop()


def test_drill_traffic_carries_the_drill_key_to_a_server_with_a_key_store(
    server: ServerProcess, callers: dict[str, Caller]
) -> None:
    plan = ReplayPlan(("U-000001", "U-000002"), ("", ""))
    with_key = Replayer(server.url, plan, timeout_s=10.0, api_key=callers["operator"].key)
    without = Replayer(server.url, plan, timeout_s=10.0)
    assert {r.status for r in asyncio.run(with_key.run(rate=20, duration_s=0.5))} == {200}
    assert {r.status for r in asyncio.run(without.run(rate=20, duration_s=0.5))} == {401}
