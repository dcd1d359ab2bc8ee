"""Durable feedback log: an event is acknowledged only after the transaction holding it is on disk.

Group commit: callers put events on a queue; one writer thread takes everything queued, inserts it in
one transaction, commits once (one fsync with ``synchronous=FULL``) and only then resolves each
caller's future with its row id. While one fsync runs, the next batch gathers, so under load many
events share an fsync instead of queueing behind one fsync each; a lone event is committed at once
(no linger). WAL mode lets readers (``recdrill feedback export``, monitors) run beside the writers of
several worker processes, which serialise on SQLite's write lock.

Two ways in, same durability:

* ``append(event)`` blocks the calling thread until the commit (scripts, tests, ``asyncio.to_thread``);
* ``await submit(event)`` suspends only the coroutine: the writer resolves the future through the event
  loop, so a thousand waiting requests hold no thread-pool threads.

An event may carry a client ``event_id``; a second event with the same id is not stored again and gets
the first one's row id, which makes a retried post safe (HTTP clients cannot otherwise tell "committed,
answer lost" from "never arrived").

Personal data never reaches the file: the ``user_id`` column holds the keyed pseudonym
(``pseudonymise_id``, ``u_`` and 16 hex digits) of the id the client sent, and ``item_id`` and
``event_id`` are scrubbed of anything that looks like an e-mail address or a phone number. The
pseudonym is stable under one key, so one user's events still group together, and the export
(``feedback_export``) feeds retraining as it is; see there for joining with other data. The raw id
is kept only encrypted (AES-256-GCM under the data key, bound to its row: ``feedback_crypto``), for
data-subject requests; the writer assigns each row's id itself, under the write lock, so the id is
known before the row is sealed and inserted in one statement.

Events an anomaly monitor flags (bot bursts, poisoned clicks) are quarantined in the same file
(``feedback_quarantine``): :meth:`FeedbackLog.quarantine` by row id, :meth:`FeedbackLog.quarantine_where`
by user, item and time span; the export leaves them out. :meth:`FeedbackLog.read_after` hands a monitor
the rows committed since the last one it saw: row ids are assigned under the write lock and committed
in order, so ``id > last seen`` misses nothing, across all the worker processes writing the file.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
import time
from collections.abc import Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from recdrill._sqlite import switch_to_wal
from recdrill.data.pseudonymise import Pseudonymiser, default_pseudonymiser
from recdrill.errors import ConfigError, RecdrillError
from recdrill.serving.faults import FeedbackFaults, InjectedFaultError
from recdrill.serving.feedback_crypto import SEALED_COLUMNS, UserIdSealer, load_user_id_sealer, seal
from recdrill.serving.feedback_quarantine import QUARANTINE_SCHEMA, quarantine_matching, quarantine_rows

FEEDBACK_DB = "feedback.db"  # the log's file name in a server's state folder
MAX_BATCH = 512
READ_LIMIT = 10_000  # rows per read_after: a monitor catching up reads in bounded pieces
LOOKUP_CHUNK = 500  # event ids per query of present(): well under SQLite's bound-variable limit
BUSY_TIMEOUT_S = 10.0  # other worker processes hold the write lock for one commit at a time
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS feedback (id INTEGER PRIMARY KEY AUTOINCREMENT, "
    "user_id TEXT NOT NULL, item_id TEXT NOT NULL, event TEXT NOT NULL, ts REAL NOT NULL, "
    "received_at REAL NOT NULL, event_id TEXT, user_id_sealed BLOB, user_id_key TEXT)"
)
# NULLs are distinct in a SQLite unique index: events without a client id never collide.
EVENT_ID_INDEX = "CREATE UNIQUE INDEX IF NOT EXISTS feedback_event_id ON feedback (event_id)"
INSERT = (
    "INSERT OR IGNORE INTO feedback "
    "(id, user_id, item_id, event, ts, received_at, event_id, user_id_sealed, user_id_key) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# AUTOINCREMENT's next id: never reuse one, even of a deleted last row (its sealed id named it).
NEXT_ID = (
    "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'feedback'), 0), "
    "COALESCE((SELECT MAX(id) FROM feedback), 0)) + 1"
)


# (row id, user pseudonym, item id, event, ts) as stored.
StoredRow = tuple[int, str, str, str, float]


class FeedbackLogError(RecdrillError):
    """The feedback log cannot take the event: it is closed, or the commit failed."""


@dataclass(frozen=True)
class FeedbackEvent:
    """One user action. ``ts`` is when it happened (epoch seconds); ``event_id`` is the client's
    deduplication key, if it sent one."""

    user_id: str
    item_id: str
    event: str
    ts: float
    event_id: str | None = None


@dataclass(frozen=True)
class _Pending:
    event: FeedbackEvent
    future: Future[int]
    raw_user_id: str = field(repr=False, default="")


class FeedbackLog:
    """Appends events to a SQLite file; every returned id belongs to a committed, fsynced row.

    Each event is pseudonymised before it is queued (see the module docstring); ``pseudonymiser``
    defaults to the process's (``RECDRILL_PSEUDONYM_KEY`` or the key file under ``RECDRILL_HOME``),
    which every worker of a server shares, so they write the same pseudonym for one user.
    ``sealer`` encrypts the raw id beside it; by default it is loaded from the environment
    (:func:`~recdrill.serving.feedback_crypto.load_user_id_sealer`: none without a data key or
    under the pseudonyms-only opt-out); None stores no recoverable id. ``faults`` (the server's
    ``feedback`` fault point) may slow, fail or fill the store before each group commit, for drills.

    Example:
        >>> import tempfile, pathlib
        >>> from recdrill.data.pseudonymise import Pseudonymiser
        >>> log = FeedbackLog(pathlib.Path(tempfile.mkdtemp()) / "feedback.db",
        ...                   pseudonymiser=Pseudonymiser(b"k" * 32), sealer=None)
        >>> log.append(FeedbackEvent("u1", "sku-9", "click", 1.0, event_id="e-1"))
        1
        >>> log.append(FeedbackEvent("u1", "sku-9", "click", 1.0, event_id="e-1"))  # a retry
        1
        >>> log.count(), log.commits
        (1, 2)
        >>> log.close()
    """

    def __init__(
        self,
        path: str | Path,
        *,
        max_batch: int = MAX_BATCH,
        busy_timeout_s: float = BUSY_TIMEOUT_S,
        pseudonymiser: Pseudonymiser | None = None,
        sealer: UserIdSealer | Literal["from-env"] | None = "from-env",
        faults: FeedbackFaults | None = None,
    ) -> None:
        self.path = Path(path)
        # Loaded now, so a missing or unsafe key stops the server at start-up, not at the first post.
        self._pseudonymiser = pseudonymiser or default_pseudonymiser()
        self._sealer = load_user_id_sealer() if sealer == "from-env" else sealer
        self.max_batch = max_batch
        self.busy_timeout_s = busy_timeout_s
        self.faults = faults
        self.commits = 0  # transactions committed: fewer than events when group commit works
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._closing = threading.Lock()
        self._closed = False
        self._connection = _open_for_writing(self.path, busy_timeout_s)
        self._writer = threading.Thread(target=self._write_loop, name="feedback-writer", daemon=True)
        self._writer.start()

    def append(self, event: FeedbackEvent) -> int:
        """Commit ``event`` and return its row id; blocks the calling thread until the commit.

        Raises:
            FeedbackLogError: the log is closed, or the commit failed (nothing was acknowledged).
        """
        return self._enqueue(event).result()

    async def submit(self, event: FeedbackEvent) -> int:
        """Like :meth:`append`, awaited: no thread waits on the commit, only this coroutine.

        If the awaiting task is cancelled before the writer took the event, the event is not
        written (it was never acknowledged either way).
        """
        return await asyncio.wrap_future(self._enqueue(event))

    def count(self) -> int:
        """Committed events, read through a connection of its own (WAL: it does not block writers)."""
        with contextlib.closing(sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S)) as reader:
            return int(reader.execute("SELECT COUNT(*) FROM feedback").fetchone()[0])

    def last_id(self) -> int:
        """The highest committed row id (0 for an empty log): where a monitor starting now begins."""
        return int(self._read("SELECT COALESCE(MAX(id), 0) FROM feedback", ())[0][0])

    def present(self, event_ids: Iterable[str]) -> set[str]:
        """Which of these client event ids are committed (ids as the client sent them: they are
        scrubbed here as on writing, so a stored id matches its raw form).

        Raises:
            FeedbackLogError: the log cannot be read.
        """
        stored = {raw: self._pseudonymiser.scrub_text(raw) for raw in event_ids}
        wanted = sorted(set(stored.values()))
        found: set[str] = set()
        for start in range(0, len(wanted), LOOKUP_CHUNK):
            chunk = wanted[start : start + LOOKUP_CHUNK]
            marks = ", ".join("?" * len(chunk))
            query = f"SELECT event_id FROM feedback WHERE event_id IN ({marks})"
            found.update(str(row[0]) for row in self._read(query, tuple(chunk)))
        return {raw for raw, as_stored in stored.items() if as_stored in found}

    def read_after(self, after_id: int, limit: int = READ_LIMIT) -> list[StoredRow]:
        """Up to ``limit`` committed rows with ``id > after_id``, oldest first (user ids as stored)."""
        query = "SELECT id, user_id, item_id, event, ts FROM feedback WHERE id > ? ORDER BY id LIMIT ?"
        return [(int(r[0]), r[1], r[2], r[3], float(r[4])) for r in self._read(query, (after_id, limit))]

    def quarantine(self, row_ids: Iterable[int], reason: str) -> int:
        """Keep these events out of the export (see ``feedback_quarantine``); returns how many
        were newly quarantined (ids already quarantined or never committed are skipped).

        Raises:
            ConfigError: ``reason`` is empty.
            FeedbackLogError: the write failed.
        """
        try:
            return quarantine_rows(self.path, row_ids, reason, self.busy_timeout_s)
        except sqlite3.Error as exc:
            raise FeedbackLogError(f"{self.path}: could not quarantine events: {exc}") from exc

    def quarantine_where(
        self,
        *,
        reason: str,
        user_id: str | None = None,
        user_pseudonym: str | None = None,
        item_id: str | None = None,
        event: str | None = None,
        since: float | None = None,
        until: float | None = None,
        from_id: int | None = None,
    ) -> int:
        """Quarantine the committed events of a user and/or an item, optionally of one ``event``
        type, within ``since <= ts <= until`` and from row ``from_id`` on (which bounds the scan);
        returns how many were newly quarantined.

        ``user_id`` is the raw id a client sent (pseudonymised here with the log's key, as on
        writing); ``user_pseudonym`` is the id as stored (what :meth:`read_after` returns).

        Raises:
            ConfigError: no user or item, both ``user_id`` and ``user_pseudonym``, or no reason.
            FeedbackLogError: the write failed.
        """
        if user_id is not None and user_pseudonym is not None:
            raise ConfigError("give user_id (raw) or user_pseudonym (as stored), not both")
        if user_id is not None:
            user_pseudonym = self._pseudonymiser.pseudonymise_id(user_id)
        item = None if item_id is None else self._pseudonymiser.scrub_text(item_id)  # as stored
        try:
            return quarantine_matching(
                self.path,
                reason=reason,
                busy_timeout_s=self.busy_timeout_s,
                user_id=user_pseudonym,
                item_id=item,
                event=event,
                since=since,
                until=until,
                from_id=from_id,
            )
        except sqlite3.Error as exc:
            raise FeedbackLogError(f"{self.path}: could not quarantine events: {exc}") from exc

    def _read(self, query: str, parameters: tuple[int | str, ...]) -> list[Any]:
        try:
            with contextlib.closing(sqlite3.connect(self.path, timeout=self.busy_timeout_s)) as reader:
                return reader.execute(query, parameters).fetchall()
        except sqlite3.Error as exc:
            raise FeedbackLogError(f"{self.path}: could not read the feedback log: {exc}") from exc

    def close(self) -> None:
        """Commit what is queued, stop the writer and close the file; later appends raise."""
        with self._closing:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        self._writer.join()

    def _enqueue(self, event: FeedbackEvent) -> Future[int]:
        raw_user_id = event.user_id if self._sealer is not None else ""
        event = self._protect(event)
        future: Future[int] = Future()
        with self._closing:  # nothing may slip in behind the writer's stop marker
            if self._closed:
                raise FeedbackLogError(f"{self.path}: the feedback log is closed")
            self._queue.put(_Pending(event, future, raw_user_id))
        return future

    def _protect(self, event: FeedbackEvent) -> FeedbackEvent:
        """The event as stored: the user's pseudonym, free-text ids scrubbed (deterministically, so
        a retried event_id still matches its first post)."""
        p = self._pseudonymiser
        event_id = None if event.event_id is None else p.scrub_text(event.event_id)
        return FeedbackEvent(
            p.pseudonymise_id(event.user_id), p.scrub_text(event.item_id), event.event, event.ts, event_id
        )

    def _write_loop(self) -> None:
        stopping = False
        try:
            while not stopping:
                batch, stopping = self._next_batch()
                # A future cancelled while queued (its request went away) is dropped unwritten;
                # the rest can no longer be cancelled, so resolving them below cannot fail.
                live = [p for p in batch if p.future.set_running_or_notify_cancel()]
                if live:
                    self._commit(live)
        finally:
            self._fail_queued(FeedbackLogError(f"{self.path}: the feedback writer stopped"))
            self._connection.close()

    def _next_batch(self) -> tuple[list[_Pending], bool]:
        """Block for one event, then take whatever else is already queued (up to ``max_batch``)."""
        first = self._queue.get()
        if first is None:
            return [], True
        batch = [first]
        while len(batch) < self.max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                return batch, True
            batch.append(item)
        return batch, False

    def _commit(self, batch: list[_Pending]) -> None:
        connection = self._connection
        received_at = time.time()
        try:
            if self.faults is not None:  # a drill's slow, failing or full store (serving/faults.py)
                self.faults.before_commit(connection)
            connection.execute("BEGIN IMMEDIATE")
            # Read under the write lock: a rotation places its new key before re-encrypting the table.
            key = None if self._sealer is None else self._sealer.sealing_key()
            next_id = int(connection.execute(NEXT_ID).fetchone()[0])
            rows = []
            for p in batch:
                sealed = None if key is None else (seal(key, p.raw_user_id, next_id), key.id)
                row = _insert(connection, p.event, received_at, next_id, sealed)
                if row == next_id:  # inserted, not a repeated event_id
                    next_id += 1
                rows.append(row)
            connection.execute("COMMIT")
        except (sqlite3.Error, RecdrillError, InjectedFaultError) as exc:
            # SQLite rolls back by itself on some errors (SQLITE_FULL): then ROLLBACK finds nothing.
            with contextlib.suppress(sqlite3.Error):
                connection.execute("ROLLBACK")
            error = FeedbackLogError(f"{self.path}: could not commit {len(batch)} event(s): {exc}")
            for pending in batch:
                pending.future.set_exception(error)
            return
        self.commits += 1
        for pending, row in zip(batch, rows, strict=True):
            pending.future.set_result(row)

    def _fail_queued(self, error: FeedbackLogError) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None and item.future.set_running_or_notify_cancel():
                item.future.set_exception(error)


def _insert(
    connection: sqlite3.Connection,
    event: FeedbackEvent,
    received_at: float,
    row_id: int,
    sealed: tuple[bytes, str] | None,
) -> int:
    blob, key_id = sealed if sealed is not None else (None, None)
    values = (row_id, event.user_id, event.item_id, event.event, event.ts, received_at, event.event_id)
    cursor = connection.execute(INSERT, (*values, blob, key_id))
    if cursor.rowcount == 1:
        return row_id
    # Ignored: this event_id is already stored (by an earlier post, or earlier in this batch).
    found = connection.execute("SELECT id FROM feedback WHERE event_id = ?", (event.event_id,)).fetchone()
    return int(found[0])


def _open_for_writing(path: Path, busy_timeout_s: float) -> sqlite3.Connection:
    """Open (creating if needed) the log in WAL mode with fsync on every commit.

    ``isolation_level=None`` leaves transactions to the writer's explicit BEGIN/COMMIT. The schema is
    created (or an older file given its ``event_id`` column) inside one write transaction, so worker
    processes starting together do not race on it.
    """
    try:
        connection = sqlite3.connect(
            path, check_same_thread=False, timeout=busy_timeout_s, isolation_level=None
        )
        switch_to_wal(connection)
        connection.execute("PRAGMA synchronous=FULL")
        connection.execute("BEGIN IMMEDIATE")
        connection.execute(SCHEMA)
        columns = {row[1] for row in connection.execute("PRAGMA table_info(feedback)")}
        for name, kind in (("event_id", "TEXT"), *SEALED_COLUMNS):
            if name not in columns:  # a file from before this column
                connection.execute(f"ALTER TABLE feedback ADD COLUMN {name} {kind}")
        connection.execute(EVENT_ID_INDEX)
        connection.execute(QUARANTINE_SCHEMA)  # added later: an older file gains it here
        connection.execute("COMMIT")
    except sqlite3.Error as exc:
        raise FeedbackLogError(f"{path}: cannot open the feedback log: {exc}") from exc
    return connection
