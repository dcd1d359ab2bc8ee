"""Durable feedback log: an event is acknowledged only after the transaction holding it is on disk.

Group commit: callers put events on a queue; one writer thread takes everything queued, inserts it in
one transaction, commits once (one fsync with ``synchronous=FULL``) and only then resolves each
caller's future with its row id. While one fsync runs, the next batch gathers, so under load many
events share an fsync instead of queueing behind one fsync each; a lone event is committed at once
(no linger). WAL mode lets readers (``recdrill feedback export``, monitors) run beside the writers of
several worker processes, which serialise on SQLite's write lock.

Two ways in, same durability:

* ``append(event)`` blocks the calling thread until the commit (scripts, tests, ``asyncio.to_thread``);
* ``await submit(event)`` suspends only the coroutine: the writer resolves the future through the event
  loop, so a thousand waiting requests hold no thread-pool threads.

An event may carry a client ``event_id``; a second event with the same id is not stored again and gets
the first one's row id, which makes a retried post safe (HTTP clients cannot otherwise tell "committed,
answer lost" from "never arrived").

Personal data never reaches the file: the ``user_id`` column holds the keyed pseudonym
(``pseudonymise_id``, ``u_`` and 16 hex digits) of the id the client sent, and ``item_id`` and
``event_id`` are scrubbed of anything that looks like an e-mail address or a phone number. The
pseudonym is stable under one key, so one user's events still group together, and the export
(:mod:`.export`) feeds retraining as it is; see there for joining with other data. The raw id
is kept only encrypted (AES-256-GCM under the data key, bound to its row: :mod:`.crypto`), for
data-subject requests; the writer assigns each row's id itself, under the write lock, so the id is
known before the row is sealed and inserted in one statement.

Events an anomaly monitor flags (bot bursts, poisoned clicks) are quarantined in the same file
(``log.quarantine``, a :class:`~.quarantine.Quarantine`: by row id, or by user, item and time span);
the export leaves them out. The reads (``count``, ``last_id``, ``present``, ``read_after``) are
:class:`~.reader.FeedbackReader`'s, which a monitor that only reads opens without a writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import queue
import sqlite3
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from recdrill.data.pseudonymise import Pseudonymiser
from recdrill.errors import FeedbackLogError, RecdrillError
from recdrill.serving.fault_points import FeedbackFaults, InjectedFaultError
from recdrill.serving.feedback.crypto import UserIdSealer, load_user_id_sealer, seal
from recdrill.serving.feedback.quarantine import Quarantine
from recdrill.serving.feedback.reader import BUSY_TIMEOUT_S, FeedbackReader
from recdrill.serving.feedback.schema import NEXT_ID, FeedbackEvent, insert_event, open_for_writing

log = logging.getLogger(__name__)

MAX_BATCH = 512


@dataclass(frozen=True)
class _Pending:
    event: FeedbackEvent
    future: Future[int]
    raw_user_id: str = field(repr=False, default="")


class FeedbackLog(FeedbackReader):
    """Appends events to a SQLite file; every returned id belongs to a committed, fsynced row.

    Each event is pseudonymised before it is queued (see the module docstring); ``pseudonymiser``
    defaults to the process's (``RECDRILL_PSEUDONYM_KEY`` or the key file under ``RECDRILL_HOME``),
    which every worker of a server shares, so they write the same pseudonym for one user.
    ``sealer`` encrypts the raw id beside it; by default it is loaded from the environment
    (:func:`~recdrill.serving.feedback.crypto.load_user_id_sealer`: none without a data key or
    under the pseudonyms-only opt-out); None stores no recoverable id. ``faults`` (the server's
    ``feedback`` fault point) may slow, fail or fill the store before each group commit, for drills.

    Example:
        >>> import tempfile, pathlib
        >>> from recdrill.data.pseudonymise import Pseudonymiser
        >>> log = FeedbackLog(pathlib.Path(tempfile.mkdtemp()) / "feedback.db",
        ...                   pseudonymiser=Pseudonymiser(b"k" * 32), sealer=None)
        >>> log.append(FeedbackEvent("u1", "sku-9", "click", 1.0, event_id="e-1"))
        1
        >>> log.append(FeedbackEvent("u1", "sku-9", "click", 1.0, event_id="e-1"))  # a retry
        1
        >>> log.count(), log.commits
        (1, 2)
        >>> log.close()
    """

    def __init__(
        self,
        path: str | Path,
        *,
        max_batch: int = MAX_BATCH,
        busy_timeout_s: float = BUSY_TIMEOUT_S,
        pseudonymiser: Pseudonymiser | None = None,
        sealer: UserIdSealer | Literal["from-env"] | None = "from-env",
        faults: FeedbackFaults | None = None,
    ) -> None:
        # The key is loaded now, so a missing or unsafe one stops the server at start-up, not at the
        # first post.
        super().__init__(path, busy_timeout_s=busy_timeout_s, pseudonymiser=pseudonymiser)
        self.quarantine = Quarantine(
            self.path, busy_timeout_s=busy_timeout_s, pseudonymiser=self.pseudonymiser
        )
        self._sealer = load_user_id_sealer() if sealer == "from-env" else sealer
        self.max_batch = max_batch
        self.faults = faults
        self.commits = 0  # transactions committed: fewer than events when group commit works
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._closing = threading.Lock()
        self._closed = False
        try:
            self._connection = open_for_writing(self.path, busy_timeout_s)
        except sqlite3.Error as exc:
            raise FeedbackLogError(f"{path}: cannot open the feedback log: {exc}") from exc
        self._writer = threading.Thread(target=self._write_loop, name="feedback-writer", daemon=True)
        self._writer.start()

    def append(self, event: FeedbackEvent) -> int:
        """Commit ``event`` and return its row id; blocks the calling thread until the commit.

        Raises:
            FeedbackLogError: the log is closed, or the commit failed (nothing was acknowledged).
        """
        return self._enqueue(event).result()

    async def submit(self, event: FeedbackEvent) -> int:
        """Like :meth:`append`, awaited: no thread waits on the commit, only this coroutine.

        If the awaiting task is cancelled before the writer took the event, the event is not
        written (it was never acknowledged either way).
        """
        return await asyncio.wrap_future(self._enqueue(event))

    def close(self) -> None:
        """Commit what is queued, stop the writer and close the file; later appends raise."""
        with self._closing:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        self._writer.join()

    def _enqueue(self, event: FeedbackEvent) -> Future[int]:
        if not math.isfinite(event.ts):  # SQLite would store NaN as NULL; no monitor can place inf
            raise FeedbackLogError(f"{self.path}: event time must be finite, got {event.ts!r}")
        raw_user_id = event.user_id if self._sealer is not None else ""
        event = self._protect(event)
        future: Future[int] = Future()
        with self._closing:  # nothing may slip in behind the writer's stop marker
            if self._closed:
                raise FeedbackLogError(f"{self.path}: the feedback log is closed")
            self._queue.put(_Pending(event, future, raw_user_id))
        return future

    def _protect(self, event: FeedbackEvent) -> FeedbackEvent:
        """The event as stored: the user's pseudonym, free-text ids scrubbed (deterministically, so
        a retried event_id still matches its first post)."""
        p = self.pseudonymiser
        event_id = None if event.event_id is None else p.scrub_text(event.event_id)
        return FeedbackEvent(
            p.pseudonymise_id(event.user_id), p.scrub_text(event.item_id), event.event, event.ts, event_id
        )

    def _write_loop(self) -> None:
        stopping = False
        try:
            while not stopping:
                batch, stopping = self._next_batch()
                # A future cancelled while queued (its request went away) is dropped unwritten;
                # the rest can no longer be cancelled, so resolving them below cannot fail.
                live = [p for p in batch if p.future.set_running_or_notify_cancel()]
                if live:
                    try:
                        self._commit(live)
                    except Exception as exc:  # a bug must fail this batch, never stop the writer
                        log.exception("feedback commit failed unexpectedly")
                        with contextlib.suppress(sqlite3.Error):
                            self._connection.execute("ROLLBACK")
                        error = FeedbackLogError(f"{self.path}: could not commit {len(live)} event(s): {exc}")
                        for pending in live:
                            if not pending.future.done():
                                pending.future.set_exception(error)
        finally:
            self._fail_queued(FeedbackLogError(f"{self.path}: the feedback writer stopped"))
            self._connection.close()

    def _next_batch(self) -> tuple[list[_Pending], bool]:
        """Block for one event, then take whatever else is already queued (up to ``max_batch``)."""
        first = self._queue.get()
        if first is None:
            return [], True
        batch = [first]
        while len(batch) < self.max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                return batch, True
            batch.append(item)
        return batch, False

    def _commit(self, batch: list[_Pending]) -> None:
        connection = self._connection
        received_at = time.time()
        try:
            if self.faults is not None:  # a drill's slow, failing or full store (serving/fault_points.py)
                self.faults.before_commit(connection)
            connection.execute("BEGIN IMMEDIATE")
            # Read under the write lock: a rotation places its new key before re-encrypting the table.
            key = None if self._sealer is None else self._sealer.sealing_key()
            next_id = int(connection.execute(NEXT_ID).fetchone()[0])
            rows = []
            for p in batch:
                sealed = None if key is None else (seal(key, p.raw_user_id, next_id), key.id)
                row = insert_event(connection, p.event, received_at, next_id, sealed)
                if row == next_id:  # inserted, not a repeated event_id
                    next_id += 1
                rows.append(row)
            connection.execute("COMMIT")
        except (sqlite3.Error, RecdrillError, InjectedFaultError) as exc:
            # SQLite rolls back by itself on some errors (SQLITE_FULL): then ROLLBACK finds nothing.
            with contextlib.suppress(sqlite3.Error):
                connection.execute("ROLLBACK")
            error = FeedbackLogError(f"{self.path}: could not commit {len(batch)} event(s): {exc}")
            for pending in batch:
                pending.future.set_exception(error)
            return
        self.commits += 1
        for pending, row in zip(batch, rows, strict=True):
            pending.future.set_result(row)

    def _fail_queued(self, error: FeedbackLogError) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None and item.future.set_running_or_notify_cancel():
                item.future.set_exception(error)
