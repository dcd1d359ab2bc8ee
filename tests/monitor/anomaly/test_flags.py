"""What the anomaly rules share: event batches as arrays, and the book of flagged spans (merging,
episodes, expiry, vectorised matching)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from recdrill.errors import ConfigError
from recdrill.monitor.anomaly.flags import EventBatch, Flag, FlagBook


def test_a_batch_holds_object_columns_and_float_times() -> None:
    batch = EventBatch.create(["u1", "u2"], [1, 2], ("click", "view"), [1, 2])
    assert batch.size == 2
    assert batch.users.dtype == batch.items.dtype == batch.events.dtype == np.dtype(object)
    assert batch.ts.dtype == np.float64 and batch.ts.tolist() == [1.0, 2.0]
    assert batch.items.tolist() == [1, 2]  # ids kept as given


def test_columns_are_flattened_and_an_empty_batch_has_size_zero() -> None:
    batch = EventBatch.create([["a"], ["b"]], [["x"], ["y"]], [["click"], ["click"]], [[1.0], [2.0]])
    assert batch.users.tolist() == ["a", "b"] and batch.ts.tolist() == [1.0, 2.0]
    empty = EventBatch.empty()
    assert empty.size == 0 and empty.users.tolist() == [] and empty.ts.dtype == np.float64


def test_a_batch_is_frozen() -> None:
    batch = EventBatch.empty()
    with pytest.raises(dataclasses.FrozenInstanceError):
        batch.ts = np.zeros(1)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ((["u", "v"], ["i"], ["click"], [1.0]), r"arrays of one length, got lengths \[1, 2\]"),
        ((["u"], ["i"], ["click"], []), r"got lengths \[0, 1\]"),
        ((["u"], ["i"], ["click"], [np.inf]), "needs finite timestamps"),
        ((["u"], ["i"], ["click"], [np.nan]), "needs finite timestamps"),
    ],
)
def test_bad_batches_are_refused(columns: tuple[list[object], ...], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        EventBatch.create(*columns)


def test_a_first_span_opens_an_episode() -> None:
    book = FlagBook("user_burst")
    flags = book.record(["bot"], [10.0], [30.0])
    assert flags == [Flag("user_burst", "bot", 10.0, 30.0, True)]
    assert book.episodes == 1 and book.spans == {"bot": (10.0, 30.0)}


def test_a_span_that_touches_a_live_one_extends_it_and_a_later_one_begins_a_new_episode() -> None:
    book = FlagBook("item_click_spike")
    book.record(["x"], [10.0], [30.0])
    assert book.record(["x"], [30.0], [45.0]) == [Flag("item_click_spike", "x", 10.0, 45.0, False)]
    assert book.record(["x"], [20.0], [25.0]) == [
        Flag("item_click_spike", "x", 10.0, 45.0, False)
    ]  # never shrinks
    assert book.episodes == 1
    assert book.record(["x"], [45.5], [60.0]) == [Flag("item_click_spike", "x", 45.5, 60.0, True)]
    assert book.episodes == 2 and book.spans["x"] == (45.5, 60.0)


def test_several_keys_are_recorded_at_once() -> None:
    book = FlagBook("user_burst")
    flags = book.record(np.array(["a", "b"], dtype=object), np.array([1.0, 2.0]), np.array([3.0, 4.0]))
    assert [(f.key, f.since, f.until, f.new) for f in flags] == [("a", 1.0, 3.0, True), ("b", 2.0, 4.0, True)]
    assert book.episodes == 2
    with pytest.raises(ValueError, match="zip"):
        book.record(["a", "b"], [1.0], [2.0])


def test_live_keys_are_those_whose_span_holds_now_bounds_included() -> None:
    book = FlagBook("user_burst")
    book.record(["a", "b"], [0.0, 5.0], [10.0, 20.0])
    assert book.live(0.0) == {"a"}
    assert book.live(10.0) == {"a", "b"}
    assert book.live(20.0) == {"b"}
    assert book.live(20.5) == frozenset()


def test_expire_forgets_only_spans_that_ended_before_now() -> None:
    book = FlagBook("user_burst")
    book.record(["a", "b"], [0.0, 0.0], [10.0, 20.0])
    book.expire(10.0)
    assert set(book.spans) == {"a", "b"}
    book.expire(10.5)
    assert set(book.spans) == {"b"}
    assert book.episodes == 2  # expiry forgets spans, not the count
    book.record(["a"], [11.0], [12.0])
    assert book.episodes == 3  # a key that expired starts a new episode


def test_match_flags_events_inside_their_own_keys_span() -> None:
    book = FlagBook("user_burst")
    book.record(["a", "b"], [0.0, 5.0], [10.0, 20.0])
    keys = np.array(["a", "a", "a", "b", "b", "c"], dtype=object)
    ts = np.array([-0.1, 0.0, 10.0, 4.9, 20.0, 5.0])
    assert book.match(keys, ts).tolist() == [False, True, True, False, True, False]


def test_match_on_an_empty_book_or_no_events_is_all_false() -> None:
    book = FlagBook("user_burst")
    assert book.match(np.array(["a"], dtype=object), np.array([1.0])).tolist() == [False]
    book.record(["a"], [0.0], [1.0])
    empty = book.match(np.array([], dtype=object), np.array([]))
    assert empty.dtype == np.bool_ and empty.tolist() == []
