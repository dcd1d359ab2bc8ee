"""Quarantine: marking feedback events out of retraining by row id or by user, item, event and span."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from recdrill.data.pseudonymise import Pseudonymiser
from recdrill.errors import ConfigError, FeedbackLogError
from recdrill.serving.feedback.quarantine import Quarantine, count_quarantined, has_quarantine
from recdrill.serving.feedback.schema import FeedbackEvent, insert_event, open_for_writing

PSEUDONYMISER = Pseudonymiser(b"q" * 32)
KINDS = ("view", "click", "cart", "purchase")
OLD_SCHEMA = (
    "CREATE TABLE feedback (id INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL, "
    "item_id TEXT NOT NULL, event TEXT NOT NULL, ts REAL NOT NULL, received_at REAL NOT NULL)"
)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Path]:
    """20 events as the writer stores them: row i+1 is user U-(i % 4), SKU-(i % 5), kind i % 4, ts i."""
    path = tmp_path / "feedback.db"
    connection = open_for_writing(path, busy_timeout_s=1.0)
    for i in range(20):
        user = PSEUDONYMISER.pseudonymise_id(f"U-{i % 4}")
        event = FeedbackEvent(user, f"SKU-{i % 5}", KINDS[i % 4], float(i))
        insert_event(connection, event, 100.0, i + 1, None)
    connection.close()
    yield path


@pytest.fixture
def quarantine(db: Path) -> Quarantine:
    return Quarantine(db, busy_timeout_s=1.0, pseudonymiser=PSEUDONYMISER)


def quarantined(db: Path) -> dict[int, str]:
    with contextlib.closing(sqlite3.connect(db)) as connection:
        return dict(connection.execute("SELECT feedback_id, reason FROM quarantine ORDER BY feedback_id"))


def test_rows_marks_committed_ids_once_and_skips_unknown_ones(quarantine: Quarantine, db: Path) -> None:
    assert quarantine.rows([3, 5, 5, 999], "manual") == 2
    assert quarantine.rows([5, 6], "second look") == 1
    assert quarantined(db) == {3: "manual", 5: "manual", 6: "second look"}  # the first reason wins
    assert quarantine.rows([], "nothing") == 0


def test_an_id_never_committed_does_not_pre_quarantine_a_later_row(quarantine: Quarantine, db: Path) -> None:
    assert quarantine.rows([21], "early") == 0
    connection = open_for_writing(db, busy_timeout_s=1.0)
    insert_event(connection, FeedbackEvent("u", "SKU-9", "click", 21.0), 100.0, 21, None)
    connection.close()
    assert 21 not in quarantined(db)


def test_where_matches_a_raw_user_id_through_its_pseudonym(quarantine: Quarantine, db: Path) -> None:
    assert quarantine.where(user_id="U-1", reason="user_burst") == 5  # rows 2, 6, 10, 14, 18
    assert quarantined(db) == dict.fromkeys([2, 6, 10, 14, 18], "user_burst")
    stored = PSEUDONYMISER.pseudonymise_id("U-2")
    assert quarantine.where(user_pseudonym=stored, reason="burst") == 5
    assert quarantine.where(user_id="U-never", reason="burst") == 0


def test_where_narrows_by_item_event_span_and_first_row(quarantine: Quarantine, db: Path) -> None:
    # SKU-0 is at i = 0, 5, 10, 15 (kinds view, click, cart, purchase; ts = i; row = i + 1).
    assert quarantine.where(item_id="SKU-0", event="cart", reason="spike") == 1
    assert quarantined(db) == {11: "spike"}
    assert quarantine.where(item_id="SKU-0", since=5.0, until=15.0, reason="spike") == 2  # rows 6, 16
    assert quarantine.where(item_id="SKU-1", from_id=13, reason="recent") == 1  # rows 2, 7, 12, 17: only 17
    assert quarantine.where(user_id="U-0", item_id="SKU-4", reason="pair") == 1  # i = 4: row 5
    assert quarantined(db) == {5: "pair", 6: "spike", 11: "spike", 16: "spike", 17: "recent"}


def test_where_scrubs_an_item_id_as_the_writer_stored_it(db: Path, quarantine: Quarantine) -> None:
    connection = open_for_writing(db, busy_timeout_s=1.0)
    stored_item = PSEUDONYMISER.scrub_text("ann@example.com")
    insert_event(connection, FeedbackEvent("u", stored_item, "click", 50.0), 100.0, 21, None)
    connection.close()
    assert quarantine.where(item_id="ann@example.com", reason="pii item") == 1
    assert quarantined(db) == {21: "pii item"}


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        ({"reason": "  "}, "needs a reason"),
        ({"reason": "x", "since": 0.0}, "names a user_id or an item_id"),
        ({"reason": "x", "user_id": "U-1", "user_pseudonym": "u_0000000000000000"}, "not both"),
    ],
)
def test_where_refuses_a_quarantine_without_reason_target_or_with_both_user_forms(
    quarantine: Quarantine, db: Path, arguments: dict[str, str | float], problem: str
) -> None:
    with pytest.raises(ConfigError, match=problem):
        quarantine.where(**arguments)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="needs a reason"):
        quarantine.rows([1], "")
    assert quarantined(db) == {}


def test_a_file_from_before_quarantine_gains_the_table_on_first_use(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    with contextlib.closing(sqlite3.connect(db)) as connection:
        connection.execute(OLD_SCHEMA)
        connection.execute("INSERT INTO feedback VALUES (1, 'u', 'SKU-1', 'click', 1.0, 2.0)")
        connection.commit()
        assert has_quarantine(connection) is False and count_quarantined(connection) == 0
    assert Quarantine(db, pseudonymiser=PSEUDONYMISER).rows([1], "manual") == 1
    with contextlib.closing(sqlite3.connect(db)) as connection:
        assert has_quarantine(connection) is True and count_quarantined(connection) == 1


def test_count_quarantined_counts_events_still_in_the_log_since_a_time(
    quarantine: Quarantine, db: Path
) -> None:
    quarantine.rows([1, 5, 10, 15], "manual")  # ts 0, 4, 9, 14
    with contextlib.closing(sqlite3.connect(db)) as connection:
        assert count_quarantined(connection) == 4
        assert count_quarantined(connection, since=9.0) == 2
        connection.execute("DELETE FROM feedback WHERE id = 15")
        connection.commit()
        assert count_quarantined(connection) == 3


def test_a_write_that_fails_is_a_feedback_log_error(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"\x02" * 4096)
    with pytest.raises(FeedbackLogError, match=r"garbage.db: could not quarantine events"):
        Quarantine(garbage, pseudonymiser=PSEUDONYMISER).rows([1], "manual")


def test_a_lock_held_too_long_is_a_feedback_log_error(db: Path) -> None:
    with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")  # another process holding the write lock
        with pytest.raises(FeedbackLogError, match="database is locked"):
            Quarantine(db, busy_timeout_s=0.05, pseudonymiser=PSEUDONYMISER).where(user_id="U-1", reason="x")
        other.execute("ROLLBACK")
    assert quarantined(db) == {}
