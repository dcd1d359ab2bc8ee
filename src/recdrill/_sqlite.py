"""Switching a SQLite file to WAL mode when several processes open it at the same moment."""

from __future__ import annotations

import sqlite3
import time


def switch_to_wal(connection: sqlite3.Connection, attempts: int = 100, pause_s: float = 0.05) -> None:
    """Put the file in WAL mode. Switching needs a lock SQLite will not wait for (its busy handler
    is skipped where waiting could deadlock), so two processes creating the same file at the same
    moment (two server workers starting together) can get "database is locked" at once, whatever
    the connection's timeout: try again for up to ``attempts * pause_s`` seconds (~5 s)."""
    for attempt in range(attempts):
        try:
            if connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
                return
            connection.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(pause_s)
