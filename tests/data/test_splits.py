from __future__ import annotations

import numpy as np
import pytest

from recdrill.data.dataset import Catalog, Dataset, EventType, Interactions
from recdrill.data.splits import leave_one_out, time_split
from recdrill.errors import ConfigError, DataError
from tests.conftest import make_shop


def test_leave_one_out_holds_out_last_two_and_skips_short_users() -> None:
    shop = make_shop([[0, 1, 2, 3], [4, 5], [5, 6, 7]], n_items=8)
    split = leave_one_out(shop)
    assert split.skipped_users == 1
    assert split.test.users.tolist() == [0, 2]
    assert split.test.targets.tolist() == [3, 7]
    assert split.test.histories.to_lists() == [[0, 1, 2], [5, 6]]
    assert split.validation.targets.tolist() == [2, 6]
    assert split.validation.histories.to_lists() == [[0, 1], [5]]
    # The short user's data stays in training; no target leaks into its fold's training data.
    assert split.validation.fit_data.sequences().to_lists() == [[0, 1], [4, 5], [5]]
    assert split.test.fit_data.sequences().to_lists() == [[0, 1, 2], [4, 5], [5, 6]]


def _timed_shop() -> Dataset:
    # user 0: t=1,2,8,9 ; user 1: t=3,9 ; user 2: t=5 only
    users = np.array([0, 0, 0, 0, 1, 1, 2])
    items = np.array([0, 1, 2, 3, 4, 5, 6])
    times = np.array([1, 2, 8, 9, 3, 9, 5])
    catalog = Catalog(np.array([f"i{i}" for i in range(7)], dtype=object))
    inter = Interactions(users, items, times, np.full(7, EventType.CLICK))
    return Dataset.create("timed", np.array(["a", "b", "c"], dtype=object), catalog, inter)


def test_time_split_targets_first_item_after_cutoff() -> None:
    split = time_split(_timed_shop(), test_start=8, validation_start=3)
    assert split.test.users.tolist() == [0, 1]
    assert split.test.targets.tolist() == [2, 5]
    assert split.test.histories.to_lists() == [[0, 1], [4]]
    assert np.all(split.test.fit_data.interactions.timestamp < 8)
    # Validation window [3, 8): users 1 and 2 act in it but have no history before 3; user 0 is idle in it.
    assert split.validation.users.tolist() == []
    assert split.skipped_users == 1


def test_time_split_rejects_cutoffs_outside_the_data() -> None:
    with pytest.raises(ConfigError, match="validation_start < test_start"):
        time_split(_timed_shop(), test_start=50)


def test_time_split_needs_timestamps() -> None:
    with pytest.raises(DataError, match="no timestamps"):
        time_split(make_shop([[0, 1, 2]], n_items=3), test_start=1)
