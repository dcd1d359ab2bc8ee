"""The feedback log's schema: created in WAL mode, older files migrated, events inserted idempotently."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from recdrill.serving.feedback.schema import NEXT_ID, SCHEMA, FeedbackEvent, insert_event, open_for_writing

COLUMNS = [
    "id",
    "user_id",
    "item_id",
    "event",
    "ts",
    "received_at",
    "event_id",
    "user_id_sealed",
    "user_id_key",
]
# The table as the first servers wrote it: no client event id, no sealed raw id.
OLDEST_SCHEMA = (
    "CREATE TABLE feedback (id INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL, "
    "item_id TEXT NOT NULL, event TEXT NOT NULL, ts REAL NOT NULL, received_at REAL NOT NULL)"
)
WITH_EVENT_ID = OLDEST_SCHEMA.replace(
    "received_at REAL NOT NULL)", "received_at REAL NOT NULL, event_id TEXT)"
)


@pytest.fixture
def connection(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    opened = open_for_writing(tmp_path / "feedback.db", busy_timeout_s=1.0)
    yield opened
    opened.close()


def columns(db: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(db)) as reader:
        return [row[1] for row in reader.execute("PRAGMA table_info(feedback)")]


def objects(db: Path) -> set[tuple[str, str]]:
    with contextlib.closing(sqlite3.connect(db)) as reader:
        return set(reader.execute("SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"))


def old_file(db: Path, schema: str, rows: int = 3) -> None:
    with contextlib.closing(sqlite3.connect(db)) as writer:
        writer.execute(schema)
        writer.executemany(
            "INSERT INTO feedback (user_id, item_id, event, ts, received_at) VALUES (?, ?, ?, ?, ?)",
            [(f"u_{i:016x}", f"SKU-{i}", "click", float(i), float(i) + 0.5) for i in range(rows)],
        )
        writer.commit()


def test_a_new_log_has_the_full_schema_in_wal_mode_with_full_sync(
    connection: sqlite3.Connection, tmp_path: Path
) -> None:
    db = tmp_path / "feedback.db"
    assert columns(db) == COLUMNS
    assert objects(db) == {("table", "feedback"), ("index", "feedback_event_id"), ("table", "quarantine")}
    assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert connection.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL: fsync on every commit
    assert connection.isolation_level is None and not connection.in_transaction


@pytest.mark.parametrize("schema", [OLDEST_SCHEMA, WITH_EVENT_ID], ids=["oldest", "with event_id"])
def test_an_older_file_gains_the_later_columns_index_and_quarantine(tmp_path: Path, schema: str) -> None:
    db = tmp_path / "feedback.db"
    old_file(db, schema)
    assert "user_id_sealed" not in columns(db) and ("table", "quarantine") not in objects(db)
    open_for_writing(db, busy_timeout_s=1.0).close()
    assert columns(db) == COLUMNS
    assert objects(db) == {("table", "feedback"), ("index", "feedback_event_id"), ("table", "quarantine")}
    with contextlib.closing(sqlite3.connect(db)) as reader:  # old rows kept, the new columns empty
        rows = reader.execute(
            "SELECT id, item_id, event_id, user_id_sealed, user_id_key FROM feedback"
        ).fetchall()
    assert rows == [
        (1, "SKU-0", None, None, None),
        (2, "SKU-1", None, None, None),
        (3, "SKU-2", None, None, None),
    ]


def test_opening_twice_changes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "feedback.db"
    for _ in range(2):
        open_for_writing(db, busy_timeout_s=1.0).close()
    assert columns(db) == COLUMNS
    assert SCHEMA.startswith("CREATE TABLE IF NOT EXISTS feedback")


def test_insert_event_stores_the_row_under_the_given_id(connection: sqlite3.Connection) -> None:
    event = FeedbackEvent("u_1", "SKU-1", "cart", 10.0, event_id="e-1")
    assert insert_event(connection, event, received_at=11.0, row_id=7, sealed=(b"\x00blob", "key-1")) == 7
    assert connection.execute("SELECT * FROM feedback").fetchall() == [
        (7, "u_1", "SKU-1", "cart", 10.0, 11.0, "e-1", b"\x00blob", "key-1")
    ]


def test_a_repeated_event_id_finds_the_first_row(connection: sqlite3.Connection) -> None:
    first = FeedbackEvent("u_1", "SKU-1", "click", 1.0, event_id="e-1")
    assert insert_event(connection, first, 2.0, 1, None) == 1
    retry = FeedbackEvent("u_1", "SKU-other", "click", 3.0, event_id="e-1")
    assert insert_event(connection, retry, 4.0, 2, None) == 1
    assert connection.execute("SELECT id, item_id FROM feedback").fetchall() == [(1, "SKU-1")]


def test_events_without_a_client_id_never_collide(connection: sqlite3.Connection) -> None:
    event = FeedbackEvent("u_1", "SKU-1", "view", 1.0)
    assert event.event_id is None
    assert [insert_event(connection, event, 1.0, row, None) for row in (1, 2, 3)] == [1, 2, 3]
    assert connection.execute("SELECT COUNT(*), COUNT(user_id_sealed) FROM feedback").fetchone() == (3, 0)


def test_next_id_never_reuses_the_id_of_a_deleted_last_row(connection: sqlite3.Connection) -> None:
    assert connection.execute(NEXT_ID).fetchone() == (1,)
    for row in (1, 2, 3):
        insert_event(connection, FeedbackEvent("u", "i", "view", 0.0), 0.0, row, None)
    connection.execute("DELETE FROM feedback WHERE id = 3")
    assert connection.execute(NEXT_ID).fetchone() == (4,)


def test_a_file_that_is_not_a_database_cannot_be_opened(tmp_path: Path) -> None:
    db = tmp_path / "feedback.db"
    db.write_bytes(b"not a database, just bytes" * 200)
    with pytest.raises(sqlite3.DatabaseError, match="file is not a database"):
        open_for_writing(db, busy_timeout_s=1.0)


def test_a_file_that_cannot_be_migrated_is_refused_and_its_connection_closed(tmp_path: Path) -> None:
    path = tmp_path / "not-a-log.db"
    path.write_bytes(b"this is not a database, but a text file " * 100)
    with pytest.raises(sqlite3.DatabaseError):
        open_for_writing(path, busy_timeout_s=1.0)
    assert str(path) not in {f.path for f in psutil.Process().open_files()}  # its connection is closed
