"""Reading the feedback log: counts, where a monitor starts, which client event ids are stored,
and the rows committed since a given one.

Each read opens a connection of its own: in WAL mode readers never block the writers (several
worker processes) and see only committed rows. Row ids are assigned under the write lock and
committed in order, so ``id > last seen`` misses nothing. A reader needs no writer thread, no data
key and no pseudonym of a user: a monitor that only reads and quarantines opens a reader and a
:class:`~recdrill.serving.feedback.quarantine.Quarantine`, not a :class:`FeedbackLog`.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from recdrill.data.pseudonymise import Pseudonymiser, default_pseudonymiser
from recdrill.errors import FeedbackLogError
from recdrill.serving.feedback.schema import StoredRow

READ_LIMIT = 10_000  # rows per read_after: a monitor catching up reads in bounded pieces
LOOKUP_CHUNK = 500  # event ids per query of present(): well under SQLite's bound-variable limit
BUSY_TIMEOUT_S = 10.0  # other worker processes hold the write lock for one commit at a time


class FeedbackReader:
    """Reads a feedback log file; event ids are matched as stored (scrubbed with ``pseudonymiser``,
    the process's by default, as the writer stored them)."""

    def __init__(
        self,
        path: str | Path,
        *,
        busy_timeout_s: float = BUSY_TIMEOUT_S,
        pseudonymiser: Pseudonymiser | None = None,
    ) -> None:
        self.path = Path(path)
        self.busy_timeout_s = busy_timeout_s
        self.pseudonymiser = pseudonymiser or default_pseudonymiser()

    def count(self) -> int:
        """Committed events."""
        return int(self._read("SELECT COUNT(*) FROM feedback", ())[0][0])

    def last_id(self) -> int:
        """The highest committed row id (0 for an empty log): where a monitor starting now begins."""
        return int(self._read("SELECT COALESCE(MAX(id), 0) FROM feedback", ())[0][0])

    def present(self, event_ids: Iterable[str]) -> set[str]:
        """Which of these client event ids are committed (ids as the client sent them: they are
        scrubbed here as on writing, so a stored id matches its raw form).

        Raises:
            FeedbackLogError: the log cannot be read.
        """
        stored = {raw: self.pseudonymiser.scrub_text(raw) for raw in event_ids}
        wanted = sorted(set(stored.values()))
        found: set[str] = set()
        for start in range(0, len(wanted), LOOKUP_CHUNK):
            chunk = wanted[start : start + LOOKUP_CHUNK]
            marks = ", ".join("?" * len(chunk))
            query = f"SELECT event_id FROM feedback WHERE event_id IN ({marks})"
            found.update(str(row[0]) for row in self._read(query, tuple(chunk)))
        return {raw for raw, as_stored in stored.items() if as_stored in found}

    def read_after(self, after_id: int, limit: int = READ_LIMIT) -> list[StoredRow]:
        """Up to ``limit`` committed rows with ``id > after_id``, oldest first (user ids as stored)."""
        columns = "id, user_id, item_id, event, ts, received_at"
        query = f"SELECT {columns} FROM feedback WHERE id > ? ORDER BY id LIMIT ?"
        rows = self._read(query, (after_id, limit))
        return [(int(r[0]), r[1], r[2], r[3], float(r[4]), float(r[5])) for r in rows]

    def _read(self, query: str, parameters: tuple[int | str, ...]) -> list[Any]:
        try:
            # mode=rw: a mistyped path is an error, not a new empty database left behind.
            uri = f"{self.path.resolve().as_uri()}?mode=rw"
            with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=self.busy_timeout_s)) as reader:
                return reader.execute(query, parameters).fetchall()
        except sqlite3.Error as exc:
            raise FeedbackLogError(f"{self.path}: could not read the feedback log: {exc}") from exc
