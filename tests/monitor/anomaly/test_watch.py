"""The anomaly observer of a server's workers: one judge at a time under the state folder's lock,
starting at the log's last row, counting on the worker's registry, surviving an unreadable log."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from recdrill.contract import ANOMALY_LOCK, FEEDBACK_DB
from recdrill.data.pseudonymise import Pseudonymiser
from recdrill.monitor.anomaly.monitor import INTERVAL_S
from recdrill.monitor.anomaly.watch import AnomalyWatch, anomaly_watch
from recdrill.serving.feedback.log import FeedbackLog
from recdrill.serving.feedback.schema import FeedbackEvent
from recdrill.serving.observers import ObserverContext, ServedModels

FAST_S = 0.02  # the watch's poll interval in these tests
PATIENCE = 1500  # polls of FAST_S before a scenario gives up (generous: the machine may be busy)


def _served() -> ServedModels:
    raise AssertionError("the anomaly watch never needs the served models")


def _context(state_dir: Path) -> ObserverContext:
    return ObserverContext(CollectorRegistry(), state_dir, _served)


def _log(state_dir: Path) -> FeedbackLog:
    return FeedbackLog(state_dir / FEEDBACK_DB, pseudonymiser=Pseudonymiser(b"k" * 32), sealer=None)


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    """A state folder whose feedback log already holds 5 events, as a running server's does."""
    log = _log(tmp_path)
    for i in range(5):
        log.append(FeedbackEvent(f"U-{i}", "SKU-1", "view", 10.0 + i))
    log.close()
    yield tmp_path


def _burst(start: float) -> list[FeedbackEvent]:
    return [FeedbackEvent("bot", f"SKU-{i}", "click", start + i / 10) for i in range(40)]


async def _until(predicate: Callable[[], bool]) -> bool:
    for _ in range(PATIENCE):
        if predicate():
            return True
        await asyncio.sleep(FAST_S)
    return predicate()


async def _running(watches: list[AnomalyWatch], body: Callable[[], Awaitable[None]]) -> None:
    """Run the watches' loops while ``body`` runs; then cancel and close them, as a server stops."""
    tasks = [asyncio.create_task(w.run()) for w in watches]
    try:
        await body()
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for watch in watches:
            watch.close()


def _quarantined(watch: AnomalyWatch) -> float:
    return watch.context.registry.get_sample_value("recdrill_feedback_quarantined_total") or 0.0


def test_the_factory_builds_an_idle_watch_on_the_workers_context(tmp_path: Path) -> None:
    context = _context(tmp_path)
    watch = anomaly_watch(context)
    assert isinstance(watch, AnomalyWatch)
    assert watch.context is context and watch.interval_s == INTERVAL_S == 1.0
    assert not watch.judging and watch.monitor is None
    assert not (tmp_path / ANOMALY_LOCK).exists()  # nothing is taken before the loop runs


def test_one_worker_judges_and_another_takes_over_when_it_lets_go(state_dir: Path) -> None:
    first = AnomalyWatch(_context(state_dir), interval_s=FAST_S)
    second = AnomalyWatch(_context(state_dir), interval_s=FAST_S)

    async def scenario() -> None:
        async def both() -> None:
            assert await _until(lambda: first.judging or second.judging)
            for _ in range(10):  # the other keeps trying, and keeps failing
                await asyncio.sleep(FAST_S)
                assert first.judging != second.judging
            assert (state_dir / ANOMALY_LOCK).exists()

        await _running([first, second], both)
        assert not first.judging and not second.judging  # close let go of the lock

        third = AnomalyWatch(_context(state_dir), interval_s=FAST_S)

        async def alone() -> None:
            assert await _until(lambda: third.judging)

        await _running([third], alone)

    asyncio.run(scenario())


def test_the_judge_starts_at_the_last_row_and_quarantines_a_burst_on_the_workers_registry(
    state_dir: Path,
) -> None:
    watch = AnomalyWatch(_context(state_dir), interval_s=FAST_S)
    registry = watch.context.registry
    log = _log(state_dir)

    async def scenario() -> None:
        assert await _until(lambda: watch.judging)
        assert watch.monitor is not None and watch.monitor.after_id == 5  # earlier rows are not judged
        assert registry.get_sample_value("recdrill_anomalies_total", {"kind": "user_burst"}) == 0.0
        await asyncio.gather(*(log.submit(e) for e in _burst(100.0)))
        assert await _until(lambda: _quarantined(watch) >= 40)

    try:
        asyncio.run(_running([watch], scenario))
    finally:
        log.close()
    assert _quarantined(watch) == 40.0
    assert registry.get_sample_value("recdrill_anomalies_total", {"kind": "user_burst"}) == 1.0


def test_an_unreadable_log_is_logged_and_judging_resumes_when_it_is_back(
    state_dir: Path, tmp_path_factory: pytest.TempPathFactory, caplog: pytest.LogCaptureFixture
) -> None:
    aside = tmp_path_factory.mktemp("aside")
    files = [p for p in state_dir.iterdir() if p.name.startswith(FEEDBACK_DB)]
    watch = AnomalyWatch(_context(state_dir), interval_s=FAST_S)
    caplog.set_level(logging.WARNING, logger="recdrill.monitor.anomaly.watch")

    async def scenario() -> None:
        assert await _until(lambda: watch.judging)
        for path in files:
            shutil.move(path, aside / path.name)
        assert await _until(lambda: "feedback log unavailable" in caplog.text)
        (state_dir / FEEDBACK_DB).unlink(missing_ok=True)  # the empty file the failed read left
        for path in files:
            shutil.move(aside / path.name, path)
        log = _log(state_dir)
        try:
            await asyncio.gather(*(log.submit(e) for e in _burst(200.0)))
            assert await _until(lambda: _quarantined(watch) >= 40)
        finally:
            log.close()

    asyncio.run(_running([watch], scenario))
    assert watch.judging is False  # closed at the end
    assert _quarantined(watch) == 40.0
    assert any("retrying" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


def test_a_log_that_cannot_be_read_at_start_leaves_the_lock_free(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import fcntl

    watch = AnomalyWatch(_context(tmp_path), interval_s=FAST_S)  # no feedback log in this folder
    caplog.set_level(logging.WARNING, logger="recdrill.monitor.anomaly.watch")

    async def scenario() -> None:
        assert await _until(lambda: "feedback log unavailable" in caplog.text)
        assert not watch.judging
        with (tmp_path / ANOMALY_LOCK).open("ab") as other:  # another worker could take over
            fcntl.flock(other.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(other.fileno(), fcntl.LOCK_UN)

    asyncio.run(_running([watch], scenario))
