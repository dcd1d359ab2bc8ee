"""The user-burst rule: the rate and share limits at their boundaries, the flagged span (burst start
and cool-down), batching, late events and episodes."""

from __future__ import annotations

import numpy as np
import pytest

from recdrill.errors import ConfigError
from recdrill.monitor.anomaly.flags import EventBatch, Flag
from recdrill.monitor.anomaly.user_bursts import UserBurstRule


def _events(users: list[str], ts: np.ndarray | list[float]) -> EventBatch:
    return EventBatch.create(users, ["i"] * len(users), ["click"] * len(users), ts)


def _bot(n: int, start: float = 0.0, step: float = 0.1) -> EventBatch:
    return _events(["bot"] * n, start + np.arange(n) * step)


def test_thirty_events_in_ten_seconds_are_allowed_and_the_thirty_first_offends() -> None:
    allowed = UserBurstRule()
    assert not allowed.update(_bot(30)).any()
    assert allowed.flags == [] and allowed.episodes == 0
    detector = UserBurstRule()
    mask = detector.update(_bot(31))
    # The 31st event (t = 3.0) offends; the span reaches back a window and on for a cool-down.
    assert detector.flags == [Flag("user_burst", "bot", -7.0, 13.0, True)]
    assert mask.all() and detector.flagged_users == {"bot"} and detector.episodes == 1


def test_the_window_is_half_open_an_event_exactly_window_s_earlier_does_not_count() -> None:
    detector = UserBurstRule()
    assert not detector.update(_events(["bot"] * 31, np.linspace(0.0, 10.0, 31))).any()


def test_one_batch_and_event_by_event_give_the_same_span() -> None:
    whole = UserBurstRule()
    whole.update(_bot(40))
    single = UserBurstRule()
    masks, flags = [], []
    for t in (np.arange(40) * 0.1).tolist():
        masks.append(bool(single.update(_events(["bot"], [t]))[0]))
        flags += single.flags
    assert masks.index(True) == 30 and all(masks[30:])  # flagged live from the 31st event on
    assert (flags[0].since, flags[-1].until) == (whole.flags[0].since, whole.flags[0].until) == (-7.0, 13.9)
    assert [f.new for f in flags] == [True] + [False] * 9 and single.episodes == whole.episodes == 1


def test_a_user_dominating_a_busy_enough_window_is_flagged_by_share() -> None:
    users = [f"h{i}" for i in range(15)] + ["scraper"] * 6
    ts = np.arange(21) * 0.5
    detector = UserBurstRule(min_window_events=20)
    mask = detector.update(_events(users, ts))
    # Only at t = 10 (window (0, 10]: 14 humans and 6 scraper events) does the share pass 25%.
    assert detector.flags == [Flag("user_burst", "scraper", 0.0, 20.0, True)]
    assert mask.tolist() == [False] * 15 + [True] * 6
    assert not UserBurstRule().update(_events(users, ts)).any()  # below the default floor of 100


def test_the_cool_down_flags_later_events_until_it_ends() -> None:
    detector = UserBurstRule()
    detector.update(_bot(31))  # flagged until 13.0
    assert detector.update(_events(["bot", "human"], [13.0, 13.0])).tolist() == [True, False]
    assert detector.flagged_users == {"bot"}
    assert detector.update(_events(["bot"], [13.5])).tolist() == [False]
    assert detector.flagged_users == frozenset() and detector.book.spans == {}


def test_runs_of_offences_closer_than_two_windows_are_one_span() -> None:
    detector = UserBurstRule()
    ts = np.concatenate([np.arange(31) * 0.1, 20.0 + np.arange(31) * 0.1])  # offences at 3.0 and 23.0
    assert detector.update(_events(["bot"] * 62, ts)).all()
    assert detector.flags == [Flag("user_burst", "bot", -7.0, 33.0, True)] and detector.episodes == 1


def test_bursts_further_apart_are_separate_episodes() -> None:
    detector = UserBurstRule()
    detector.update(_bot(31))
    first = detector.flags
    detector.update(_bot(31, start=100.0))
    assert first == [Flag("user_burst", "bot", -7.0, 13.0, True)]
    assert detector.flags == [Flag("user_burst", "bot", 93.0, 113.0, True)]
    assert detector.episodes == 2


def test_two_bursts_in_one_long_batch_report_two_spans() -> None:
    detector = UserBurstRule()
    ts = np.concatenate([np.arange(31) * 0.1, 100.0 + np.arange(31) * 0.1])
    detector.update(_events(["bot"] * 62, ts))
    assert [(f.since, f.until, f.new) for f in detector.flags] == [(-7.0, 13.0, True), (93.0, 113.0, True)]
    assert detector.episodes == 2


def test_late_events_join_the_window_in_time_order() -> None:
    detector = UserBurstRule()
    detector.update(_bot(15, start=5.0))  # 5.0 .. 6.4
    assert not detector.update(_bot(15, start=0.0)).any()  # 0.0 .. 1.4, arriving late
    assert detector.update(_events(["bot"], [6.5])).tolist() == [True]  # 31 events in (-3.5, 6.5]
    assert detector.flags == [Flag("user_burst", "bot", -3.5, 16.5, True)]


def test_users_are_counted_apart() -> None:
    users = ["a", "b"] * 30  # 60 events in 6 s, 30 each: neither exceeds the limit
    assert not UserBurstRule().update(_events(users, np.arange(60) * 0.1)).any()


def test_an_empty_batch_returns_an_empty_mask_and_clears_flags() -> None:
    detector = UserBurstRule()
    detector.update(_bot(31))
    mask = detector.update(EventBatch.empty())
    assert mask.dtype == np.bool_ and mask.tolist() == [] and detector.flags == []
    assert detector.episodes == 1


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"window_s": -1.0}, "window_s > 0"),
        ({"max_events": 0}, "max_events >= 1"),
        ({"max_share": 0.0}, "0 < max_share <= 1"),
        ({"min_window_events": 0}, r"min_window_events >= 1, got 10.0, 30, 0.25, 0"),
    ],
)
def test_bad_parameters_are_named(params: dict[str, float], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        UserBurstRule(**params)  # type: ignore[arg-type]
