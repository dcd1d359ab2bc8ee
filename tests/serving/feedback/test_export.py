"""Exporting the feedback log: Parquet and CSV rows, since, revealed user ids, quarantine, refusals."""

from __future__ import annotations

import contextlib
import csv
import sqlite3
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from recdrill.data.pseudonymise import Pseudonymiser
from recdrill.errors import ConfigError, DataFileNotFoundError, DataFormatError, KeyMaterialError
from recdrill.registry.keys import DataKey, DataKeyring
from recdrill.serving.feedback.crypto import seal
from recdrill.serving.feedback.export import COLUMNS, count_withheld, export_feedback
from recdrill.serving.feedback.quarantine import Quarantine
from recdrill.serving.feedback.schema import FeedbackEvent, insert_event, open_for_writing

KEY = DataKey(b"\x44" * 32, "test")
# The table as the first servers wrote it, and as later ones did before they sealed raw ids.
OLDEST_SCHEMA = (
    "CREATE TABLE feedback (id INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL, "
    "item_id TEXT NOT NULL, event TEXT NOT NULL, ts REAL NOT NULL, received_at REAL NOT NULL)"
)
UNSEALED_SCHEMA = OLDEST_SCHEMA.replace(
    "received_at REAL NOT NULL)", "received_at REAL NOT NULL, event_id TEXT)"
)


def old_log(path: Path, schema: str) -> Path:
    with contextlib.closing(sqlite3.connect(path)) as connection:
        connection.execute(schema)
        connection.execute(
            "INSERT INTO feedback (id, user_id, item_id, event, ts, received_at) "
            "VALUES (1, 'u_1', 'SKU-1', 'click', 1.0, 2.0)"
        )
        connection.commit()
    return path


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """Six events: row r (1..6) is user u_r % 2, SKU-r, ts 10 r; odd rows carry an event id and a
    sealed raw id ``U-r``, even rows neither."""
    path = tmp_path / "state" / "feedback.db"
    path.parent.mkdir()
    connection = open_for_writing(path, busy_timeout_s=1.0)
    for row in range(1, 7):
        odd = row % 2 == 1
        event = FeedbackEvent(
            f"u_{row % 2:016x}", f"SKU-{row}", "click", 10.0 * row, f"e-{row}" if odd else None
        )
        sealed = (seal(KEY, f"U-{row}", row), KEY.id) if odd else None
        insert_event(connection, event, 10.0 * row + 0.5, row, sealed)
    connection.close()
    return path


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_parquet_keeps_every_column_and_type(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "feedback.parquet"  # the folder is made
    assert export_feedback(db, out) == 6
    table = pq.read_table(out)
    assert tuple(table.column_names) == COLUMNS
    assert [str(t) for t in table.schema.types] == [
        "int64",
        "string",
        "string",
        "string",
        "double",
        "double",
        "string",
    ]
    assert table.to_pylist()[0] == {
        "id": 1,
        "user_id": "u_0000000000000001",
        "item_id": "SKU-1",
        "event": "click",
        "timestamp": 10.0,
        "received_at": 10.5,
        "event_id": "e-1",
    }
    assert table.column("event_id").to_pylist() == ["e-1", None, "e-3", None, "e-5", None]


def test_csv_has_a_header_and_one_line_per_event(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "feedback.CSV"  # the suffix is matched case-insensitively
    assert export_feedback(db, out) == 6
    rows = read_csv(out)
    assert list(rows[0]) == list(COLUMNS)
    assert [r["id"] for r in rows] == ["1", "2", "3", "4", "5", "6"]
    assert rows[1] == {
        "id": "2",
        "user_id": "u_0000000000000000",
        "item_id": "SKU-2",
        "event": "click",
        "timestamp": "20.0",
        "received_at": "20.5",
        "event_id": "",
    }


def test_since_keeps_events_at_or_after_the_time(db: Path, tmp_path: Path) -> None:
    assert export_feedback(db, tmp_path / "late.csv", since=40.0) == 3
    assert [r["item_id"] for r in read_csv(tmp_path / "late.csv")] == ["SKU-4", "SKU-5", "SKU-6"]
    assert export_feedback(db, tmp_path / "none.csv", since=1e9) == 0
    assert read_csv(tmp_path / "none.csv") == []


def test_an_empty_parquet_export_still_carries_the_columns(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    open_for_writing(empty, busy_timeout_s=1.0).close()
    assert export_feedback(empty, tmp_path / "empty.parquet") == 0
    table = pq.read_table(tmp_path / "empty.parquet")
    assert table.num_rows == 0 and tuple(table.column_names) == COLUMNS


def test_reveal_adds_each_rows_decrypted_user_id(db: Path, tmp_path: Path) -> None:
    assert export_feedback(db, tmp_path / "revealed.parquet", reveal=DataKeyring(KEY)) == 6
    table = pq.read_table(tmp_path / "revealed.parquet")
    assert table.column_names[-1] == "raw_user_id"
    assert table.column("raw_user_id").to_pylist() == ["U-1", None, "U-3", None, "U-5", None]
    export_feedback(db, tmp_path / "revealed.csv", reveal=DataKeyring(KEY))
    assert [r["raw_user_id"] for r in read_csv(tmp_path / "revealed.csv")] == [
        "U-1",
        "",
        "U-3",
        "",
        "U-5",
        "",
    ]


def test_reveal_under_the_wrong_key_stops_and_leaves_no_file(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "revealed.parquet"
    with pytest.raises(KeyMaterialError, match=r"feedback row 1: .*wrong data key"):
        export_feedback(db, out, reveal=DataKeyring(DataKey(b"\x55" * 32, "other")))
    assert list(tmp_path.iterdir()) == [db.parent]  # neither the export nor its partial file


def test_reveal_of_a_log_without_sealed_ids_is_a_data_format_error(tmp_path: Path) -> None:
    old = old_log(tmp_path / "old.db", UNSEALED_SCHEMA)
    with pytest.raises(DataFormatError, match="cannot reveal users: the file holds no encrypted user ids"):
        export_feedback(old, tmp_path / "x.csv", reveal=DataKeyring(KEY))
    assert export_feedback(old, tmp_path / "x.csv") == 1  # without reveal it exports as it is
    assert read_csv(tmp_path / "x.csv")[0]["event_id"] == ""


def test_a_log_from_before_event_ids_exports_without_reveal(tmp_path: Path) -> None:
    old = old_log(tmp_path / "oldest.db", OLDEST_SCHEMA)
    assert export_feedback(old, tmp_path / "x.csv") == 1
    assert read_csv(tmp_path / "x.csv")[0]["event_id"] == ""  # no client ids then


def test_quarantined_events_are_withheld_unless_asked_for(db: Path, tmp_path: Path) -> None:
    assert count_withheld(db) == 0
    Quarantine(db, pseudonymiser=Pseudonymiser(b"x" * 32)).rows([2, 5], "user_burst")
    assert count_withheld(db) == 2 and count_withheld(db, since=30.0) == 1
    assert export_feedback(db, tmp_path / "clean.csv") == 4
    assert [r["id"] for r in read_csv(tmp_path / "clean.csv")] == ["1", "3", "4", "6"]
    assert export_feedback(db, tmp_path / "all.csv", include_quarantined=True) == 6
    assert export_feedback(db, tmp_path / "late.csv", since=30.0) == 3  # rows 3, 4, 6


def test_export_refuses_other_suffixes_missing_files_and_non_logs(db: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"use .parquet or .csv"):
        export_feedback(db, tmp_path / "out.json")
    with pytest.raises(DataFileNotFoundError, match=r"absent.db: no such file"):
        export_feedback(tmp_path / "absent.db", tmp_path / "out.csv")
    assert not (tmp_path / "absent.db").exists()  # no empty database left where none was
    other = tmp_path / "other.db"
    with contextlib.closing(sqlite3.connect(other)) as connection:
        connection.execute("CREATE TABLE other (x)")
    with pytest.raises(DataFormatError, match="not a recdrill feedback log: the file has no feedback table"):
        export_feedback(other, tmp_path / "out.csv")
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"\x07" * 4096)
    with pytest.raises(DataFormatError, match="not a recdrill feedback log"):
        export_feedback(garbage, tmp_path / "out.parquet")
    assert not (tmp_path / "out.csv").exists() and not (tmp_path / "out.parquet").exists()


def test_count_withheld_refuses_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(DataFileNotFoundError):
        count_withheld(tmp_path / "absent.db")
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"\x07" * 4096)
    with pytest.raises(DataFormatError, match="not a recdrill feedback log"):
        count_withheld(garbage)
