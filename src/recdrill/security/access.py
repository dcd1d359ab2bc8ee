"""Who may call what: API-key checks as FastAPI dependencies (``Depends(require_role("reader"))``).

The key comes in the ``X-API-Key`` header. It is accepted when it is the bootstrap admin key (the
``RECDRILL_ADMIN_KEY`` variable; the server holds only its SHA-256) or a live key of the key store
(``keystore.py``). Then:

* missing, unknown or revoked key: 401; a key whose role does not grant the endpoint's role: 403;
  a key past its rate limit (``ratelimit.py``): 429 with ``Retry-After``. The app renders each
  ``HTTPException`` as ``{"error": ...}``.
* Without a key store, reader and writer endpoints stay open to callers without a key, so the demo
  and a laptop server work out of the box. **Production should configure keys** (create one with
  ``recdrill keys create``, which creates ``RECDRILL_HOME/keys.db``; a server enforces keys whenever
  that store exists or ``RECDRILL_KEY_STORE`` names one). Operator and admin endpoints always need a
  valid key. A key that is presented is always checked, even on an open endpoint.
* Every call to an operator or admin endpoint, allowed or refused, is written to the audit log.
"""

from __future__ import annotations

import hmac
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import HTTPException, Request, Security
from fastapi.security import APIKeyHeader

from recdrill.contract import API_KEY_HEADER
from recdrill.data.pseudonymise import scrub_text
from recdrill.security.audit import AUDIT_SCOPE_KEY, AuditLog, PendingAudit, summarise_body
from recdrill.security.keystore import KeyStore, hash_key
from recdrill.security.ratelimit import RateLimiter
from recdrill.security.roles import Role

BOOTSTRAP_NAME = "env:RECDRILL_ADMIN_KEY"  # ':' cannot appear in a stored key's name
ACCESS_STATE = "access"  # the attribute of ``app.state`` that holds the AccessControl
MAX_SUMMARISED_BODY = 64 * 1024
PRINCIPAL_SCOPE_KEY = "recdrill.principal"  # the caller the access gate found (None: open, no key)
ROLE_ATTRIBUTE = "recdrill_role"  # on a require_role dependency: the role it needs
_CHALLENGE = {"WWW-Authenticate": f'APIKey header="{API_KEY_HEADER}"'}

api_key_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="recdrill API key")


@dataclass(frozen=True)
class Principal:
    """The caller a key stands for; ``name`` is what the audit log records. ``rate_per_s`` and
    ``burst`` are the key's own rate limit, None for the server's default."""

    name: str
    role: Role
    rate_per_s: float | None = None
    burst: int | None = None


class AccessControl:
    """One worker's key checks: the key store, the bootstrap admin key, rate limits, audit log.

    Parameters:
        key_store: the SQLite key store to enforce, or None (reader/writer endpoints then open).
        admin_key_sha256: SHA-256 (hex) of the bootstrap admin key, or None.
        audit_path: the audit log's SQLite file.
        rate_per_s, burst: each key's default token bucket (a key may carry its own).
    """

    def __init__(
        self,
        key_store: Path | None,
        admin_key_sha256: str | None,
        audit_path: Path,
        rate_per_s: float,
        burst: int,
    ) -> None:
        self.key_store_path = key_store
        self.admin_key_sha256 = admin_key_sha256
        self.audit_path = audit_path
        self.limiter = RateLimiter(rate_per_s, burst)
        self.keys: KeyStore | None = None
        self.audit: AuditLog | None = None

    @property
    def keys_required(self) -> bool:
        """Whether reader and writer endpoints need a key too (a key store is configured)."""
        return self.key_store_path is not None

    def open(self) -> None:
        self.audit = AuditLog(self.audit_path)
        if self.key_store_path is not None:
            self.keys = KeyStore.open(self.key_store_path)

    def close(self) -> None:
        for resource in (self.keys, self.audit):
            if resource is not None:
                resource.close()
        self.keys = self.audit = None

    def authorise(
        self, key: str | None, needed: Role, pending: PendingAudit | None = None
    ) -> Principal | None:
        """The caller of an endpoint that needs ``needed``, or None for an open endpoint without key.

        Raises:
            HTTPException: 401, 403 or 429 as described in the module docstring.
        """
        if not key:
            if not needed.audited and not self.keys_required:
                return None
            raise HTTPException(401, detail=f"missing {API_KEY_HEADER} header", headers=_CHALLENGE)
        principal = self._identify(key, pending)
        if not principal.role.grants(needed):
            raise HTTPException(
                403, detail=f"key {principal.name!r} has role {principal.role}; this needs {needed}"
            )
        wait_s = self.limiter.wait_s(principal.name, principal.rate_per_s, principal.burst)
        if wait_s > 0:
            raise HTTPException(
                429,
                detail=f"rate limit of key {principal.name!r} exceeded: retry in {wait_s:.2f} s",
                headers={"Retry-After": str(math.ceil(wait_s))},
            )
        return principal

    def _identify(self, key: str, pending: PendingAudit | None) -> Principal:
        if self.admin_key_sha256 is not None and hmac.compare_digest(hash_key(key), self.admin_key_sha256):
            principal = Principal(BOOTSTRAP_NAME, Role.ADMIN)
        else:
            record = self.keys.authenticate(key) if self.keys is not None else None
            if record is None or record.revoked:
                if pending is not None:
                    pending.who = "<unknown key>" if record is None else f"{record.name} (revoked)"
                raise HTTPException(401, detail="invalid API key (unknown or revoked)", headers=_CHALLENGE)
            principal = Principal(record.name, record.role, record.rate_per_s, record.burst)
        if pending is not None:
            pending.who, pending.key_role = principal.name, principal.role.value
        return principal


def require_role(role: Role | str) -> Callable[..., Awaitable[Principal | None]]:
    """A FastAPI dependency admitting keys whose role grants ``role`` (see ``roles.py``).

    The serving app checks the key before it reads the body (its access gate finds this dependency
    by :data:`ROLE_ATTRIBUTE` and leaves the caller in the scope); the dependency then only hands
    the caller on. Without the gate (an app of other middleware) it checks the key itself. Declared
    on the route either way, it is also what the OpenAPI document shows as the route's security.

    Example (not run here: it needs an app whose ``state.access`` is an open AccessControl)::

        @app.post("/v1/feedback", dependencies=[Depends(require_role("writer"))])
    """
    needed = Role.parse(role)

    # async: FastAPI would run a plain-def dependency in a thread pool, a hop per request.
    async def check_key(
        request: Request, key: Annotated[str | None, Security(api_key_header)]
    ) -> Principal | None:
        if PRINCIPAL_SCOPE_KEY in request.scope:
            principal: Principal | None = request.scope[PRINCIPAL_SCOPE_KEY]
            return principal
        access: AccessControl | None = getattr(request.app.state, ACCESS_STATE, None)
        if access is None:
            raise HTTPException(503, detail="server not started")
        pending = None
        if needed.audited and access.audit is not None:
            body = await request.body()  # already read by FastAPI for a body endpoint: no second read
            pending = PendingAudit(
                access.audit,
                needed.value,
                request.method,
                scrub_text(request.url.path),
                summary=summary_of(body),
            )
            request.scope[AUDIT_SCOPE_KEY] = pending
        return access.authorise(key, needed, pending)

    setattr(check_key, ROLE_ATTRIBUTE, needed)
    return check_key


def summary_of(body: bytes) -> str:
    """What the audit log keeps of a body: its top-level fields (``summarise_body``), or its size
    when large, with e-mail addresses and phone numbers scrubbed."""
    summary = summarise_body(body) if len(body) <= MAX_SUMMARISED_BODY else f"body: {len(body)} bytes"
    return scrub_text(summary)
