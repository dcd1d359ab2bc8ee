"""The data of a drift response: recent events aligned with training by external id, the window
split by time with nothing held out reaching fine-tuning, the held-out fold, and recent weighting."""

from __future__ import annotations

import numpy as np
import pytest

from recdrill.data.dataset import Catalog, Dataset, EventType, Interactions
from recdrill.errors import ConfigError
from recdrill.monitor.response.data import align_recent, held_out_fold, recent_weighted, split_recent


def _shop(users: list[str], items: list[str], events: list[tuple[str, str, int]]) -> Dataset:
    """A dataset of ``(user, item, second)`` events over these user and item ids."""
    user_at = {u: i for i, u in enumerate(users)}
    item_at = {it: i for i, it in enumerate(items)}
    return Dataset.create(
        "hand",
        np.array(users, dtype=object),
        Catalog(item_ids=np.array(items, dtype=object)),
        Interactions(
            np.array([user_at[u] for u, _, _ in events], dtype=np.int64),
            np.array([item_at[it] for _, it, _ in events], dtype=np.int64),
            np.array([t for _, _, t in events], dtype=np.int64),
            np.full(len(events), EventType.CLICK),
        ),
    )


def _events(data: Dataset) -> list[tuple[str, str, int]]:
    inter = data.interactions
    return [
        (str(data.user_ids[u]), str(data.catalog.item_ids[i]), int(t))
        for u, i, t in zip(inter.user, inter.item, inter.timestamp, strict=True)
    ]


USERS = [f"u{k}" for k in range(5)]
ITEMS = [f"i{k}" for k in range(10)]


def _training() -> Dataset:
    """Every user has two events in seconds 0-9."""
    return _shop(USERS, ITEMS, [(USERS[k % 5], ITEMS[k], k) for k in range(10)])


def _recent(start: int = 100, n: int = 100) -> Dataset:
    """One event a second from ``start``, users and items in turn."""
    return _shop(USERS, ITEMS, [(USERS[k % 5], ITEMS[k % 10], start + k) for k in range(n)])


def test_recent_events_are_matched_by_external_id_and_unknown_items_dropped() -> None:
    training = _shop(["A", "B"], ["x", "y", "z"], [("A", "x", 1), ("B", "y", 5), ("B", "z", 20)])
    recent = _shop(["C", "B"], ["z", "new", "x"], [("B", "z", 20), ("B", "new", 21), ("C", "x", 22)])
    combined, is_recent, dropped = align_recent(training, recent)
    assert dropped == 1  # "new" is not in the training catalogue
    assert combined.user_ids.tolist() == ["A", "B", "C"]  # a new user is appended
    assert combined.catalog is training.catalog
    # B's event at second 20 is in both: counted once, as a recent event.
    assert list(zip(_events(combined), is_recent.tolist(), strict=True)) == [
        (("A", "x", 1), False),
        (("B", "y", 5), False),
        (("B", "z", 20), True),
        (("C", "x", 22), True),
    ]


def test_a_training_catalogue_with_repeated_ids_cannot_be_matched() -> None:
    training = _shop(["A"], ["x", "x"], [("A", "x", 1)])
    with pytest.raises(ConfigError, match="hand: item ids are not unique, recent events cannot be matched"):
        align_recent(training, _shop(["A"], ["x"], [("A", "x", 2)]))


def test_the_window_is_split_by_time_and_nothing_from_the_split_on_is_fine_tuned() -> None:
    window = split_recent(_training(), _recent(), now=None, window_s=1000.0, holdout_share=0.2)
    assert (window.now, window.window_start) == (199, -801)  # now: the last recent event
    assert window.split_time == 180  # ceil of the 80% quantile of seconds 100..199
    assert (window.n_recent, window.n_fine_tune, window.n_dropped) == (100, 80, 0)
    fine = window.fine_tune_data.interactions
    assert int(fine.timestamp.max()) == 179 and len(fine) == 10 + 80
    assert int(window.recent_rows.sum()) == 80 and len(window.recent_rows) == len(fine)
    assert fine.timestamp[window.recent_rows].min() == 100  # the recent rows are the recent events
    assert len(window.held_out) == 20 and len(window.combined.interactions) == 110


def test_recent_events_before_the_window_and_after_now_take_no_part() -> None:
    window = split_recent(_training(), _recent(), now=170, window_s=50.0, holdout_share=0.2)
    assert (window.window_start, window.now) == (120, 170)
    assert window.n_recent == 51  # seconds 120..170
    assert window.split_time == 160  # ceil(120 + 0.8 * 50)
    stamps = window.combined.interactions.timestamp
    assert int(stamps.max()) == 170
    assert not ((stamps >= 10) & (stamps < 120)).any()  # training (0-9) stays, recent before the window goes
    assert window.n_fine_tune == 40 and int(window.fine_tune_data.interactions.timestamp.max()) == 159


def test_an_empty_window_or_one_second_of_data_cannot_be_split() -> None:
    with pytest.raises(
        ConfigError, match=r"no recent event lies in the window \[0, 50\] \(recent_window_s=50.0\)"
    ):
        split_recent(_training(), _recent(), now=50, window_s=50.0, holdout_share=0.2)
    same_second = _shop(USERS, ITEMS, [(u, "i0", 100) for u in USERS])
    with pytest.raises(ConfigError, match="spans too little time to hold out its last events"):
        split_recent(same_second, same_second, now=None, window_s=10.0, holdout_share=0.2)


def test_every_event_from_the_split_on_is_a_target_shown_its_users_earlier_items() -> None:
    data = _shop(
        ["A", "B", "C"],
        ["i0", "i1", "i2", "i3", "i4"],
        [
            ("A", "i0", 1),
            ("A", "i1", 2),
            ("A", "i2", 10),
            ("A", "i3", 11),
            ("B", "i4", 5),
            ("B", "i0", 12),
            ("C", "i1", 12),
        ],
    )
    fold = held_out_fold(data, split=10)
    # C's only event has no history before it: left out.
    assert fold.users.tolist() == [0, 0, 1]
    assert fold.histories.to_lists() == [[0, 1], [0, 1, 2], [4]]
    assert fold.targets.tolist() == [2, 3, 0]
    assert _events(fold.fit_data) == [("A", "i0", 1), ("A", "i1", 2), ("B", "i4", 5)]
    assert fold.name == "held-out" and len(fold) == 3


def test_recent_events_are_counted_again_under_new_user_ids() -> None:
    data = _shop(["A", "B"], ["x", "y"], [("A", "x", 1), ("A", "y", 2), ("B", "x", 3)])
    recent = np.array([False, True, True])  # A's y at 2 and B's x at 3
    assert recent_weighted(data, recent, 1) is data
    assert recent_weighted(data, np.zeros(3, dtype=bool), 3) is data
    weighted = recent_weighted(data, recent, 3)
    assert weighted.user_ids.tolist() == ["A", "B", "A#recent1", "B#recent1", "A#recent2", "B#recent2"]
    assert weighted.item_counts().tolist() == [2 + 2, 1 + 2]  # x: A's and B's, then B's twice more
    assert sorted(_events(weighted)) == sorted(
        [
            *_events(data),
            ("A#recent1", "y", 2),
            ("B#recent1", "x", 3),
            ("A#recent2", "y", 2),
            ("B#recent2", "x", 3),
        ]
    )
