"""The feedback audit against a scripted target: posts, retries, and the lookup of lost events."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest

from recdrill.drills.feedback_audit import LOOKUP_BATCH, FeedbackAudit, PostedEvent
from recdrill.drills.replayer import ReplayPlan, arrival_times
from tests.drills.test_target import KEY, FakeDeployment, closed_port_url

PLAN = ReplayPlan(("u0", "u1", "u2"), ("i0", "i1", "i2"))


@pytest.fixture
def fake() -> Iterator[FakeDeployment]:
    with FakeDeployment() as running:
        yield running


def post_for(audit: FeedbackAudit, url: str, duration_s: float) -> None:
    async def go() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=5.0) as client:
            await audit.run(client, duration_s, time.monotonic())

    asyncio.run(go())


def admin(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"X-API-Key": KEY}, timeout=5.0)


def test_events_are_posted_on_the_seeded_schedule_with_their_own_ids(fake: FakeDeployment) -> None:
    audit = FeedbackAudit(PLAN, rate=25.0, seed=2, run_id="run1")
    post_for(audit, fake.url, 0.6)
    expected = arrival_times(25.0, 0.6, 2 + 7)
    assert len(audit.posted) == len(expected) > 0
    assert sorted(p.t for p in audit.posted) == pytest.approx(expected.tolist())
    assert {p.event_id for p in audit.posted} == {f"drill-run1-{n}" for n in range(len(expected))}
    bodies = fake.seen("POST", "/v1/feedback")
    assert all(
        b["event"] == "click" and PLAN.targets[PLAN.user_ids.index(b["user_id"])] == b["item_id"]
        for b in bodies
    )
    assert audit.summary() == {
        "posted": len(expected),
        "acknowledged": len(expected),
        "refused": 0,
        "unanswered": 0,
        "skipped": 0,
        "lost": None,  # not checked yet
        "check_error": None,
    }


def test_no_rate_posts_nothing(fake: FakeDeployment) -> None:
    audit = FeedbackAudit(PLAN, rate=0.0)
    post_for(audit, fake.url, 5.0)
    assert audit.posted == [] and fake.seen("POST", "/v1/feedback") == []


def test_a_post_without_an_answer_is_retried_once_under_the_same_id(fake: FakeDeployment) -> None:
    audit = FeedbackAudit(PLAN, rate=30.0, seed=0, run_id="r")
    fake.hang_up_once = {"drill-r-0"}
    post_for(audit, fake.url, 0.5)
    sent = [b["event_id"] for b in fake.seen("POST", "/v1/feedback")]
    assert sent.count("drill-r-0") == 2
    assert all(sent.count(i) == 1 for i in set(sent) - {"drill-r-0"})
    first = next(p for p in audit.posted if p.event_id == "drill-r-0")
    assert first.status == 200  # the retry got through


def test_posts_that_never_get_an_answer_are_unanswered() -> None:
    audit = FeedbackAudit(PLAN, rate=20.0, seed=1)
    post_for(audit, closed_port_url(), 0.5)
    assert audit.posted and all(p.status == 0 for p in audit.posted)
    assert audit.summary()["unanswered"] == len(audit.posted) and audit.acknowledged == []


def test_verify_finds_the_acknowledged_events_the_log_lost(fake: FakeDeployment) -> None:
    audit = FeedbackAudit(PLAN, rate=1.0)
    audit.posted = [
        PostedEvent(1.0, "kept", 200),
        PostedEvent(4.5, "lost-in-fault", 200),
        PostedEvent(7.0, "lost-later", 200),
        PostedEvent(5.0, "refused", 503),
        PostedEvent(6.0, "unanswered", 0),
    ]
    fake.feedback = {"kept"}
    with admin(fake.url) as client:
        audit.verify(client)
    assert audit.missing == {"lost-in-fault", "lost-later"}
    assert fake.seen("POST", "/admin/feedback/lookup") == [
        {"event_ids": ["kept", "lost-in-fault", "lost-later"]}  # only what was acknowledged
    ]
    assert audit.lost_between(4.0, 6.0) == 1
    assert audit.lost_between(0.0, 10.0) == 2
    assert audit.lost_between(7.0, 7.0) == 0  # [start, end)
    assert audit.summary() == {
        "posted": 5,
        "acknowledged": 3,
        "refused": 1,
        "unanswered": 1,
        "skipped": 0,
        "lost": 2,
        "check_error": None,
    }


def test_a_lookup_is_sent_in_batches(fake: FakeDeployment) -> None:
    audit = FeedbackAudit(PLAN, rate=1.0)
    audit.posted = [PostedEvent(0.0, f"e{n}", 200) for n in range(LOOKUP_BATCH + 1)]
    with admin(fake.url) as client:
        audit.verify(client)
    assert [len(b["event_ids"]) for b in fake.seen("POST", "/admin/feedback/lookup")] == [LOOKUP_BATCH, 1]
    assert audit.missing is not None and len(audit.missing) == LOOKUP_BATCH + 1


def test_a_lookup_that_fails_leaves_the_loss_unknown(fake: FakeDeployment) -> None:
    audit = FeedbackAudit(PLAN, rate=1.0)
    audit.posted = [PostedEvent(0.0, "e0", 200)]
    fake.status[("POST", "/admin/feedback/lookup")] = 500
    with admin(fake.url) as client:
        audit.verify(client)
    assert audit.missing is None and audit.lost_between(0.0, 10.0) is None
    assert audit.check_error is not None and audit.check_error.startswith("lookup failed: HTTP 500 ")
    unreachable = FeedbackAudit(PLAN, rate=1.0, posted=[PostedEvent(0.0, "e0", 200)])
    with admin(closed_port_url()) as client:
        unreachable.verify(client)
    assert unreachable.check_error is not None
    assert unreachable.check_error.startswith("lookup failed: ConnectError: ")
    assert unreachable.summary()["lost"] is None


def test_with_nothing_acknowledged_nothing_is_looked_up_or_lost(fake: FakeDeployment) -> None:
    audit = FeedbackAudit(PLAN, rate=1.0, posted=[PostedEvent(0.0, "e0", 503)])
    with admin(fake.url) as client:
        audit.verify(client)
    assert audit.missing == set() and audit.lost_between(0.0, 1.0) == 0
    assert fake.seen("POST", "/admin/feedback/lookup") == []
