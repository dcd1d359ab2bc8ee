"""The anomaly monitor inside a running server: one worker at a time judges the shared feedback log.

Every uvicorn worker starts this observer (``recdrill serve`` names
``recdrill.monitor.anomaly.watch:anomaly_watch``), but the feedback file is shared, and two judges
would count every anomaly twice. So each worker tries, every ``interval_s``, to take an exclusive
``flock`` on ``<state_dir>/anomaly.lock``; the holder polls (:class:`AnomalyMonitor`), the others
wait. The kernel drops the lock when its holder dies, so after a killed worker another one takes
over within a second, starting from the log's last row (events committed while nobody held the
lock are not judged: an accepted gap of at most an interval, rather than judging a backlog twice).
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
from pathlib import Path
from typing import IO

from recdrill.contract import ANOMALY_LOCK, FEEDBACK_DB
from recdrill.errors import FeedbackLogError
from recdrill.monitor.anomaly.monitor import INTERVAL_S, AnomalyMonitor
from recdrill.serving.feedback.reader import FeedbackReader
from recdrill.serving.observers import FeedbackSeen, ObserverContext, RecommendSeen

log = logging.getLogger(__name__)


class AnomalyWatch:
    """Runs :class:`AnomalyMonitor` over ``<state_dir>/feedback.db`` while holding the lock."""

    def __init__(self, context: ObserverContext, interval_s: float = INTERVAL_S) -> None:
        self.context = context
        self.interval_s = interval_s
        self.monitor: AnomalyMonitor | None = None
        self._lock: IO[bytes] | None = None

    def recommend(self, seen: RecommendSeen) -> None:
        pass  # the rules judge committed feedback, read from the log by row id

    def feedback(self, seen: FeedbackSeen) -> None:
        pass

    @property
    def judging(self) -> bool:
        """Whether this worker holds the lock and judges the log."""
        return self.monitor is not None

    async def run(self) -> None:
        while True:
            if self.monitor is None:
                self._try_to_judge()
            if self.monitor is not None:
                try:
                    await asyncio.to_thread(self.monitor.poll)
                except FeedbackLogError as exc:
                    log.warning("anomaly monitor: feedback log unavailable (%s); retrying", exc)
                except Exception:  # monitoring must never take serving down
                    log.exception("anomaly monitor pass failed")
            await asyncio.sleep(self.interval_s)

    def close(self) -> None:
        if self._lock is not None:
            self._lock.close()  # releases the flock
            self._lock = None
        self.monitor = None

    def _try_to_judge(self) -> None:
        state_dir = Path(self.context.state_dir)
        handle = (state_dir / ANOMALY_LOCK).open("ab")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return
        try:
            # A reader and the quarantine, not a FeedbackLog: judging needs no writer thread, no
            # second write connection and no data key. It reads the log's last row at once.
            self.monitor = AnomalyMonitor(FeedbackReader(state_dir / FEEDBACK_DB), self.context.registry)
        except FeedbackLogError as exc:
            handle.close()  # let go of the lock, so this or another worker tries again next time
            log.warning("anomaly monitor: feedback log unavailable (%s); retrying", exc)
            return
        self._lock = handle
        log.info("anomaly monitor: worker %d judges the feedback log", os.getpid())


def anomaly_watch(context: ObserverContext) -> AnomalyWatch:
    """The observer factory ``recdrill serve`` names."""
    return AnomalyWatch(context)
