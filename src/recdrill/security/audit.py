"""The audit log: who did what to the server, when, and with what outcome, append-only.

A row per call to an operator or admin endpoint, allowed or refused (missing key, unknown key,
wrong role, rate-limited, invalid body, failed). ``who`` is the key's name (never the key or its
hash); ``what`` is method, path and a summary of the request's top-level JSON fields; ``outcome``
is the HTTP status the client got.

The role check (``access.py``) records who and what in the ASGI scope under :data:`AUDIT_SCOPE_KEY`;
:class:`AuditMiddleware` writes the row once the status is known and before the response goes out,
so refusals raised before the endpoint runs and error answers returned by it are both recorded,
and a client that has seen an outcome can find it in the log. Requests to other endpoints pay
only a dictionary lookup.

The table lives in SQLite (``audit.db`` in the server's state folder, WAL, shared by the workers);
triggers refuse UPDATE and DELETE, so a row once written stays as written.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from recdrill._sqlite import switch_to_wal

log = logging.getLogger(__name__)

AUDIT_SCOPE_KEY = "recdrill.audit"
SUMMARY_FIELDS = 8
SUMMARY_VALUE_CHARS = 80

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    who TEXT NOT NULL,
    key_role TEXT,
    needed_role TEXT NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    summary TEXT NOT NULL,
    status INTEGER NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""
_COLUMNS = "at, who, key_role, needed_role, method, path, summary, status"


@dataclass(frozen=True)
class AuditRecord:
    """One row: ``at`` in epoch seconds; ``key_role`` is None when no valid key was given."""

    at: float
    who: str
    key_role: str | None
    needed_role: str
    method: str
    path: str
    summary: str
    status: int


@dataclass
class PendingAudit:
    """What the role check learnt about a request, completed with the status by the middleware."""

    log: AuditLog
    needed_role: str
    method: str
    path: str
    who: str = "<no key>"
    key_role: str | None = None
    summary: str = ""


class AuditLog:
    """The ``audit_log`` table of one SQLite file; appends are safe across processes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._connection = sqlite3.connect(self.path, check_same_thread=False, timeout=5.0)
        switch_to_wal(self._connection)
        self._connection.executescript(_SCHEMA)

    def append(self, pending: PendingAudit, status: int) -> None:
        row = (time.time(), pending.who, pending.key_role, pending.needed_role, pending.method)
        with self._lock, self._connection:
            self._connection.execute(
                f"INSERT INTO audit_log ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (*row, pending.path, pending.summary, status),
            )

    def records(self, since: float = 0.0) -> list[AuditRecord]:
        """Rows written at or after ``since`` (epoch seconds), oldest first."""
        with self._lock:
            rows = self._connection.execute(
                f"SELECT {_COLUMNS} FROM audit_log WHERE at >= ? ORDER BY id", (since,)
            ).fetchall()
        return [AuditRecord(*row) for row in rows]

    def close(self) -> None:
        with self._lock:
            self._connection.close()


def summarise_body(body: bytes) -> str:
    """``k=v`` for the top-level scalar fields of a JSON object body, sorted and shortened.

    >>> summarise_body(b'{"kind": "latency", "ttl_s": 60, "nested": {"a": 1}}')
    'kind=latency ttl_s=60'
    >>> summarise_body(b"not json"), summarise_body(b"")
    ('body: 8 bytes, not a JSON object', '')
    """
    if not body:
        return ""
    try:
        fields = json.loads(body)
    except ValueError:
        fields = None
    if not isinstance(fields, dict):
        return f"body: {len(body)} bytes, not a JSON object"
    scalars = sorted(
        (k, v) for k, v in fields.items() if isinstance(v, str | int | float | bool) or v is None
    )
    return " ".join(f"{k[:40]}={str(v)[:SUMMARY_VALUE_CHARS]}" for k, v in scalars[:SUMMARY_FIELDS])


class AuditMiddleware:
    """Writes the audit row of each request the role check marked, with the status it ended with.

    A plain ASGI middleware (no BaseHTTPMiddleware): it must see refusals and unhandled errors too,
    and cost nothing measurable on unmarked requests. An error escaping the app counts as 500.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        written = False

        async def capture(message: Message) -> None:
            nonlocal written
            if message["type"] == "http.response.start" and not written:
                written = True  # before the client sees the outcome, so no one can outrun the log
                # In a thread: a commit can wait on another worker's write lock (up to the busy
                # timeout) and on fsync, and the event loop serves every other request meanwhile.
                if AUDIT_SCOPE_KEY in scope:  # a marked request: others never leave the loop
                    await asyncio.to_thread(_write, scope, int(message["status"]))
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            if not written and AUDIT_SCOPE_KEY in scope:
                await asyncio.to_thread(_write, scope, 500)


def _write(scope: Scope, status: int) -> None:
    pending: PendingAudit | None = scope.get(AUDIT_SCOPE_KEY)
    if pending is None:
        return
    try:
        pending.log.append(pending, status)
    except sqlite3.Error:
        log.exception("audit row not written: %s %s by %s", pending.method, pending.path, pending.who)
