"""Feedback store faults: the durable log behind ``/v1/feedback`` gets slow, fails, fills up or locks.

Three act inside the server through its fault table (``serving/fault_points.py``, point ``feedback``),
with a TTL there, so a drill that dies leaves nothing behind for long:

- ``feedback-store-slow``: each group commit waits ``latency_ms`` first: acknowledgements are late,
  nothing is lost;
- ``feedback-store-failing``: a share ``rate`` of commits fail: those posts get 503 "feedback not
  recorded" and are never acknowledged;
- ``feedback-store-full``: the writers' connections are capped at the file's current page count, so
  SQLite fails inserts with SQLITE_FULL (a database-size limit standing in for a full disk).

``feedback-store-locked`` is a real lock from outside: the drill opens the server's feedback
database (``STATE_DIR/feedback.db``) and holds ``BEGIN EXCLUSIVE`` in a thread until revert or its
``ttl_s``, so the server's writers wait out their busy timeout and answer 503 (SQLITE_BUSY).
Readers are not blocked (WAL), so ``/admin/feedback/lookup`` still answers.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field

from recdrill.contract import FEEDBACK_DB
from recdrill.drills.faults.catalogue import FaultParams, FaultType, Observations, register
from recdrill.drills.faults.server_table import (
    ServerFault,
    add_server_fault,
    remove_server_fault,
    server_faults_at,
)
from recdrill.drills.target import DrillTarget
from recdrill.errors import FaultUnavailableError

POINT = "feedback"
LOCK_WAIT_S = 15.0  # taking the lock waits out a commit in progress (the server's busy timeout is 10 s)


class StoreFaultParams(FaultParams):
    ttl_s: float = Field(600.0, gt=0, le=3600, description="the fault ends by itself after this")


class SlowStoreParams(StoreFaultParams):
    latency_ms: float = Field(250.0, gt=0, le=60_000, description="added before each group commit")


class FailingStoreParams(StoreFaultParams):
    rate: float = Field(1.0, ge=0, le=1, description="share of commits (batches of posts) that fail")


def _server_fault(kind: str) -> Callable[[DrillTarget, Any], ServerFault]:
    def inject(target: DrillTarget, params: StoreFaultParams) -> ServerFault:
        body: dict[str, object] = {"point": POINT, "kind": kind, "ttl_s": params.ttl_s}
        if isinstance(params, SlowStoreParams):
            body["latency_ms"] = params.latency_ms
        if isinstance(params, FailingStoreParams):
            body["rate"] = params.rate
        return add_server_fault(target, body)

    return inject


@dataclass(eq=False)  # identity: each lock is its own entry in _HELD
class HeldLock:
    """``BEGIN EXCLUSIVE`` on the feedback database, held by a thread until ``release`` or the TTL."""

    path: Path
    ttl_s: float
    taken_at: float = field(default_factory=time.monotonic)
    released_at: float | None = None
    ended_by: str | None = None  # "revert" or "ttl"
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def hold(self, connection: sqlite3.Connection) -> None:
        """Keep the transaction open in a daemon thread; roll it back at release or TTL."""

        def keep() -> None:
            released = self._stop.wait(self.ttl_s)
            with contextlib.suppress(sqlite3.Error):
                connection.execute("ROLLBACK")  # nothing was written: the lock is all it held
            connection.close()
            self.ended_by = "revert" if released else "ttl"
            self.released_at = time.monotonic()
            _HELD.discard(self)

        self._thread = threading.Thread(target=keep, name="recdrill-feedback-lock", daemon=True)
        self._thread.start()

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30.0)


_HELD: set[HeldLock] = set()  # locks of this process still held: the leftovers check lists them


def inject_lock(target: DrillTarget, params: StoreFaultParams) -> HeldLock:
    path = target.need_state_dir("feedback-store-locked") / FEEDBACK_DB
    if not path.is_file():
        raise FaultUnavailableError(f"fault 'feedback-store-locked': no feedback database at {path}")
    # isolation_level=None: the BEGIN below is ours, not the module's implicit transaction handling.
    connection = sqlite3.connect(path, timeout=LOCK_WAIT_S, isolation_level=None, check_same_thread=False)
    try:
        connection.execute("BEGIN EXCLUSIVE")  # returns once the lock is held: the fault acts from here
    except sqlite3.Error as exc:
        connection.close()
        raise FaultUnavailableError(f"fault 'feedback-store-locked': cannot lock {path}: {exc}") from exc
    lock = HeldLock(path, params.ttl_s)
    _HELD.add(lock)
    lock.hold(connection)
    return lock


def revert_lock(target: DrillTarget, params: StoreFaultParams, lock: HeldLock) -> Observations:
    """Release the lock (again: a no-op) and say how long it was held and what ended it."""
    lock.release()
    held_s = (lock.released_at or time.monotonic()) - lock.taken_at
    return {"path": str(lock.path), "held_s": round(held_s, 3), "ended_by": lock.ended_by}


def held_locks(target: DrillTarget) -> list[str]:
    """Feedback database locks this process still holds."""
    return [
        f"feedback database locked by this drill for {time.monotonic() - lock.taken_at:.0f} s ({lock.path})"
        for lock in list(_HELD)
    ]


def _server_leftovers(kind: str) -> Callable[[DrillTarget], list[str]]:
    def leftovers(target: DrillTarget) -> list[str]:
        """The server's active ``feedback/KIND`` faults (or why they cannot be listed)."""
        return server_faults_at(target, POINT, kind)

    return leftovers


_STORE_FAULTS: list[tuple[str, str, type[StoreFaultParams], str, str]] = [
    (
        "feedback-store-slow",
        "latency",
        SlowStoreParams,
        "the feedback store commits slowly: each group commit waits latency_ms",
        "/v1/feedback acknowledgements take at least latency_ms; nothing is lost",
    ),
    (
        "feedback-store-failing",
        "error",
        FailingStoreParams,
        "the feedback store fails a share of commits",
        "hit posts answer 503 'feedback not recorded' and are never acknowledged; none acked is lost",
    ),
    (
        "feedback-store-full",
        "full",
        StoreFaultParams,
        "the feedback database cannot grow (SQLITE_FULL, as on a full disk)",
        "once the last free pages are used, posts answer 503; every acknowledged event stays stored",
    ),
]
for _name, _kind, _params, _summary, _effect in _STORE_FAULTS:
    register(
        FaultType(
            name=_name,
            kind="infrastructure",
            summary=_summary,
            params=_params,
            inject=_server_fault(_kind),
            revert=remove_server_fault,
            effect=_effect,
            detected_by=frozenset({"server-errors"}),
            leftovers=_server_leftovers(_kind),
        )
    )
register(
    FaultType(
        name="feedback-store-locked",
        kind="infrastructure",
        summary="another process holds the feedback database's write lock (BEGIN EXCLUSIVE)",
        params=StoreFaultParams,
        inject=inject_lock,
        revert=revert_lock,
        needs=frozenset({"state_dir"}),
        effect="posts wait out the server's busy timeout (10 s), then answer 503; none acked is lost",
        detected_by=frozenset({"server-errors"}),
        leftovers=held_locks,
    )
)
