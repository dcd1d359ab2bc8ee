"""Durable feedback log: every acknowledged event is committed to SQLite (WAL) first."""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class FeedbackEvent:
    user_id: str
    item_id: str
    event: str
    ts: float


class FeedbackLog:
    """Appends events to ``feedback.db``; ``append`` returns only after the commit is on disk.

    WAL mode lets readers (exports, monitors) run beside the writers of several workers;
    ``synchronous=FULL`` fsyncs each commit, so an acknowledged event survives a killed process
    and a lost machine alike.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._connection = sqlite3.connect(self.path, check_same_thread=False, timeout=10.0)
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.execute("PRAGMA synchronous=FULL")
        self._connection.execute(
            "CREATE TABLE IF NOT EXISTS feedback (id INTEGER PRIMARY KEY AUTOINCREMENT, "
            "user_id TEXT NOT NULL, item_id TEXT NOT NULL, event TEXT NOT NULL, ts REAL NOT NULL, "
            "received_at REAL NOT NULL)"
        )
        self._connection.commit()

    def append(self, event: FeedbackEvent) -> int:
        """Commit one event and return its row id."""
        with self._lock:
            cursor = self._connection.execute(
                "INSERT INTO feedback (user_id, item_id, event, ts, received_at) VALUES (?, ?, ?, ?, ?)",
                (event.user_id, event.item_id, event.event, event.ts, time.time()),
            )
            self._connection.commit()
            return int(cursor.lastrowid or 0)

    def count(self) -> int:
        with self._lock:
            return int(self._connection.execute("SELECT COUNT(*) FROM feedback").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._connection.close()
