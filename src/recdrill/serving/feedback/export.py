"""Export the feedback log for retraining, as Parquet (default) or CSV.

Parquet keeps the types (integer ids, float epoch seconds) and is compact; CSV is for people and
spreadsheets. Both have the columns ``recdrill train --data FILE --columns event=event`` reads
(``user_id``, ``item_id``, ``timestamp``, ``event``) plus ``id``, ``received_at`` and ``event_id``.

``user_id`` holds what the feedback log stored: the keyed pseudonym of each user (``u_`` and 16 hex
digits, see ``recdrill.data.pseudonymise``), never the raw id. Retraining on the export alone needs
nothing more: a pseudonym is as good a user key as the id. Joining it with other data (the shop's
interactions a model was trained on, its snapshot's users) needs that data pseudonymised with the
same key (``RECDRILL_PSEUDONYM_KEY`` or ``RECDRILL_HOME/keys/pseudonym.key``), e.g.
``pseudonymise_ids(dataset.user_ids)``: under another key, or with raw ids, no user of the export
maps to a user there. This is the simplest correct design: one direction (raw -> pseudonym) at the
edge, and no table of raw ids anywhere to leak.

``reveal`` (``recdrill feedback export --reveal-users``, for an operator answering a data-subject
request) adds a ``raw_user_id`` column: each row's sealed id decrypted with the data key
(``feedback_crypto``); empty for rows stored without one. Any row that does not decrypt (wrong key,
a ciphertext altered or moved between rows) stops the export with that row named, and no file.

Quarantined events (``feedback_quarantine``: bot bursts, poisoned clicks flagged by the anomaly
monitor) are left out unless ``include_quarantined``: retraining must not learn from them.
:func:`count_withheld` says how many a default export leaves out.

The export reads one consistent snapshot (a single SELECT in WAL mode, while the server keeps
writing), streams it in chunks, and appears under its final name only when complete.
"""

from __future__ import annotations

import contextlib
import csv
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from recdrill.errors import ConfigError, DataFileNotFoundError, DataFormatError
from recdrill.registry.keys import DataKeyring
from recdrill.serving.feedback.crypto import unseal
from recdrill.serving.feedback.quarantine import NOT_QUARANTINED, count_quarantined, has_quarantine

COLUMNS = ("id", "user_id", "item_id", "event", "timestamp", "received_at", "event_id")
ARROW_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("user_id", pa.string()),
        ("item_id", pa.string()),
        ("event", pa.string()),
        ("timestamp", pa.float64()),
        ("received_at", pa.float64()),
        ("event_id", pa.string()),
    ]
)
REVEALED = ("raw_user_id", pa.string())
FORMATS = {".parquet": "parquet", ".csv": "csv"}
CHUNK_ROWS = 50_000


def export_feedback(
    db_path: str | Path,
    out: str | Path,
    since: float | None = None,
    *,
    reveal: DataKeyring | None = None,
    include_quarantined: bool = False,
) -> int:
    """Write the events of ``db_path`` (those with ``timestamp >= since``, if given) to ``out``.

    The format follows ``out``'s suffix (``.parquet`` or ``.csv``). Returns the number of events.
    With ``reveal``, a ``raw_user_id`` column holds each row's decrypted user id. Quarantined events
    are left out unless ``include_quarantined``.

    Raises:
        KeyMaterialError: with ``reveal``, a row does not decrypt under that keyring.
        DataFileNotFoundError: there is no database at ``db_path``.
        DataFormatError: the file is not a SQLite database, or has no feedback table.
        ConfigError: ``out`` has another suffix.
    """
    db_path, out = Path(db_path), Path(out)
    kind = FORMATS.get(out.suffix.lower())
    if kind is None:
        raise ConfigError(f"{out}: the export format follows the suffix: use .parquet or .csv")
    if not db_path.is_file():
        raise DataFileNotFoundError(db_path)
    partial = out.with_name(f".{out.name}.partial")
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with _reader(db_path) as connection:
            chunks = _chunks(connection, db_path, since, reveal, include_quarantined)
            schema = ARROW_SCHEMA if reveal is None else ARROW_SCHEMA.append(pa.field(*REVEALED))
            written = (
                _write_parquet(chunks, partial, schema)
                if kind == "parquet"
                else _write_csv(chunks, partial, schema)
            )
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    return written


def count_withheld(db_path: str | Path, since: float | None = None) -> int:
    """How many events (with ``timestamp >= since``) a default export leaves out as quarantined.

    Raises:
        DataFileNotFoundError: there is no database at ``db_path``.
        DataFormatError: the file is not a readable SQLite database.
    """
    db_path = Path(db_path)
    if not db_path.is_file():
        raise DataFileNotFoundError(db_path)
    with _reader(db_path) as connection:
        try:
            return count_quarantined(connection, since)
        except sqlite3.DatabaseError as exc:
            raise DataFormatError(db_path, f"not a recdrill feedback log: {exc}") from exc


@contextlib.contextmanager
def _reader(db_path: Path) -> Iterator[sqlite3.Connection]:
    # mode=rw: never create a database where none was (a typo must not leave an empty file behind);
    # not ro, because a log left by a killed server may need its WAL recovered on open.
    try:
        connection = sqlite3.connect(f"file:{db_path}?mode=rw", uri=True, timeout=10.0)
    except sqlite3.Error as exc:
        raise DataFormatError(db_path, f"cannot open the feedback log: {exc}") from exc
    try:
        yield connection
    finally:
        connection.close()


def _chunks(
    connection: sqlite3.Connection,
    db_path: Path,
    since: float | None,
    reveal: DataKeyring | None,
    include_quarantined: bool,
) -> Iterator[list[Any]]:
    sealed = ", user_id_sealed, user_id_key" if reveal is not None else ""
    parameters: tuple[float, ...] = ()
    conditions = []
    if since is not None:
        conditions, parameters = ["ts >= ?"], (since,)
    try:
        present = {row[1] for row in connection.execute("PRAGMA table_info(feedback)")}
        # A log no newer server has reopened (and so migrated) may predate client event ids.
        event_id = "event_id" if "event_id" in present or not present else "NULL"
        query = f"SELECT id, user_id, item_id, event, ts, received_at, {event_id}{sealed} FROM feedback"
        if not include_quarantined and has_quarantine(connection):
            conditions.append(NOT_QUARANTINED)
        if conditions:
            query += " WHERE " + " AND ".join(conditions)
        cursor = connection.execute(query + " ORDER BY id", parameters)
        while rows := cursor.fetchmany(CHUNK_ROWS):
            yield rows if reveal is None else [_revealed(reveal, row) for row in rows]
    except sqlite3.DatabaseError as exc:
        text = str(exc)
        if "no such column" in text:
            problem = "holds no encrypted user ids (written before they were kept)"
            raise DataFormatError(db_path, f"cannot reveal users: the file {problem}") from exc
        problem = "has no feedback table" if "no such table" in text else f"is not readable: {exc}"
        raise DataFormatError(db_path, f"not a recdrill feedback log: the file {problem}") from exc


def _revealed(keyring: DataKeyring, row: tuple[Any, ...]) -> tuple[Any, ...]:
    """The exported columns plus the raw id (None for a row stored with pseudonyms only)."""
    *columns, blob, key_id = row
    raw = None if blob is None else unseal(keyring, blob, key_id, int(row[0]))
    return (*columns, raw)


def _write_parquet(chunks: Iterator[list[Any]], path: Path, schema: pa.Schema) -> int:
    written = 0
    with pq.ParquetWriter(path, schema) as writer:
        for rows in chunks:
            columns = zip(*rows, strict=True)
            arrays = [pa.array(c, type=f.type) for c, f in zip(columns, schema, strict=True)]
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
            written += len(rows)
        if written == 0:  # an empty file still carries the schema, so readers see the columns
            writer.write_table(schema.empty_table())
    return written


def _write_csv(chunks: Iterator[list[Any]], path: Path, schema: pa.Schema) -> int:
    written = 0
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(schema.names)
        for rows in chunks:
            writer.writerows(rows)
            written += len(rows)
    return written
