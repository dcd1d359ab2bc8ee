"""SQLite as several processes share it: switching a file to WAL mode when they open it at the same
moment, and explicit write transactions that take the lock up front."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path


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


@contextlib.contextmanager
def transaction(connection: sqlite3.Connection, *, immediate: bool = True) -> Iterator[sqlite3.Connection]:
    """One explicit transaction on an autocommit connection (``isolation_level=None``): committed
    when the block ends, rolled back when it raises.

    ``immediate`` takes the write lock up front (``BEGIN IMMEDIATE``), so concurrent writers queue
    on the busy timeout instead of failing halfway; a read (``immediate=False``, WAL) sees one
    consistent snapshot without waiting for writers. The stdlib's ``with connection:`` does neither.

    Example:
        >>> db = sqlite3.connect(":memory:", isolation_level=None)
        >>> with transaction(db):
        ...     _ = db.execute("CREATE TABLE t (x)")
        >>> try:
        ...     with transaction(db):
        ...         _ = db.execute("INSERT INTO t VALUES (1)")
        ...         raise ValueError("undo")
        ... except ValueError:
        ...     pass
        >>> db.execute("SELECT COUNT(*) FROM t").fetchone()
        (0,)
    """
    connection.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
    try:
        yield connection
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


@contextlib.contextmanager
def write_transaction(path: Path, busy_timeout_s: float) -> Iterator[sqlite3.Connection]:
    """A connection of its own to ``path``, holding one write transaction (see :func:`transaction`)."""
    connection = sqlite3.connect(path, timeout=busy_timeout_s, isolation_level=None)
    try:
        with transaction(connection):
            yield connection
    finally:
        connection.close()
