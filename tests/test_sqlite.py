"""WAL switching waits out another process's lock instead of failing at once."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from recdrill._sqlite import switch_to_wal


def _hold_exclusive(path: Path, seconds: float) -> tuple[threading.Thread, threading.Event]:
    held = threading.Event()

    def hold() -> None:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        held.set()
        threading.Event().wait(seconds)
        other.execute("COMMIT")
        other.close()

    thread = threading.Thread(target=hold)
    thread.start()
    held.wait(5)
    return thread, held


def test_the_switch_is_retried_until_the_other_lock_goes(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    sqlite3.connect(path).execute("CREATE TABLE t (x)").connection.close()
    thread, _ = _hold_exclusive(path, 0.3)
    # timeout=0: SQLite answers "locked" at once, as it does (whatever the timeout) where waiting
    # could deadlock, which is what two workers creating the same file at once ran into.
    connection = sqlite3.connect(path, timeout=0)
    switch_to_wal(connection, attempts=100, pause_s=0.02)
    thread.join()
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_lock_held_longer_than_the_retries_is_still_an_error(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    sqlite3.connect(path).execute("CREATE TABLE t (x)").connection.close()
    thread, _ = _hold_exclusive(path, 0.5)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        switch_to_wal(sqlite3.connect(path, timeout=0), attempts=3, pause_s=0.01)
    thread.join()
