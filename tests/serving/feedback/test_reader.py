"""FeedbackReader: counts, where a monitor starts, stored event ids, and rows after a given id."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from recdrill.data.pseudonymise import Pseudonymiser
from recdrill.errors import FeedbackLogError
from recdrill.serving.feedback.reader import LOOKUP_CHUNK, FeedbackReader
from recdrill.serving.feedback.schema import FeedbackEvent, insert_event, open_for_writing

PSEUDONYMISER = Pseudonymiser(b"r" * 32)


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    """The log's file opened as a writer does, without a writer thread."""
    connection = open_for_writing(tmp_path / "feedback.db", busy_timeout_s=1.0)
    yield connection
    connection.close()


@pytest.fixture
def reader(tmp_path: Path, writer: sqlite3.Connection) -> FeedbackReader:
    return FeedbackReader(tmp_path / "feedback.db", busy_timeout_s=1.0, pseudonymiser=PSEUDONYMISER)


def write(connection: sqlite3.Connection, events: list[FeedbackEvent], first_id: int = 1) -> list[int]:
    return [insert_event(connection, e, 100.0 + i, first_id + i, None) for i, e in enumerate(events)]


def event(i: int, event_id: str | None = None) -> FeedbackEvent:
    return FeedbackEvent(f"u_{i % 3:016x}", f"SKU-{i}", ("view", "click")[i % 2], float(i), event_id)


def test_an_empty_log_counts_nothing_and_starts_at_zero(reader: FeedbackReader) -> None:
    assert (reader.count(), reader.last_id(), reader.read_after(0)) == (0, 0, [])
    assert reader.present(["e-1"]) == set() and reader.present([]) == set()


def test_read_after_returns_later_rows_oldest_first_in_bounded_pieces(
    reader: FeedbackReader, writer: sqlite3.Connection
) -> None:
    write(writer, [event(i) for i in range(6)])
    assert reader.count() == 6 and reader.last_id() == 6
    assert [row[:5] for row in reader.read_after(2, limit=3)] == [
        (3, "u_0000000000000002", "SKU-2", "view", 2.0),
        (4, "u_0000000000000000", "SKU-3", "click", 3.0),
        (5, "u_0000000000000001", "SKU-4", "view", 4.0),
    ]
    assert [row[0] for row in reader.read_after(5)] == [6] and reader.read_after(6) == []
    row = reader.read_after(0, limit=1)[0]
    assert [type(value) for value in row] == [int, str, str, str, float, float]


def test_read_after_skips_ids_a_deleted_row_left(reader: FeedbackReader, writer: sqlite3.Connection) -> None:
    write(writer, [event(i) for i in range(4)])
    writer.execute("DELETE FROM feedback WHERE id = 2")
    assert [row[0] for row in reader.read_after(0)] == [1, 3, 4]
    assert reader.count() == 3 and reader.last_id() == 4


def test_only_committed_rows_are_seen(reader: FeedbackReader, writer: sqlite3.Connection) -> None:
    write(writer, [event(0)])
    writer.execute("BEGIN IMMEDIATE")  # a writer mid-transaction holds the lock: readers still read
    write(writer, [event(1)], first_id=2)
    assert reader.count() == 1 and reader.last_id() == 1 and [r[0] for r in reader.read_after(0)] == [1]
    writer.execute("COMMIT")
    assert reader.count() == 2 and reader.last_id() == 2


def test_present_matches_raw_event_ids_as_the_writer_scrubbed_them(
    reader: FeedbackReader, writer: sqlite3.Connection
) -> None:
    raw = "ann@example.com"
    stored = PSEUDONYMISER.scrub_text(raw)
    assert stored != raw
    write(writer, [event(0, stored), event(1, "plain-2")])
    assert reader.present([raw, "plain-2", "never-sent", stored]) == {raw, "plain-2", stored}


def test_present_looks_up_more_ids_than_one_query_may_bind(
    reader: FeedbackReader, writer: sqlite3.Connection
) -> None:
    ids = [f"e-{i}" for i in range(LOOKUP_CHUNK * 2 + 7)]
    write(writer, [event(i, event_id) for i, event_id in enumerate(ids) if i % 2 == 0])
    assert reader.present(ids) == {event_id for i, event_id in enumerate(ids) if i % 2 == 0}


def test_a_file_that_is_not_a_feedback_log_is_a_feedback_log_error(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"\x01" * 4096)
    with pytest.raises(
        FeedbackLogError, match=r"garbage.db: could not read the feedback log: file is not a database"
    ):
        FeedbackReader(garbage, pseudonymiser=PSEUDONYMISER).count()
    other = tmp_path / "other.db"
    with contextlib.closing(sqlite3.connect(other)) as connection:
        connection.execute("CREATE TABLE other (x)")
    with pytest.raises(FeedbackLogError, match="no such table: feedback"):
        FeedbackReader(other, pseudonymiser=PSEUDONYMISER).read_after(0)
    with pytest.raises(FeedbackLogError, match="no such table: feedback"):
        FeedbackReader(other, pseudonymiser=PSEUDONYMISER).present(["e-1"])


def test_a_mistyped_path_is_an_error_and_leaves_no_file_behind(tmp_path: Path) -> None:
    missing = tmp_path / "typo.db"
    with pytest.raises(FeedbackLogError, match="could not read the feedback log"):
        FeedbackReader(missing, pseudonymiser=Pseudonymiser(b"k" * 32)).count()
    assert not missing.exists()
