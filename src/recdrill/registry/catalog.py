"""The registry's metadata in SQLite (WAL): versions, their stages, and the production history.

Versions get human ids (``v1``, ``v2``, ...) in push order; the content address stays the storage
key. A copy of each manifest is kept here so ``list``/``show`` need no disk walk, but only the
signed copy beside the files is trusted for loading. ``production_log`` is the stack ``rollback``
pops: every promotion to production adds a row, a rollback deactivates the current one's rows.
Every write runs in ``BEGIN IMMEDIATE`` so two processes pushing at once get distinct ids.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from recdrill._sqlite import switch_to_wal, transaction
from recdrill.errors import VersionNotFoundError
from recdrill.registry.manifest import ManifestRecord
from recdrill.registry.stages import Stage

SCHEMA = """
CREATE TABLE IF NOT EXISTS versions (
    seq INTEGER PRIMARY KEY,
    version TEXT NOT NULL UNIQUE,
    address TEXT NOT NULL UNIQUE,
    stage TEXT NOT NULL,
    manifest TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS stage_events (
    id INTEGER PRIMARY KEY,
    version TEXT NOT NULL,
    from_stage TEXT,
    to_stage TEXT NOT NULL,
    at TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS production_log (
    id INTEGER PRIMARY KEY,
    version TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 1
);
"""


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class VersionRow:
    """One registered version: its stage now and its manifest as pushed."""

    version: str
    stage: Stage
    record: ManifestRecord

    @property
    def address(self) -> str:
        return self.record.address


class CatalogSession:
    """Reads and writes inside one transaction."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection

    def _row(self, row: tuple[str, str, str]) -> VersionRow:
        return VersionRow(row[0], Stage(row[1]), ManifestRecord.from_json(row[2]))

    def find(self, version: str) -> VersionRow | None:
        row = self._db.execute(
            "SELECT version, stage, manifest FROM versions WHERE version = ?", (version,)
        ).fetchone()
        return None if row is None else self._row(row)

    def get(self, version: str) -> VersionRow:
        found = self.find(version)
        if found is None:
            raise VersionNotFoundError(
                f"no registered version {version!r}; 'recdrill registry list' shows them"
            )
        return found

    def by_address(self, address: str) -> VersionRow | None:
        row = self._db.execute(
            "SELECT version, stage, manifest FROM versions WHERE address = ?", (address,)
        ).fetchone()
        return None if row is None else self._row(row)

    def all(self) -> list[VersionRow]:
        rows = self._db.execute("SELECT version, stage, manifest FROM versions ORDER BY seq").fetchall()
        return [self._row(row) for row in rows]

    def in_stage(self, stage: Stage) -> list[str]:
        rows = self._db.execute("SELECT version FROM versions WHERE stage = ? ORDER BY seq", (stage,))
        return [row[0] for row in rows]

    def next_version(self) -> str:
        (last,) = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM versions").fetchone()
        return f"v{int(last) + 1}"

    def insert(self, record: ManifestRecord, stage: Stage) -> None:
        seq = int(record.version.removeprefix("v"))
        self._db.execute(
            "INSERT INTO versions (seq, version, address, stage, manifest) VALUES (?, ?, ?, ?, ?)",
            (seq, record.version, record.address, stage, record.to_json()),
        )
        self._event(record.version, None, stage, "push")

    def replace_manifest(self, record: ManifestRecord) -> None:
        self._db.execute(
            "UPDATE versions SET manifest = ? WHERE version = ?", (record.to_json(), record.version)
        )

    def set_stage(self, version: str, stage: Stage, reason: str) -> None:
        before = self.get(version).stage
        self._db.execute("UPDATE versions SET stage = ? WHERE version = ?", (stage, version))
        self._event(version, before, stage, reason)
        if stage is Stage.PRODUCTION:
            self._db.execute("INSERT INTO production_log (version) VALUES (?)", (version,))
        elif before is Stage.PRODUCTION and reason != "superseded":
            self._db.execute("UPDATE production_log SET active = 0 WHERE version = ?", (version,))

    def previous_production(self, current: str | None) -> str | None:
        """The latest still-active production entry that is not ``current``."""
        row = self._db.execute(
            "SELECT version FROM production_log WHERE active = 1 AND version IS NOT ? "
            "ORDER BY id DESC LIMIT 1",
            (current,),
        ).fetchone()
        return None if row is None else str(row[0])

    def events(self, version: str) -> list[tuple[str | None, str, str]]:
        """``(from, to, reason)`` for each stage change of ``version``, oldest first."""
        rows = self._db.execute(
            "SELECT from_stage, to_stage, reason FROM stage_events WHERE version = ? ORDER BY id", (version,)
        )
        return [(row[0], row[1], row[2]) for row in rows]

    def _event(self, version: str, before: Stage | None, after: Stage, reason: str) -> None:
        self._db.execute(
            "INSERT INTO stage_events (version, from_stage, to_stage, at, reason) VALUES (?, ?, ?, ?, ?)",
            (version, None if before is None else before.value, after.value, utc_now(), reason),
        )


class Catalog:
    """The SQLite file ``registry.db``; every use is one short transaction."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as connection:
            switch_to_wal(connection)
            connection.executescript(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        connection.execute("PRAGMA busy_timeout = 30000")
        return connection

    @contextmanager
    def transaction(self, write: bool = True) -> Iterator[CatalogSession]:
        """A transaction; a write one takes the lock up front so concurrent writers queue instead of
        failing, a read one (WAL) sees a consistent snapshot without waiting for writers."""
        connection = self._connect()
        try:
            with transaction(connection, immediate=write):
                yield CatalogSession(connection)
        finally:
            connection.close()
