"""AccessControl and require_role: 401/403/429 decisions, the bootstrap key, and the audit trail."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI, HTTPException

from recdrill.data.pseudonymise import scrub_text
from recdrill.errors import ConfigError
from recdrill.security.access import ACCESS_STATE, BOOTSTRAP_NAME, AccessControl, Principal, require_role
from recdrill.security.audit import AuditLog, AuditMiddleware, PendingAudit
from recdrill.security.keystore import KeyStore, hash_key
from recdrill.security.ratelimit import RateLimiter
from recdrill.security.roles import Role

ADMIN_SECRET = "bootstrap-secret"


def frozen_clock() -> float:
    return 0.0


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    path = tmp_path / "keys.db"
    KeyStore.open(path, create=True).close()
    return path


@pytest.fixture
def access(store_path: Path, tmp_path: Path) -> Iterator[AccessControl]:
    """Keys enforced (a key store exists), the bootstrap admin key configured, a frozen rate clock."""
    control = AccessControl(
        store_path, hash_key(ADMIN_SECRET), tmp_path / "audit.db", rate_per_s=1.0, burst=5
    )
    control.limiter = RateLimiter(1.0, 5, clock=frozen_clock)
    control.open()
    yield control
    control.close()


@pytest.fixture
def open_access(tmp_path: Path) -> Iterator[AccessControl]:
    """No key store: reader and writer endpoints are open to callers without a key."""
    control = AccessControl(None, None, tmp_path / "audit.db", rate_per_s=100.0, burst=100)
    control.open()
    yield control
    control.close()


def create_key(access: AccessControl, name: str, role: Role, **limits: float) -> str:
    assert access.keys is not None
    return access.keys.create(name, role, **limits)  # type: ignore[arg-type]


def refusal(
    access: AccessControl, key: str | None, needed: Role, pending: PendingAudit | None = None
) -> HTTPException:
    with pytest.raises(HTTPException) as caught:
        access.authorise(key, needed, pending)
    return caught.value


def test_without_a_key_store_reader_and_writer_endpoints_are_open(open_access: AccessControl) -> None:
    assert open_access.keys_required is False
    assert open_access.authorise(None, Role.READER) is None
    assert open_access.authorise("", Role.WRITER) is None


@pytest.mark.parametrize("needed", [Role.OPERATOR, Role.ADMIN])
def test_operator_and_admin_endpoints_always_need_a_key(open_access: AccessControl, needed: Role) -> None:
    error = refusal(open_access, None, needed)
    assert error.status_code == 401 and error.detail == "missing X-API-Key header"
    assert error.headers == {"WWW-Authenticate": 'APIKey header="X-API-Key"'}


def test_a_presented_key_is_checked_even_on_an_open_endpoint(open_access: AccessControl) -> None:
    error = refusal(open_access, "rdk_made_up", Role.READER)
    assert error.status_code == 401 and "invalid API key" in str(error.detail)


def test_with_a_key_store_even_reader_endpoints_need_a_key(access: AccessControl) -> None:
    assert access.keys_required is True
    assert refusal(access, None, Role.READER).status_code == 401


def test_a_live_key_is_admitted_as_its_principal(access: AccessControl, tmp_path: Path) -> None:
    key = create_key(access, "ci-bot", Role.OPERATOR)
    assert access.authorise(key, Role.READER) == Principal("ci-bot", Role.OPERATOR)
    pending = PendingAudit(AuditLog(tmp_path / "other-audit.db"), "operator", "POST", "/admin/faults")
    assert access.authorise(key, Role.OPERATOR, pending) == Principal("ci-bot", Role.OPERATOR)
    assert (pending.who, pending.key_role) == ("ci-bot", "operator")
    pending.log.close()


def test_unknown_and_revoked_keys_get_401_and_the_audit_says_which(access: AccessControl) -> None:
    assert access.keys is not None and access.audit is not None
    key = create_key(access, "old-bot", Role.ADMIN)
    access.keys.revoke("old-bot")
    unknown = PendingAudit(access.audit, "admin", "POST", "/admin/models/reload")
    revoked = PendingAudit(access.audit, "admin", "POST", "/admin/models/reload")
    assert refusal(access, "rdk_guess", Role.ADMIN, unknown).status_code == 401
    assert refusal(access, key, Role.ADMIN, revoked).status_code == 401
    assert unknown.who == "<unknown key>" and unknown.key_role is None
    assert revoked.who == "old-bot (revoked)"


def test_a_role_that_does_not_grant_the_endpoint_gets_403_naming_both(access: AccessControl) -> None:
    key = create_key(access, "collector", Role.WRITER)
    error = refusal(access, key, Role.READER)
    assert error.status_code == 403
    assert error.detail == "key 'collector' has role writer; this needs reader"


def test_the_bootstrap_admin_key_is_an_admin_without_a_stored_key(
    access: AccessControl, open_access: AccessControl
) -> None:
    assert access.authorise(ADMIN_SECRET, Role.ADMIN) == Principal(BOOTSTRAP_NAME, Role.ADMIN)
    open_access.admin_key_sha256 = hash_key(ADMIN_SECRET)
    assert open_access.authorise(ADMIN_SECRET, Role.OPERATOR) == Principal(BOOTSTRAP_NAME, Role.ADMIN)
    assert refusal(open_access, ADMIN_SECRET + "x", Role.ADMIN).status_code == 401


def test_a_key_past_its_own_rate_limit_gets_429_with_retry_after(access: AccessControl) -> None:
    key = create_key(access, "slow-bot", Role.READER, rate_per_s=0.25, burst=1)
    assert access.authorise(key, Role.READER) == Principal("slow-bot", Role.READER, 0.25, 1)
    error = refusal(access, key, Role.READER)
    assert error.status_code == 429
    assert error.detail == "rate limit of key 'slow-bot' exceeded: retry in 4.00 s"
    assert error.headers == {"Retry-After": "4"}
    other = create_key(access, "fast-bot", Role.READER)  # the default bucket (burst 5) is its own
    assert all(access.authorise(other, Role.READER) is not None for _ in range(5))
    assert refusal(access, other, Role.READER).status_code == 429


def test_open_and_close_manage_the_key_store_and_audit_log(store_path: Path, tmp_path: Path) -> None:
    control = AccessControl(store_path, None, tmp_path / "state" / "audit.db", rate_per_s=1.0, burst=1)
    assert control.keys is None and control.audit is None
    control.open()
    assert control.keys is not None and control.audit is not None
    assert (tmp_path / "state" / "audit.db").is_file()
    control.close()
    assert control.keys is None and control.audit is None


def test_require_role_refuses_an_unknown_role_at_once() -> None:
    with pytest.raises(ConfigError, match="unknown role 'superuser'"):
        require_role("superuser")


def app_with(access: AccessControl | None) -> FastAPI:
    app = FastAPI()
    app.add_middleware(AuditMiddleware)

    @app.get("/v1/read", dependencies=[Depends(require_role(Role.READER))])
    async def read() -> dict[str, str]:
        return {"ok": "read"}

    @app.post("/admin/thing/{name}", dependencies=[Depends(require_role("admin"))])
    async def admin(name: str) -> dict[str, str]:
        return {"ok": name}

    if access is not None:
        setattr(app.state, ACCESS_STATE, access)
    return app


def call(app: FastAPI, requests: list[tuple[str, str, dict[str, Any]]]) -> list[httpx.Response]:
    """Send ``(method, path, keyword arguments)`` requests to ``app`` in process (no server)."""

    async def send() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            return [await client.request(method, path, **options) for method, path, options in requests]

    return asyncio.run(send())


def test_require_role_answers_503_before_the_server_started() -> None:
    (response,) = call(app_with(None), [("GET", "/v1/read", {})])
    assert response.status_code == 503 and response.json() == {"detail": "server not started"}


def test_require_role_checks_the_header_and_audits_admin_calls(access: AccessControl) -> None:
    assert access.audit is not None
    reader = create_key(access, "shop-front", Role.READER)
    read, anonymous, denied, allowed = call(
        app_with(access),
        [
            ("GET", "/v1/read", {"headers": {"X-API-Key": reader}}),
            ("GET", "/v1/read", {}),
            ("POST", "/admin/thing/x", {"headers": {"X-API-Key": reader}, "json": {"kind": "nan", "n": 2}}),
            ("POST", "/admin/thing/ann@example.com", {"headers": {"X-API-Key": ADMIN_SECRET}}),
        ],
    )
    assert read.json() == {"ok": "read"} and anonymous.status_code == 401
    assert denied.status_code == 403 and allowed.status_code == 200
    records = access.audit.records()
    assert [(r.who, r.key_role, r.needed_role, r.method, r.status) for r in records] == [
        ("shop-front", "reader", "admin", "POST", 403),
        (BOOTSTRAP_NAME, "admin", "admin", "POST", 200),
    ]  # the reader endpoint is not audited
    assert records[0].summary == "kind=nan n=2"
    assert "ann@example.com" not in records[1].path
    assert records[1].path == scrub_text("/admin/thing/ann@example.com")
