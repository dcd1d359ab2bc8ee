"""Anomalies in traffic and feedback, and keeping the events involved out of retraining data.

Two streaming rules, River-style (``update(batch)`` returns which of the batch's events are flagged;
then read ``flagged_users`` / ``flagged_items``, ``flags`` and ``episodes``), vectorised over a batch
of events (:class:`EventBatch`: arrays of users, items, event kinds and event times):

``user_burst`` (:class:`UserBurstRule`): one user sending events faster than a person can.
    An event offends when its user sent more than ``max_events`` = 30 events in the trailing
    ``window_s`` = 10 s (a person browsing clicks at most about once a second, so 3/s sustained for
    10 s is a script), or more than ``max_share`` = 25 % of all events in that window once it holds
    at least ``min_window_events`` = 100 (at low traffic, a bot that stays under the rate limit
    still stands out by its share; the floor keeps a quiet shop with few visitors from flagging its
    busiest one). The user is flagged from 10 s before their first offending event (the burst's
    start) to 10 s after their last (cool-down).

``item_click_spike`` (:class:`ItemClickSpikeRule`): poisoned feedback, many clicks on one item
    from few accounts. An item is flagged when its clicks in the last ``window_s`` = 60 s number at
    least ``min_clicks`` = 20, are improbable under its usual rate (Poisson upper tail
    ``p < p_value`` = 1e-6, the rate an exponentially weighted click rate with a 1 h time constant,
    at least ``min_expected`` = 1 click per window for unseen items), and come from few distinct
    users (distinct users / clicks below ``max_distinct_share`` = 0.3). The last test is what keeps
    a genuinely trending item (a promotion, a new product: many people each clicking once or twice)
    from being flagged, however far above its usual rate it is. 1e-6 keeps the false-alarm rate of
    the Poisson test negligible across thousands of items evaluated every few seconds; 20 clicks
    makes a handful of clicks on a rarely clicked item no spike. Nothing is flagged during the
    first 5 minutes of the stream (``min_reference_s``), while no rate is known yet. Flagged for
    the anomalous window plus 60 s of cool-down.

Both judge the time of a batch's events, never the wall clock. By default (``clock="ts"``) that
is the event time a client sent, so a replay gives the same flags as live traffic and the item rule
can learn its reference rate from an event's history; but no client value may move the clock: the
API refuses a ``ts`` outside its window (``recdrill.serving.event_time``), and here a row whose
time is not finite, or lies more than ``FUTURE_SLACK_S`` past its arrival (one year-2100 ``ts``
once moved the user rule's clock so far ahead that no burst after it was caught), is quarantined
as ``unjudgeable``, counted in ``recdrill_anomaly_unjudged_total`` and skipped: one bad row never
stops a pass. ``clock="received_at"`` judges the server's receive time instead, which no client
can shape at all (a bot spreading its claimed times into the past cannot hide a burst from it),
at the cost of a 5-minute warm-up of the item rule after every start. How the stream is cut into
batches does not change the user rule's verdicts (it counts each event's own window) and moves the
item rule's only by its evaluation step (5 s).

:class:`AnomalyMonitor` glues them to the feedback log: every call to :meth:`AnomalyMonitor.poll`
reads the rows committed since the last one it saw (row id order: this also sees the rows of every
worker process writing the file), runs both rules, quarantines the flagged events (and, through the
flags' spans, the earlier events of the same burst) in the log, so ``recdrill feedback export``
leaves them out, and counts ``recdrill_anomalies_total{kind}`` (episodes) and
``recdrill_feedback_quarantined_total`` (events).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from prometheus_client import CollectorRegistry, Counter

from recdrill.errors import FeedbackLogError
from recdrill.monitor.anomaly.flags import EventBatch, Flag, FlagBook
from recdrill.monitor.anomaly.item_spikes import ItemClickSpikeRule
from recdrill.monitor.anomaly.user_bursts import UserBurstRule
from recdrill.serving.feedback.quarantine import Clock, Quarantine, check_clock
from recdrill.serving.feedback.reader import READ_LIMIT, FeedbackReader
from recdrill.serving.feedback.schema import StoredRow

__all__ = [
    "AnomalyMonitor",
    "EventBatch",
    "Flag",
    "FlagBook",
    "ItemClickSpikeRule",
    "PollResult",
    "UserBurstRule",
]

log = logging.getLogger(__name__)

KINDS = (UserBurstRule.kind, ItemClickSpikeRule.kind)
INTERVAL_S = 1.0
# Judged batches remembered (event time) to bound quarantine scans: far beyond any flag's reach back.
HISTORY_S = 600.0
UNJUDGEABLE = "unjudgeable"  # the quarantine reason of rows no rule can place in time
FUTURE_SLACK_S = 300.0  # with clock="ts": how far an event's time may lie past its arrival


@dataclass(frozen=True)
class PollResult:
    """What one :meth:`AnomalyMonitor.poll` did: events read, events flagged, events quarantined
    (flagged ones and earlier ones of the same bursts, each counted once), episodes begun."""

    events: int
    flagged: int
    quarantined: int
    anomalies: int


class AnomalyMonitor:
    """Reads new feedback, runs both anomaly rules and quarantines what they flag.

    ``after_id`` is the last row already judged: by default the log's last row now, so a monitor
    starting beside a running server judges new traffic only (pass 0 to replay the whole log).
    Metrics go to ``registry`` (e.g. the serving app's ``ServingMetrics().registry``), or to a
    registry of the monitor's own.

    Example:
        >>> import tempfile, pathlib
        >>> from recdrill.data.pseudonymise import Pseudonymiser
        >>> from recdrill.serving.feedback import FeedbackEvent, FeedbackLog
        >>> feedback = FeedbackLog(pathlib.Path(tempfile.mkdtemp()) / "feedback.db",
        ...                        pseudonymiser=Pseudonymiser(b"k" * 32), sealer=None)
        >>> monitor = AnomalyMonitor(feedback)
        >>> for i in range(40):  # 40 clicks in 4 s from one user
        ...     _ = feedback.append(FeedbackEvent("bot", f"sku-{i}", "click", 100 + i / 10))
        >>> monitor.poll()
        PollResult(events=40, flagged=40, quarantined=40, anomalies=1)
        >>> feedback.close()
    """

    def __init__(
        self,
        feedback: FeedbackReader,
        registry: CollectorRegistry | None = None,
        *,
        quarantine: Quarantine | None = None,
        users: UserBurstRule | None = None,
        items: ItemClickSpikeRule | None = None,
        after_id: int | None = None,
        read_limit: int = READ_LIMIT,
        clock: Clock = "ts",
    ) -> None:
        self.clock = check_clock(clock)
        self.feedback = feedback
        self.quarantine = quarantine or Quarantine(
            feedback.path, busy_timeout_s=feedback.busy_timeout_s, pseudonymiser=feedback.pseudonymiser
        )
        self.users = users or UserBurstRule()
        self.items = items or ItemClickSpikeRule()
        self.after_id = feedback.last_id() if after_id is None else after_id
        self.read_limit = read_limit
        self._batches: deque[tuple[int, float]] = deque()  # (first row id, latest event time)
        self._newest = -np.inf
        self._pending: deque[Callable[[], int]] = deque()  # quarantine writes not yet committed
        self.registry = registry or CollectorRegistry()
        self.anomalies = Counter(
            "recdrill_anomalies",
            "Anomaly episodes found in feedback traffic, by kind (user_burst, item_click_spike).",
            ["kind"],
            registry=self.registry,
        )
        self.quarantined = Counter(
            "recdrill_feedback_quarantined",
            "Feedback events quarantined (kept out of retraining data) by the anomaly monitor.",
            registry=self.registry,
        )
        self.unjudged = Counter(
            "recdrill_anomaly_unjudged",
            "Feedback events the anomaly monitor could not place in time (quarantined, skipped).",
            registry=self.registry,
        )
        for kind in KINDS:  # both series exist (at 0) from the start: alerts see no gaps
            self.anomalies.labels(kind)

    @property
    def counts(self) -> dict[str, int]:
        """Episodes found so far, by kind."""
        return {self.users.kind: self.users.episodes, self.items.kind: self.items.episodes}

    @property
    def flagged_users(self) -> frozenset[str]:
        """User pseudonyms flagged now."""
        return self.users.flagged_users

    @property
    def flagged_items(self) -> frozenset[str]:
        """Items flagged now."""
        return self.items.flagged_items

    def poll(self) -> PollResult:
        """Judge every row committed since the last poll, in pieces of ``read_limit`` rows.

        Rows are judged once: the detectors have counted them, so a quarantine write that fails
        (a busy or full disk) is kept and retried first by the next poll, rather than the rows.

        Raises:
            FeedbackLogError: the log could not be read or written.
        """
        events = flagged = anomalies = 0
        quarantined = self._flush()  # what an earlier poll could not write
        while rows := self.feedback.read_after(self.after_id, self.read_limit):
            ids, batch = self._batch(rows)
            if batch.size:
                flagged += self._judge(ids, batch)
                anomalies += self._count_anomalies()
            events += len(rows)
            self.after_id = int(rows[-1][0])
            quarantined += self._flush()
            if len(rows) < self.read_limit:
                break
        return PollResult(events, flagged, quarantined, anomalies)

    async def run(self, interval_s: float = INTERVAL_S) -> None:
        """Poll every ``interval_s`` until cancelled (a background task of the server); the
        database work runs in a thread, so the event loop keeps serving."""
        while True:
            try:
                await asyncio.to_thread(self.poll)
            except FeedbackLogError as exc:  # a busy or failing disk: try again next time
                log.warning("anomaly monitor: %s", exc)
            await asyncio.sleep(interval_s)

    def _batch(self, rows: list[StoredRow]) -> tuple[NDArray[np.int64], EventBatch]:
        """The judgeable rows as a batch on the monitor's clock; the others are queued for the
        quarantine and counted."""
        row_ids, users, items, kinds, ts, received = zip(*rows, strict=True)
        ids = np.asarray(row_ids, dtype=np.int64)
        claimed, arrived = np.asarray(ts, dtype=np.float64), np.asarray(received, dtype=np.float64)
        times = arrived if self.clock == "received_at" else claimed
        judgeable = np.isfinite(times)
        if self.clock == "ts":
            with np.errstate(invalid="ignore"):
                judgeable &= claimed <= arrived + FUTURE_SLACK_S
        if not judgeable.all():
            skipped = ids[~judgeable].tolist()
            self.unjudged.inc(len(skipped))
            log.warning(
                "anomaly monitor: %d feedback rows cannot be placed in time: quarantined", len(skipped)
            )
            self._pending.append(functools.partial(self.quarantine.rows, skipped, UNJUDGEABLE))
        keep = np.flatnonzero(judgeable)
        user_ids, item_ids, events = (np.asarray(c, dtype=object)[keep] for c in (users, items, kinds))
        return ids[keep], EventBatch.create(user_ids, item_ids, events, times[keep])

    def _judge(self, ids: NDArray[np.int64], batch: EventBatch) -> int:
        """Run both rules on a batch and queue its quarantine writes; returns events flagged."""
        self._remember(int(ids[0]), float(batch.ts.max()))
        by_user, by_item = self.users.update(batch), self.items.update(batch)
        for kind, mask in ((self.users.kind, by_user), (self.items.kind, by_item)):
            if mask.any():
                self._pending.append(functools.partial(self.quarantine.rows, ids[mask].tolist(), kind))
        for flag in self.users.flags:  # the burst's earlier events, judged in earlier batches
            self._pending.append(self._span(flag, user=flag.key))
        for flag in self.items.flags:
            self._pending.extend(self._span(flag, item=flag.key, event=event) for event in self.items.events)
        return int((by_user | by_item).sum())

    def _span(
        self, flag: Flag, *, user: str | None = None, item: str | None = None, event: str | None = None
    ) -> Callable[[], int]:
        """The write that quarantines a flag's whole span (rows from recent batches only)."""
        return functools.partial(
            self.quarantine.where,
            reason=flag.kind,
            user_pseudonym=user,
            item_id=item,
            event=event,
            since=flag.since,
            until=flag.until,
            from_id=self._from_id(flag.since),
            clock=self.clock,
        )

    def _count_anomalies(self) -> int:
        """Count the episodes the last batch began."""
        begun = 0
        for flag in (*self.users.flags, *self.items.flags):
            if flag.new:
                self.anomalies.labels(flag.kind).inc()
                begun += 1
        return begun

    def _flush(self) -> int:
        """Commit the queued quarantine writes in order; a failure leaves it and the rest queued."""
        written = 0
        while self._pending:
            newly = self._pending[0]()
            self._pending.popleft()
            written += newly
            self.quarantined.inc(newly)
        return written

    def _remember(self, first_id: int, latest: float) -> None:
        self._batches.append((first_id, latest))
        self._newest = max(self._newest, latest)
        while len(self._batches) > 1 and self._batches[0][1] < self._newest - HISTORY_S:
            self._batches.popleft()

    def _from_id(self, since: float) -> int:
        """Where rows with events at or after ``since`` can start: the first row of the earliest
        judged batch whose latest event is not older (the log has no index on time: this bounds
        the quarantine's scan to recent rows)."""
        return next((first for first, latest in self._batches if latest >= since), self._batches[-1][0])
