"""The feedback log's SQLite schema, opened for writing with its migrations.

One table, ``feedback`` (row id, user pseudonym, item, event, event time, arrival time, the client's
``event_id``, and the sealed raw user id with its key id), beside ``quarantine``
(:mod:`recdrill.serving.feedback.quarantine`). Files written by older servers gain the later columns
and tables here, inside one write transaction, so worker processes starting together do not race.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from recdrill._sqlite import switch_to_wal, transaction
from recdrill.serving.feedback.crypto import SEALED_COLUMNS
from recdrill.serving.feedback.quarantine import QUARANTINE_SCHEMA

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

# (row id, user pseudonym, item id, event, ts, received_at) as stored: the event time the client
# claimed, and the server's clock when the event arrived.
StoredRow = tuple[int, str, str, str, float, float]


@dataclass(frozen=True)
class FeedbackEvent:
    """One user action. ``ts`` is when it happened (epoch seconds); ``event_id`` is the client's
    deduplication key, if it sent one."""

    user_id: str
    item_id: str
    event: str
    ts: float
    event_id: str | None = None


def insert_event(
    connection: sqlite3.Connection,
    event: FeedbackEvent,
    received_at: float,
    row_id: int,
    sealed: tuple[bytes, str] | None,
) -> int:
    """Insert ``event`` as row ``row_id``, or find the row that already holds its ``event_id``."""
    blob, key_id = sealed if sealed is not None else (None, None)
    values = (row_id, event.user_id, event.item_id, event.event, event.ts, received_at, event.event_id)
    cursor = connection.execute(INSERT, (*values, blob, key_id))
    if cursor.rowcount == 1:
        return row_id
    # Ignored: this event_id is already stored (by an earlier post, or earlier in this batch). OR
    # IGNORE also skips a row that breaks NOT NULL (a NaN binds as NULL): then nothing holds it.
    found = connection.execute("SELECT id FROM feedback WHERE event_id = ?", (event.event_id,)).fetchone()
    if found is None:
        raise sqlite3.IntegrityError(f"event not stored (a value SQLite cannot hold): {event.event!r}")
    return int(found[0])


def open_for_writing(path: Path, busy_timeout_s: float) -> sqlite3.Connection:
    """Open (creating if needed) the log in WAL mode with fsync on every commit.

    ``isolation_level=None`` leaves transactions to the writer's explicit BEGIN/COMMIT. The schema is
    created (or an older file given its later columns) inside one write transaction.

    Raises:
        sqlite3.Error: the file cannot be opened or migrated (the log wraps it).
    """
    connection = sqlite3.connect(path, check_same_thread=False, timeout=busy_timeout_s, isolation_level=None)
    try:
        switch_to_wal(connection)
        connection.execute("PRAGMA synchronous=FULL")
        with transaction(connection):
            connection.execute(SCHEMA)
            columns = {row[1] for row in connection.execute("PRAGMA table_info(feedback)")}
            for name, kind in (("event_id", "TEXT"), *SEALED_COLUMNS):
                if name not in columns:  # a file from before this column
                    connection.execute(f"ALTER TABLE feedback ADD COLUMN {name} {kind}")
            connection.execute(EVENT_ID_INDEX)
            connection.execute(QUARANTINE_SCHEMA)  # added later: an older file gains it here
    except BaseException:
        connection.close()
        raise
    return connection
