"""The pacer: on time a request goes, too late or over the in-flight limit it is skipped and counted."""

from __future__ import annotations

import asyncio

import pytest

from recdrill.drills.pacing import YIELD_EVERY, Pacer, in_flight_limit


class Clock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_request_within_the_slack_goes_and_a_later_one_is_skipped() -> None:
    pacer = Pacer(slack_s=0.5, clock=Clock(100.0))

    async def decide() -> list[bool]:
        return [await pacer.wait(due) for due in (100.0, 99.6, 99.5, 99.4, 0.0)]

    assert asyncio.run(decide()) == [True, True, True, False, False]
    assert pacer.counts() == {"sent": 3, "skipped_late": 2, "skipped_busy": 0}
    assert pacer.skipped == 2


def test_a_request_due_later_waits_for_its_time(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock(0.0)
    slept: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(delay: float) -> None:  # the schedule's clock advances as the pacer sleeps
        slept.append(delay)
        clock.now += delay
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", sleep)
    pacer = Pacer(clock=clock)
    assert asyncio.run(pacer.wait(2.0, poll_s=0.5)) is True
    assert slept == [0.5, 0.5, 0.5, 0.5] and pacer.sent == 1


def test_a_stop_seen_while_waiting_sends_nothing_and_counts_nothing() -> None:
    pacer = Pacer(clock=Clock(0.0))
    assert asyncio.run(pacer.wait(10.0, stopped=lambda: True, poll_s=0.01)) is False
    assert pacer.counts() == {"sent": 0, "skipped_late": 0, "skipped_busy": 0}


def test_requests_over_the_in_flight_limit_are_skipped_until_one_lands() -> None:
    pacer = Pacer(max_in_flight=2, clock=Clock(5.0))

    async def scenario() -> list[bool]:
        release = asyncio.Event()

        async def request() -> None:
            await release.wait()

        decisions = []
        tasks = []
        for _ in range(3):
            go = await pacer.wait(5.0)
            decisions.append(go)
            if go:
                tasks.append(pacer.launch(request()))
        assert pacer.in_flight == 2
        release.set()
        await asyncio.gather(*tasks)
        decisions.append(await pacer.wait(5.0))
        return decisions

    assert asyncio.run(scenario()) == [True, True, False, True]
    assert pacer.counts() == {"sent": 3, "skipped_late": 0, "skipped_busy": 1} and pacer.in_flight == 0


def test_a_long_run_of_skips_still_lets_the_event_loop_run() -> None:
    pacer = Pacer(clock=Clock(1000.0))
    ticks = 0

    async def scenario() -> None:
        nonlocal ticks

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        for _ in range(10 * YIELD_EVERY):
            assert not await pacer.wait(0.0)
        task.cancel()

    asyncio.run(scenario())
    assert pacer.late == 10 * YIELD_EVERY and ticks >= 10


@pytest.mark.parametrize(
    ("rate", "timeout_s", "attempts", "expected"),
    [(30, 2.0, 2, 172), (1, 1.0, 1, 32), (2000, 2.0, 1, 512), (20, 6.0, 2, 310)],
)
def test_the_in_flight_limit_covers_every_request_waiting_out_its_timeouts(
    rate: float, timeout_s: float, attempts: int, expected: int
) -> None:
    assert in_flight_limit(rate, timeout_s, attempts) == expected
