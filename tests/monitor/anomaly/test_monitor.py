"""Anomaly rules on seeded traffic, and the monitor quarantining what they flag in a real feedback log."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import generate_latest

from recdrill.data.pseudonymise import Pseudonymiser
from recdrill.errors import ConfigError, FeedbackLogError
from recdrill.monitor.anomaly.monitor import AnomalyMonitor, EventBatch, ItemClickSpikeRule, UserBurstRule
from recdrill.serving.feedback.export import export_feedback
from recdrill.serving.feedback.log import FeedbackLog
from recdrill.serving.feedback.schema import FeedbackEvent
from recdrill.serving.metrics import ServingMetrics

KINDS = np.array(["view", "click", "click", "cart", "purchase", "view"], dtype=object)
N_USERS, N_ITEMS, RATE = 300, 500, 30.0  # stationary shop: 30 events/s from 300 people


def stationary(seed: int, seconds: float, start: float = 0.0) -> EventBatch:
    """``RATE`` events/s (a Poisson process), users at their own rates (mean 0.1/s, at most 0.25/s),
    items Zipf-popular (the top item draws about 15 % of traffic)."""
    rng = np.random.default_rng(seed)
    n = int(rng.poisson(RATE * seconds))
    weights = np.minimum(rng.gamma(2.0, 1.0, N_USERS), 5.0)
    users = rng.choice(N_USERS, n, p=weights / weights.sum())
    popularity = 1.0 / np.arange(1, N_ITEMS + 1)
    items = rng.choice(N_ITEMS, n, p=popularity / popularity.sum())
    ts = np.sort(rng.uniform(start, start + seconds, n))
    return EventBatch.create(
        np.char.add("u", users.astype(str)), np.char.add("i", items.astype(str)), rng.choice(KINDS, n), ts
    )


def merge(*batches: EventBatch) -> EventBatch:
    order = np.argsort(np.concatenate([b.ts for b in batches]), kind="stable")
    return EventBatch.create(
        *(
            np.concatenate([getattr(b, name) for b in batches])[order]
            for name in ("users", "items", "events", "ts")
        )
    )


def seconds_of(batch: EventBatch, step: float = 1.0) -> Iterator[tuple[np.ndarray, EventBatch]]:
    """The stream cut as a live monitor sees it: one batch per ``step`` of event time."""
    slot = np.floor(batch.ts / step)
    for value in np.unique(slot):
        where = np.flatnonzero(slot == value)
        yield (
            where,
            EventBatch.create(batch.users[where], batch.items[where], batch.events[where], batch.ts[where]),
        )


def run(detector: UserBurstRule | ItemClickSpikeRule, stream: EventBatch) -> tuple[np.ndarray, list]:
    """Feed ``stream`` second by second; returns the union of the masks and every flag reported."""
    flagged = np.zeros(stream.size, dtype=bool)
    flags = []
    for where, batch in seconds_of(stream):
        flagged[where] = detector.update(batch)
        flags += detector.flags
    return flagged, flags


def covered(stream: EventBatch, flags: list, keys: np.ndarray) -> np.ndarray:
    """Events inside a reported flag's span for their key (what the monitor quarantines)."""
    hit = np.zeros(stream.size, dtype=bool)
    for flag in flags:
        hit |= (keys == flag.key) & (stream.ts >= flag.since) & (stream.ts <= flag.until)
    return hit


# --- user bursts ---------------------------------------------------------------------------------


def bot(seconds: float = 20.0, rate: float = 5.0, start: float = 60.0, user: str = "bot") -> EventBatch:
    n = int(seconds * rate)
    return EventBatch.create([user] * n, ["i1"] * n, ["click"] * n, start + np.arange(n) / rate)


def test_a_bot_burst_is_flagged_and_only_its_events() -> None:
    stream = merge(stationary(1, 120.0), bot())
    detector = UserBurstRule()
    flagged, flags = run(detector, stream)
    is_bot = stream.users == "bot"
    # Masks at update time start with the 31st click in 10 s (6 s after the bot began, 5 clicks/s) ...
    assert np.flatnonzero(flagged[is_bot])[0] == 30 and flagged[is_bot][30:].all()
    # ... and the reported span reaches back over the first 30, so every bot event is caught, nothing else.
    caught = flagged | covered(stream, flags, stream.users)
    assert np.array_equal(caught, is_bot)
    assert {f.key for f in flags} == {"bot"} and detector.episodes == 1
    assert flags[0].since == 66.0 - 10.0 and flags[-1].until == 60.0 + 99 / 5 + 10.0
    assert detector.flagged_users == frozenset()  # the stream ends 20 s after the burst: cooled down


def test_the_burst_verdict_does_not_depend_on_batching() -> None:
    stream = merge(stationary(2, 90.0), bot(start=30.0))
    whole = UserBurstRule()
    mask_whole = whole.update(stream)
    _, flags = run(UserBurstRule(), stream)
    assert [(f.since, f.until) for f in whole.flags] == [(flags[0].since, flags[-1].until)]
    assert np.array_equal(mask_whole, stream.users == "bot")


def test_a_user_with_a_large_share_of_quiet_traffic_is_flagged() -> None:
    # 25 events in 10 s stays under the rate limit, but is most of what a quiet shop sees.
    quiet = stationary(3, 60.0)
    quiet = EventBatch.create(quiet.users[::10], quiet.items[::10], quiet.events[::10], quiet.ts[::10])
    stream = merge(quiet, bot(seconds=10.0, rate=2.5, start=40.0, user="scraper"))
    detector = UserBurstRule(min_window_events=20)
    flagged, flags = run(detector, stream)
    assert np.array_equal(flagged | covered(stream, flags, stream.users), stream.users == "scraper")
    assert not run(UserBurstRule(), stream)[0].any()  # the default floor: 100 events in the window


# --- item click spikes ---------------------------------------------------------------------------


def poisoned(start: float = 600.0) -> EventBatch:
    """Three accounts clicking one item, 2 clicks/s between them for a minute."""
    k = np.arange(120)
    users = np.array(["b0", "b1", "b2"], dtype=object)[k % 3]
    return EventBatch.create(users, ["poison"] * 120, ["click"] * 120, start + k / 2)


def trending(seed: int, start: float = 600.0) -> EventBatch:
    """A new item 200 people click once or twice within a minute (a promotion)."""
    rng = np.random.default_rng(seed)
    users = np.repeat(np.arange(1000, 1200), rng.integers(1, 3, 200))
    return EventBatch.create(
        np.char.add("u", users.astype(str)),
        ["promo"] * len(users),
        ["click"] * len(users),
        np.sort(rng.uniform(start, start + 60, len(users))),
    )


def test_a_poisoned_item_is_flagged_and_a_trending_one_is_not() -> None:
    stream = merge(stationary(4, 780.0), poisoned(), trending(4))
    detector = ItemClickSpikeRule()
    flagged, flags = run(detector, stream)
    is_poison = stream.items == "poison"
    assert {f.key for f in flags} == {"poison"} and detector.episodes == 1
    # Flagged at the update holding its 20th click (609.5 s), not before: min_clicks = 20; the span
    # opens with the window judged then (ending at that second's last click), before the attack.
    assert 609.5 <= flags[0].since + 60.0 < 610.0 and np.flatnonzero(flagged[is_poison])[0] == 18
    assert np.array_equal(flagged | covered(stream, flags, stream.items), is_poison)
    assert detector.flagged_items == frozenset()  # 120 s after the attack: the cool-down has passed


def test_no_item_is_flagged_in_the_first_minutes() -> None:
    # Before any rate is known, the rule would judge every item against min_expected alone.
    stream = merge(stationary(5, 300.0), poisoned(start=150.0))
    assert not run(ItemClickSpikeRule(), stream)[0].any()  # min_reference_s = 300 s
    flagged, flags = run(ItemClickSpikeRule(min_reference_s=0), stream)
    assert {f.key for f in flags} == {"poison"} and flagged.sum() > 0  # the same attack, no warm-up


def test_stationary_traffic_raises_no_flags_over_many_seeds() -> None:
    """0 flags in 12 seeds x 15 min of 30 events/s (324,000 events, ~108,000 clicks on Zipf-popular
    items, the top one clicked 1.5 times a second): 0 false alarms of either rule in 3 hours of such
    traffic at the defaults (95 % upper bound on the rate: 1 per hour; the rules' margins are far
    wider: no user comes near 30 events in 10 s, and no popular item has few distinct users)."""
    for seed in range(12):
        stream = stationary(100 + seed, 900.0)
        users, items = UserBurstRule(), ItemClickSpikeRule()
        for _, batch in seconds_of(stream, step=5.0):
            assert not users.update(batch).any() and not items.update(batch).any(), seed
        assert users.episodes == items.episodes == 0


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: UserBurstRule(window_s=0), "window_s > 0"),
        (lambda: UserBurstRule(max_share=1.5), "0 < max_share <= 1"),
        (lambda: ItemClickSpikeRule(p_value=0), "0 < p_value < 1"),
        (lambda: ItemClickSpikeRule(events=()), "some events"),
        (lambda: EventBatch.create(["u"], ["i", "j"], ["click"], [1.0]), "arrays of one length"),
        (lambda: EventBatch.create(["u"], ["i"], ["click"], [np.nan]), "finite timestamps"),
    ],
)
def test_bad_parameters_are_named(make: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make()  # type: ignore[operator]


# --- the monitor on a real feedback log ----------------------------------------------------------

PSEUDONYMS = Pseudonymiser(b"k" * 32)


@pytest.fixture
def feedback(tmp_path: Path) -> Iterator[FeedbackLog]:
    log = FeedbackLog(tmp_path / "feedback.db", pseudonymiser=PSEUDONYMS, sealer=None)
    yield log
    log.close()


def post(log: FeedbackLog, events: list[FeedbackEvent]) -> list[int]:
    """Commit many events at once (group commit), as a busy server does."""

    async def all_of_them() -> list[int]:
        return list(await asyncio.gather(*(log.submit(e) for e in events)))

    return asyncio.run(all_of_them())


def shop_traffic(seed: int, start: float, seconds: float) -> list[FeedbackEvent]:
    """100 people, 10 events/s on 200 items: no rule fires on it."""
    rng = np.random.default_rng(seed)
    n = int(10 * seconds)
    ts = np.sort(rng.uniform(start, start + seconds, n))
    users, items, kinds = rng.integers(0, 100, n), rng.integers(0, 200, n), rng.choice(KINDS, n)
    return [
        FeedbackEvent(f"U-{u}", f"SKU-{i}", str(k), float(t))
        for u, i, k, t in zip(users, items, kinds, ts, strict=True)
    ]


def attacks(start: float) -> list[FeedbackEvent]:
    """A scraper (40 events in 4 s) and three accounts clicking one item 30 times in 30 s."""
    burst = [FeedbackEvent("bot", f"SKU-{i}", "view", start + 10 + i / 10) for i in range(40)]
    poison = [FeedbackEvent(f"B-{k % 3}", "SKU-poison", "click", start + k) for k in range(30)]
    return burst + poison


def quarantine_of(db: Path) -> list[tuple[str, str, str]]:
    """(user, item, reason) of each quarantined event."""
    query = "SELECT f.user_id, f.item_id, q.reason FROM feedback f JOIN quarantine q ON q.feedback_id = f.id"
    with contextlib.closing(sqlite3.connect(db)) as connection:
        return list(connection.execute(query))


def test_the_monitor_quarantines_and_counts_flagged_events(feedback: FeedbackLog, tmp_path: Path) -> None:
    post(feedback, shop_traffic(0, 0.0, 20.0))  # before the monitor started: not judged
    metrics = ServingMetrics()
    # No warm-up for the item rule: the test's log is too short to learn rates (min_expected applies).
    # Event time: the test writes 40 s of traffic in a moment.
    monitor = AnomalyMonitor(
        feedback, metrics.registry, items=ItemClickSpikeRule(min_reference_s=0), clock="ts"
    )
    assert monitor.after_id == 200
    traffic, attack = shop_traffic(1, 1000.0, 40.0), attacks(1000.0)
    events = sorted(traffic + attack, key=lambda e: e.ts)
    first = monitor.poll()  # nothing new yet
    post(feedback, [e for e in events if e.ts < 1020])
    second = monitor.poll()
    post(feedback, [e for e in events if e.ts >= 1020])
    third = monitor.poll()
    assert first.events == 0 and second.events + third.events == len(events) == 470
    bot = PSEUDONYMS.pseudonymise_id("bot")
    caught = quarantine_of(feedback.path)
    assert sorted(caught) == sorted(
        [(bot, f"SKU-{i}", "user_burst") for i in range(40)]
        + [(PSEUDONYMS.pseudonymise_id(f"B-{k % 3}"), "SKU-poison", "item_click_spike") for k in range(30)]
    )
    assert second.anomalies + third.anomalies == 2
    assert monitor.counts == {"user_burst": 1, "item_click_spike": 1}
    assert second.quarantined + third.quarantined == 70
    assert monitor.flagged_users == frozenset()  # the scraper stopped 26 s before the last event
    assert monitor.flagged_items == {"SKU-poison"}  # still in its window and cool-down
    text = generate_latest(metrics.registry).decode()
    assert 'recdrill_anomalies_total{kind="user_burst"} 1.0' in text
    assert 'recdrill_anomalies_total{kind="item_click_spike"} 1.0' in text
    assert "recdrill_feedback_quarantined_total 70.0" in text
    assert monitor.poll().events == 0  # every row is judged once
    # Retraining data: the flagged events are withheld, on request still there.
    assert export_feedback(feedback.path, tmp_path / "train.parquet") == 200 + 470 - 70
    assert export_feedback(feedback.path, tmp_path / "all.parquet", include_quarantined=True) == 670


def test_the_monitor_runs_as_a_background_task(feedback: FeedbackLog) -> None:
    monitor = AnomalyMonitor(feedback)

    def quarantined() -> float:
        return monitor.registry.get_sample_value("recdrill_feedback_quarantined_total") or 0.0

    async def scenario() -> float:
        task = asyncio.create_task(monitor.run(interval_s=0.05))
        try:
            await asyncio.gather(*(feedback.submit(e) for e in attacks(0.0)[:40]))  # the scraper
            for _ in range(600):  # generous: the machine may be busy
                if quarantined() >= 40:
                    break
                await asyncio.sleep(0.05)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        return quarantined()

    assert asyncio.run(scenario()) == 40.0
    assert {reason for _, _, reason in quarantine_of(feedback.path)} == {"user_burst"}


def test_a_failed_quarantine_write_is_retried_and_rows_are_judged_once(tmp_path: Path) -> None:
    feedback = FeedbackLog(
        tmp_path / "feedback.db", pseudonymiser=PSEUDONYMS, sealer=None, busy_timeout_s=0.2
    )
    try:
        monitor = AnomalyMonitor(feedback)
        post(feedback, attacks(0.0)[:40])  # the scraper
        with contextlib.closing(sqlite3.connect(feedback.path, isolation_level=None)) as other:
            other.execute("BEGIN IMMEDIATE")  # another process holding the write lock too long
            with pytest.raises(FeedbackLogError, match="could not quarantine"):
                monitor.poll()
            other.execute("ROLLBACK")
        assert quarantine_of(feedback.path) == []
        again = monitor.poll()
        assert (again.events, again.quarantined) == (0, 40)  # the write, not the rows, was retried
        assert monitor.counts["user_burst"] == 1 and len(quarantine_of(feedback.path)) == 40
        assert monitor.registry.get_sample_value("recdrill_feedback_quarantined_total") == 40.0
    finally:
        feedback.close()


@pytest.mark.parametrize("bad_ts", [float("inf"), float("-inf"), 4_102_444_800.0])  # the last: year 2100
@pytest.mark.parametrize("clock", ["received_at", "ts"])
def test_no_client_timestamp_blinds_the_monitor(tmp_path: Path, bad_ts: float, clock: str) -> None:
    """A non-finite or far-future ``ts`` (stored before the API and the log refused them, or written
    by another tool) never breaks a pass, and a 60-event bot burst after it is still quarantined."""
    feedback = FeedbackLog(tmp_path / "feedback.db", pseudonymiser=PSEUDONYMS, sealer=None)
    try:
        monitor = AnomalyMonitor(feedback, clock=clock)  # type: ignore[arg-type]
        now = time.time()
        with contextlib.closing(sqlite3.connect(feedback.path)) as other, other:
            other.execute(
                "INSERT INTO feedback (user_id, item_id, event, ts, received_at) VALUES (?, ?, ?, ?, ?)",
                ("mallory", "SKU-1", "click", bad_ts, now),
            )
        burst = [FeedbackEvent("bot", f"SKU-{i}", "click", now + i / 10) for i in range(60)]
        post(feedback, burst)
        result = monitor.poll()
        assert result.events == 61 and result.flagged == 60
        reasons = [reason for user, _, reason in quarantine_of(feedback.path)]
        assert reasons.count("user_burst") == 60
        unjudged = 1 if clock == "ts" else 0  # receive time places every row; event time not that one
        assert reasons.count("unjudgeable") == unjudged
        assert monitor.registry.get_sample_value("recdrill_anomaly_unjudged_total") == unjudged
        assert monitor.poll().events == 0  # the pass moved on
    finally:
        feedback.close()


def test_an_unknown_clock_is_named(tmp_path: Path) -> None:
    feedback = FeedbackLog(tmp_path / "feedback.db", pseudonymiser=PSEUDONYMS, sealer=None)
    try:
        with pytest.raises(ConfigError, match="unknown clock 'wall'"):
            AnomalyMonitor(feedback, clock="wall")  # type: ignore[arg-type]
    finally:
        feedback.close()
