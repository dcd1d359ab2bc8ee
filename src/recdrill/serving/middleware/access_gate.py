"""The access gate: which route a request is for, and whether its caller may use it, decided from
the request line and headers alone, before a byte of its body is read.

FastAPI resolves a route's dependencies (the key check of ``recdrill.security.access``) only after
it has read and parsed the body, so a route's key check came too late: a 100 MB body was buffered
before its 401, and a body that did not parse was answered 422 with no key check and no audit row.
This ASGI middleware runs first instead:

* an HTTP/1.1 request without a ``Host`` header is a 400 (RFC 9112, section 3.2);
* the route is found by the routes' own matching (the same Starlette does next); a path that
  exists with other methods is a 405 whose ``Allow`` names every method of every route on the path
  (Starlette names only the first route's);
* a route whose dependencies include ``require_role(...)`` has its key checked here, and an audited
  (operator or admin) route gets its audit record here, so every request to those routes leaves a
  row, malformed or not; the caller found is kept in the scope, where ``require_role`` picks it up
  (the rate limit is charged once).

The body is read afterwards (``body_reader.py``), and only for a caller allowed to send it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from fastapi import HTTPException
from fastapi.routing import APIRoute, APIRouter
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from recdrill.contract import API_KEY_HEADER
from recdrill.data.pseudonymise import scrub_text
from recdrill.security.access import PRINCIPAL_SCOPE_KEY, ROLE_ATTRIBUTE, AccessControl
from recdrill.security.audit import AUDIT_SCOPE_KEY, PendingAudit
from recdrill.security.roles import Role

_KEY_HEADER = API_KEY_HEADER.lower().encode("latin-1")  # as ASGI gives header names


def flat_routes(app_routes: Iterable[BaseRoute], routers: Iterable[APIRouter]) -> list[BaseRoute]:
    """The app's own routes (the OpenAPI document and its pages) and every route of ``routers``, as
    a flat list to match against. FastAPI keeps an included router as one lazy entry of the app's
    routes; the routers' own routes carry their router-level dependencies already."""
    own = [route for route in app_routes if isinstance(route, Route)]
    return [*own, *(route for router in routers for route in router.routes)]


def role_of(route: BaseRoute) -> Role | None:
    """The role a route's ``require_role`` dependency asks for (router-level ones included), or None
    for an open route (probes, metrics, the OpenAPI document)."""
    if not isinstance(route, APIRoute):
        return None
    pending = list(route.dependant.dependencies)
    while pending:
        dependant = pending.pop()
        role = getattr(dependant.call, ROLE_ATTRIBUTE, None)
        if isinstance(role, Role):
            return role
        pending.extend(dependant.dependencies)
    return None


async def send_json_error(
    send: Send, status: int, error: str, headers: Mapping[str, str] | None = None
) -> None:
    """An ``{"error": ...}`` answer, the shape of every refusal of the API (``error_handlers.py``)."""
    body = json.dumps({"error": scrub_text(error)}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [
        (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in (headers or {}).items()
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class AccessGate:
    """Host check, complete 405s, and the key check and audit record of guarded routes, before the
    body. ``routes`` are every route of the app (see :func:`flat_routes`); ``access`` its key checks.
    """

    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute], access: AccessControl) -> None:
        self.app = app
        self.routes = tuple(routes)
        self.access = access
        self._roles: dict[int, Role | None] = {}  # by id(route): the routes live as long as the app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope.get("http_version") == "1.1" and not any(name == b"host" for name, _ in scope["headers"]):
            await send_json_error(send, 400, "an HTTP/1.1 request needs a Host header (RFC 9112)")
            return
        route, allowed = self._resolve(scope)
        if route is None:
            if allowed:
                await self._not_allowed(scope, send, allowed)
            else:
                await self.app(scope, receive, send)  # the router's 404
            return
        role = self._role(route)
        if role is not None:
            pending = self._audit(scope, role) if role.audited else None
            try:
                scope[PRINCIPAL_SCOPE_KEY] = self.access.authorise(_key_of(scope), role, pending)
            except HTTPException as refusal:
                await send_json_error(send, refusal.status_code, str(refusal.detail), refusal.headers)
                return
        await self.app(scope, receive, send)

    def _resolve(self, scope: Scope) -> tuple[BaseRoute | None, list[str]]:
        """The route that serves this method and path, else None and the methods the path has."""
        allowed: list[str] = []
        for route in self.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return route, []
            if match is Match.PARTIAL:
                allowed.extend(sorted(getattr(route, "methods", None) or ()))
        return None, list(dict.fromkeys(allowed))

    def _role(self, route: BaseRoute) -> Role | None:
        key = id(route)
        if key not in self._roles:
            self._roles[key] = role_of(route)
        return self._roles[key]

    async def _not_allowed(self, scope: Scope, send: Send, allowed: list[str]) -> None:
        roles = [r for r in self._path_roles(scope) if r.audited]
        if roles:  # a guarded path: the refusal is audited like any other call to it
            self._audit(scope, Role.ADMIN if Role.ADMIN in roles else roles[0])
        method = scope["method"]
        headers = {"Allow": ", ".join(allowed)}
        await send_json_error(
            send, 405, f"method {method} not allowed here; allowed: {headers['Allow']}", headers
        )

    def _path_roles(self, scope: Scope) -> Iterator[Role]:
        for route in self.routes:
            if route.matches(scope)[0] is Match.PARTIAL and (role := self._role(route)) is not None:
                yield role

    def _audit(self, scope: Scope, role: Role) -> PendingAudit | None:
        """The audit record of this request, completed by ``body_reader`` (summary) and written by
        ``AuditMiddleware`` (status) once the answer starts."""
        if self.access.audit is None:
            return None
        pending = PendingAudit(self.access.audit, role.value, scope["method"], scrub_text(scope["path"]))
        scope[AUDIT_SCOPE_KEY] = pending
        return pending


def _key_of(scope: Scope) -> str | None:
    value: Any = next((v for name, v in scope["headers"] if name == _KEY_HEADER), None)
    return None if value is None else value.decode("latin-1")
