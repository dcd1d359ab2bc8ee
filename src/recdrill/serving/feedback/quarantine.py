"""Quarantine: feedback events kept out of retraining data, stored beside them in the log's file.

An anomaly monitor (``recdrill.monitor.anomaly``) that sees a bot burst or a poisoned click spike
marks the events involved here; the export (:mod:`recdrill.serving.feedback.export`) then leaves
them out unless asked to keep them. Nothing is deleted: an operator can still read (and export)
every event, and a false alarm is undone by deleting its quarantine rows.

Why a table of row ids (``quarantine``: ``feedback_id`` primary key, ``reason``, ``quarantined_at``)
and not a column or a table of rules:

* a new table needs no rewrite of ``feedback`` and leaves old readers working (a file from before it
  simply has no quarantine); ``CREATE TABLE IF NOT EXISTS`` is the whole migration;
* the export leaves rows out with one primary-key lookup each (``NOT EXISTS``), where rules (user,
  item, time span) would be matched against every row;
* it records exactly which events were withheld and why (the first reason given wins), for audit.

A quarantine by user, item, event type and time span (:func:`quarantine_matching`) marks the rows
committed so far; rows written later in the same span are the monitor's to mark when it reads them.
User ids in ``feedback`` are pseudonyms: callers match on the pseudonym as stored
(:meth:`Quarantine.where` pseudonymises a raw id with the log's key first).
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal

from recdrill._sqlite import write_transaction
from recdrill.data.pseudonymise import Pseudonymiser, default_pseudonymiser
from recdrill.errors import ConfigError, FeedbackLogError

Clock = Literal["ts", "received_at"]
CLOCKS: tuple[Clock, ...] = ("ts", "received_at")  # the two time columns of ``feedback``

QUARANTINE_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS quarantine (feedback_id INTEGER PRIMARY KEY, "
    "reason TEXT NOT NULL, quarantined_at REAL NOT NULL)"
)
# The export's filter: a primary-key lookup per row.
NOT_QUARANTINED = "NOT EXISTS (SELECT 1 FROM quarantine q WHERE q.feedback_id = feedback.id)"
# Only rows that exist are marked: an id that was never committed must not pre-quarantine a later row.
INSERT_ROW = (
    "INSERT OR IGNORE INTO quarantine (feedback_id, reason, quarantined_at) "
    "SELECT id, ?, ? FROM feedback WHERE id = ?"
)


class Quarantine:
    """Marks events of one feedback log file as quarantined, by row id or by user, item and span.

    Example:
        >>> import tempfile, pathlib
        >>> from recdrill.serving.feedback.log import FeedbackEvent, FeedbackLog
        >>> log = FeedbackLog(pathlib.Path(tempfile.mkdtemp()) / "feedback.db",
        ...                   pseudonymiser=Pseudonymiser(b"k" * 32), sealer=None)
        >>> rows = [log.append(FeedbackEvent("bot", "sku-1", "click", float(t))) for t in range(3)]
        >>> log.quarantine.where(user_id="bot", since=1.0, reason="user_burst")
        2
        >>> log.quarantine.rows(rows, "manual")  # the first row is new; the others already were
        1
        >>> log.close()
    """

    def __init__(
        self, path: Path, *, busy_timeout_s: float = 10.0, pseudonymiser: Pseudonymiser | None = None
    ) -> None:
        self.path = path
        self.busy_timeout_s = busy_timeout_s
        self.pseudonymiser = pseudonymiser or default_pseudonymiser()

    def rows(self, row_ids: Iterable[int], reason: str) -> int:
        """Quarantine the events with these row ids; returns how many were not quarantined before
        (ids already quarantined or never committed are skipped).

        Raises:
            ConfigError: ``reason`` is empty.
            FeedbackLogError: the write failed.
        """
        _validate_reason(reason)
        now = time.time()
        with self._writing() as connection:
            before = connection.total_changes
            connection.executemany(INSERT_ROW, ((reason, now, int(row)) for row in row_ids))
            return connection.total_changes - before

    def where(
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
        clock: Clock = "ts",
    ) -> int:
        """Quarantine the committed events of one user and/or one item (of one ``event`` type, with
        ``since <= ts <= until`` and row id at least ``from_id`` where given); returns how many were
        not quarantined before.

        ``user_id`` is the raw id a client sent (pseudonymised here with the log's key, as on
        writing); ``user_pseudonym`` is the id as stored (what a reader's ``read_after`` returns).
        At least a user or an item is required: a quarantine of everything in a span is almost
        surely a mistake. ``feedback`` has no index but its row id, so a caller that knows where
        recent rows start (the monitor) passes ``from_id`` to scan only those, not the whole log.
        ``clock`` is the column ``since`` and ``until`` bound: the event time a client sent (``ts``)
        or the server's receive time (``received_at``, what the live anomaly monitor judges).

        Raises:
            ConfigError: no user or item, both ``user_id`` and ``user_pseudonym``, or no reason.
            FeedbackLogError: the write failed.
        """
        _validate_reason(reason)
        if user_id is not None and user_pseudonym is not None:
            raise ConfigError("give user_id (raw) or user_pseudonym (as stored), not both")
        if user_id is not None:
            user_pseudonym = self.pseudonymiser.pseudonymise_id(user_id)
        if user_pseudonym is None and item_id is None:
            raise ConfigError("a quarantine names a user_id or an item_id (or both), got neither")
        item = None if item_id is None else self.pseudonymiser.scrub_text(item_id)  # as stored
        conditions: list[tuple[str, str | float | int | None]] = [
            ("user_id = ?", user_pseudonym),
            ("item_id = ?", item),
            ("event = ?", event),
            (f"{check_clock(clock)} >= ?", since),
            (f"{check_clock(clock)} <= ?", until),
            ("id >= ?", from_id),
        ]
        used = [(sql, value) for sql, value in conditions if value is not None]
        query = (
            "INSERT OR IGNORE INTO quarantine (feedback_id, reason, quarantined_at) "
            f"SELECT id, ?, ? FROM feedback WHERE {' AND '.join(sql for sql, _ in used)}"
        )
        with self._writing() as connection:
            before = connection.total_changes
            connection.execute(query, (reason, time.time(), *(value for _, value in used)))
            return connection.total_changes - before

    @contextlib.contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """One write transaction on a connection of its own (the log's writer thread owns its own)."""
        try:
            with write_transaction(self.path, self.busy_timeout_s) as connection:
                connection.execute(QUARANTINE_SCHEMA)  # a file opened by an older server has none yet
                yield connection
        except sqlite3.Error as exc:
            raise FeedbackLogError(f"{self.path}: could not quarantine events: {exc}") from exc


def has_quarantine(connection: sqlite3.Connection) -> bool:
    """Whether the file has a quarantine table (a log written before it existed has none)."""
    found = connection.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'quarantine'")
    return found.fetchone() is not None


def count_quarantined(connection: sqlite3.Connection, since: float | None = None) -> int:
    """Quarantined events (with ``ts >= since``, if given) that are still in the log."""
    if not has_quarantine(connection):
        return 0
    query = "SELECT COUNT(*) FROM feedback JOIN quarantine q ON q.feedback_id = feedback.id"
    if since is None:
        return int(connection.execute(query).fetchone()[0])
    return int(connection.execute(query + " WHERE ts >= ?", (since,)).fetchone()[0])


def check_clock(clock: str) -> Clock:
    """``clock`` if it names a time column of ``feedback``, else a ConfigError naming the two."""
    if clock not in CLOCKS:
        raise ConfigError(f"unknown clock {clock!r}: expected one of {', '.join(CLOCKS)}")
    return clock  # narrowed to Clock by the membership test


def _validate_reason(reason: str) -> None:
    if not reason.strip():
        raise ConfigError("a quarantine needs a reason (e.g. 'user_burst'), got an empty one")
