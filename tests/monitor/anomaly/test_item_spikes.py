"""The item click-spike rule: min_clicks, the distinct-user share, counted event kinds, the warm-up,
a learned click rate, the span and its cool-down, and batching."""

from __future__ import annotations

import numpy as np
import pytest

from recdrill.errors import ConfigError
from recdrill.monitor.anomaly.flags import EventBatch
from recdrill.monitor.anomaly.item_spikes import ItemClickSpikeRule


def _clicks(users: list[str] | np.ndarray, item: str, ts: np.ndarray, event: str = "click") -> EventBatch:
    return EventBatch.create(list(users), [item] * len(ts), [event] * len(ts), ts)


def test_twenty_clicks_from_one_user_are_a_spike_and_nineteen_are_not() -> None:
    quiet = ItemClickSpikeRule(min_reference_s=0)
    assert not quiet.update(_clicks(["b"] * 19, "x", 100 + np.arange(19) * 0.1)).any()
    assert quiet.episodes == 0
    detector = ItemClickSpikeRule(min_reference_s=0)
    mask = detector.update(_clicks(["b"] * 20, "x", 100 + np.arange(20) * 0.1))
    assert mask.all() and detector.flagged_items == {"x"} and detector.episodes == 1
    [flag] = detector.flags
    # Judged at the last click (101.9): the span opens with its window and runs on for one more.
    assert (flag.kind, flag.key, flag.new) == ("item_click_spike", "x", True)
    assert flag.since == pytest.approx(101.9 - 60.0) and flag.until == pytest.approx(101.9 + 60.0)


@pytest.mark.parametrize(("n_users", "flagged"), [(5, True), (6, False), (20, False)])
def test_clicks_from_many_distinct_users_are_no_spike(n_users: int, flagged: bool) -> None:
    # 20 clicks: 5 users are a share of 0.25 < 0.3; 6 users are 0.3, not below it.
    users = [f"u{i % n_users}" for i in range(20)]
    detector = ItemClickSpikeRule(min_reference_s=0)
    assert bool(detector.update(_clicks(users, "x", 100 + np.arange(20) * 0.1)).any()) is flagged


def test_only_the_counted_event_kinds_make_or_are_part_of_a_spike() -> None:
    views = _clicks(["b"] * 40, "x", 100 + np.arange(40) * 0.1, event="view")
    assert not ItemClickSpikeRule(min_reference_s=0).update(views).any()
    counting_views = ItemClickSpikeRule(min_reference_s=0, events=("click", "view"))
    assert counting_views.update(views).all()
    mixed = EventBatch.create(["b"] * 21, ["x"] * 21, ["click"] * 20 + ["view"], 100 + np.arange(21) * 0.1)
    assert ItemClickSpikeRule(min_reference_s=0).update(mixed).tolist() == [True] * 20 + [False]


def test_nothing_is_flagged_in_the_first_five_minutes_of_the_stream() -> None:
    detector = ItemClickSpikeRule()
    assert not detector.update(_clicks(["b"] * 100, "x", 100 + np.arange(100) * 0.1)).any()
    assert detector.episodes == 0
    started = ItemClickSpikeRule()
    started.update(_clicks(["h"], "y", np.array([0.0])))  # the stream began at 0
    assert started.update(_clicks(["b"] * 100, "x", 300 + np.arange(100) * 0.1)).all()
    assert started.episodes == 1


def test_an_items_usual_rate_is_learnt_so_only_a_jump_above_it_is_a_spike() -> None:
    detector = ItemClickSpikeRule()
    users = np.array(["s0", "s1"])
    ts = np.arange(900.0)  # two users, one click a second between them, for 15 minutes
    for start in range(0, 900, 5):
        part = ts[(ts >= start) & (ts < start + 5)]
        assert not detector.update(_clicks(users[part.astype(int) % 2], "steady", part)).any()
    assert detector.episodes == 0  # 60 clicks a minute from 2 users is this item's normal
    burst = 900 + np.arange(180) / 3  # three times the rate
    flagged = []
    for start in range(900, 960, 5):
        part = burst[(burst >= start) & (burst < start + 5)]
        flagged.append(int(detector.update(_clicks(users[np.arange(len(part)) % 2], "steady", part)).sum()))
    assert flagged == [0, 0, 0, 0] + [15] * 8 and detector.episodes == 1
    # Without that history, the same normal minute on a fresh item is a spike.
    fresh = ItemClickSpikeRule(min_reference_s=0)
    assert fresh.update(_clicks(["s0", "s1"] * 30, "fresh", np.arange(60.0))).all()


def test_the_cool_down_ends_and_the_item_is_forgotten() -> None:
    detector = ItemClickSpikeRule(min_reference_s=0)
    detector.update(_clicks(["b"] * 20, "x", 100 + np.arange(20) * 0.1))  # flagged until 161.9
    assert detector.update(_clicks(["h"], "x", np.array([161.0]))).tolist() == [True]
    assert detector.flagged_items == {"x"}
    assert detector.update(_clicks(["h"], "other", np.array([162.0]))).tolist() == [False]
    assert detector.flagged_items == frozenset() and detector.book.spans == {}
    assert detector.episodes == 1


def test_a_long_batch_is_judged_in_steps_like_a_live_stream() -> None:
    rng = np.random.default_rng(3)
    n = 6000
    ts = np.concatenate([np.sort(rng.uniform(0, 600, n)), 500 + np.arange(60) / 2.0])
    users = np.concatenate([rng.integers(0, 300, n).astype(str), np.array(["b0", "b1", "b2"] * 20)])
    items = np.concatenate([rng.integers(0, 100, n).astype(str), np.array(["7"] * 60)])
    order = np.argsort(ts, kind="stable")
    users, items, ts = users[order], items[order], ts[order]
    whole = ItemClickSpikeRule()
    mask = whole.update(EventBatch.create(users, items, ["click"] * len(ts), ts))
    live = ItemClickSpikeRule()
    flags = []
    for second in range(601):
        part = (ts >= second) & (ts < second + 1)
        live.update(EventBatch.create(users[part], items[part], ["click"] * int(part.sum()), ts[part]))
        flags += live.flags
    assert {f.key for f in whole.flags} == {f.key for f in flags} == {"7"}
    assert whole.episodes == live.episodes == 1
    assert whole.flags[0].since == flags[0].since
    assert abs(whole.flags[-1].until - flags[-1].until) <= whole.step_s
    span = (items == "7") & (ts >= whole.flags[0].since) & (ts <= whole.flags[-1].until)
    assert np.array_equal(mask, span)  # every click on the item in its span, genuine ones too


def test_an_empty_batch_returns_an_empty_mask_and_clears_flags() -> None:
    detector = ItemClickSpikeRule(min_reference_s=0)
    detector.update(_clicks(["b"] * 20, "x", 100 + np.arange(20) * 0.1))
    mask = detector.update(EventBatch.empty())
    assert mask.dtype == np.bool_ and mask.tolist() == [] and detector.flags == []


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"window_s": 0}, "positive window_s, reference_s, step_s, min_expected and 0 < p_value < 1"),
        ({"min_expected": -1.0}, "positive window_s"),
        ({"p_value": 1.0}, "0 < p_value < 1"),
        ({"min_clicks": 0}, "min_clicks >= 1"),
        ({"max_distinct_share": 1.5}, "0 < max_distinct_share <= 1"),
        ({"min_reference_s": -1.0}, "min_reference_s >= 0"),
        ({"events": ()}, r"some events, got 20, 0.3, 300.0, \(\)"),
    ],
)
def test_bad_parameters_are_named(params: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ItemClickSpikeRule(**params)  # type: ignore[arg-type]
