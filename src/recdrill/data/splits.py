"""Train/validation/test splits: leave-one-out (the published protocol) and time-based.

A split yields two :class:`EvalFold` s. Each says what a model may learn from (``fit_data``), what it is
shown per evaluated user (``histories``) and what it must predict (``targets``). Validation targets
are never inside test ``fit_data``'s future, and nothing at validation sees a test target.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recdrill.data.dataset import Dataset
from recdrill.data.ragged import Ragged
from recdrill.errors import ConfigError, DataError


@dataclass(frozen=True)
class EvalFold:
    """One evaluation stage.

    Attributes:
        name: ``"validation"`` or ``"test"``.
        fit_data: the interactions a model may be fitted on for this stage.
        users: dense ids of the evaluated users, shape ``[n]``.
        histories: each evaluated user's items before the target, in time order.
        targets: the held-out next item of each evaluated user, shape ``[n]``.
    """

    name: str
    fit_data: Dataset
    users: np.ndarray
    histories: Ragged
    targets: np.ndarray

    def __len__(self) -> int:
        return len(self.users)


@dataclass(frozen=True)
class Split:
    """A validation fold and a test fold over one dataset."""

    kind: str
    validation: EvalFold
    test: EvalFold
    skipped_users: int  # users with too little data to be evaluated (their data stays in training)

    def fold(self, name: str) -> EvalFold:
        if name not in ("validation", "test"):
            raise ConfigError(f"fold must be 'validation' or 'test', got {name!r}")
        return self.validation if name == "validation" else self.test


def leave_one_out(dataset: Dataset) -> Split:
    """Per user: last interaction = test, second-to-last = validation, the rest = training.

    Test ``fit_data`` holds everything but each user's last interaction (training plus validation, as
    a model retrained before release would see); validation ``fit_data`` holds only training.
    Users with fewer than 3 interactions are not evaluated and keep all their data in training.

    Example:
        >>> from recdrill.data.dataset import Catalog, Dataset, Interactions
        >>> items = np.array(["a", "b", "c", "d"], dtype=object)
        >>> inter = Interactions(np.zeros(4), np.arange(4), timestamp=np.arange(4), event=np.zeros(4))
        >>> shop = Dataset.create("toy", np.array(["u"], dtype=object), Catalog(items), inter)
        >>> split = leave_one_out(shop)
        >>> split.test.targets.tolist(), split.validation.targets.tolist()
        ([3], [2])
        >>> split.validation.histories.to_lists()
        [[0, 1]]
    """
    inter = dataset.interactions
    indptr = dataset.sequences().indptr
    lengths = np.diff(indptr)
    users = np.flatnonzero(lengths >= 3)
    test_rows = indptr[users + 1] - 1
    validation_rows = test_rows - 1
    keep = np.ones(len(inter), dtype=bool)
    keep[test_rows] = False
    test_data = dataset.with_interactions(inter.select(keep))
    keep[validation_rows] = False
    validation_data = dataset.with_interactions(inter.select(keep))
    validation = EvalFold(
        "validation",
        validation_data,
        users,
        validation_data.sequences().take(users),
        inter.item[validation_rows],
    )
    test = EvalFold("test", test_data, users, test_data.sequences().take(users), inter.item[test_rows])
    return Split("leave-one-out", validation, test, skipped_users=int(np.count_nonzero(lengths < 3)))


def time_split(dataset: Dataset, test_start: int, validation_start: int | None = None) -> Split:
    """Split at points in time: the next item after each cutoff is the target.

    Test: fit on everything before ``test_start``; each user active both before and after it is
    shown their history before ``test_start`` and must predict their first item after it.
    Validation: the same with ``validation_start`` (default: as far before ``test_start`` as the
    test window reaches after it) and fit data before ``validation_start``.
    """
    if not dataset.has_time:
        raise DataError(f"{dataset.name} has no timestamps (sequence order only): use leave-one-out")
    timestamps = dataset.interactions.timestamp
    if validation_start is None:
        validation_start = test_start - (int(timestamps.max()) + 1 - test_start)
    if not timestamps.min() < validation_start < test_start <= timestamps.max():
        raise ConfigError(
            f"time split needs min time < validation_start < test_start <= max time; got "
            f"{validation_start} and {test_start} for data spanning {timestamps.min()}..{timestamps.max()}"
        )
    validation = _time_fold("validation", dataset, validation_start, end=test_start)
    test = _time_fold("test", dataset, test_start, end=None)
    users = dataset.interactions.user
    evaluated = np.union1d(validation.users, test.users)
    skipped = len(np.unique(users)) - len(evaluated)
    return Split("time", validation, test, skipped_users=int(skipped))


def time_split_by_fraction(dataset: Dataset, test_fraction: float = 0.1) -> Split:
    """A :func:`time_split` whose test window holds the last ``test_fraction`` of interactions."""
    if not 0.0 < test_fraction < 0.5:
        raise ConfigError(f"test_fraction must be in (0, 0.5), got {test_fraction}")
    if not dataset.has_time:
        raise DataError(f"{dataset.name} has no timestamps (sequence order only): use leave-one-out")
    test_start = int(np.quantile(dataset.interactions.timestamp, 1.0 - test_fraction))
    validation_start = int(np.quantile(dataset.interactions.timestamp, 1.0 - 2 * test_fraction))
    return time_split(dataset, test_start, validation_start)


def _time_fold(name: str, dataset: Dataset, start: int, end: int | None) -> EvalFold:
    inter = dataset.interactions
    before = inter.timestamp < start
    after = ~before if end is None else (~before) & (inter.timestamp < end)
    fit_data = dataset.with_interactions(inter.select(before))
    # Interactions are sorted by (user, time), so the first "after" row of a user is its next item.
    after_rows = np.flatnonzero(after)
    first_after_users, first_index = np.unique(inter.user[after_rows], return_index=True)
    history_lengths = np.bincount(inter.user[before], minlength=dataset.n_users)
    has_history = history_lengths[first_after_users] > 0
    users = first_after_users[has_history]
    targets = inter.item[after_rows[first_index[has_history]]]
    histories = fit_data.sequences().take(users)
    return EvalFold(name, fit_data, users.astype(np.int64), histories, targets.astype(np.int32))


def hold_out_last(
    dataset: Dataset, sequences: Ragged, share: float = 1.0, rng: np.random.Generator | None = None
) -> tuple[Ragged, EvalFold]:
    """Training rows without the validation users' last items, and a fold predicting those items:
    how a model validates inside ``fit`` on the data it was given (its own early stopping).

    Validation users are a random ``share`` of the users with at least 3 items (all when 1).

    Example:
        >>> from recdrill.data.dataset import Catalog, Interactions
        >>> users, items = np.array([0, 0, 0, 1, 1]), np.array([0, 1, 2, 3, 4])
        >>> inter = Interactions(users, items, timestamp=np.arange(5), event=np.zeros(5))
        >>> ids = np.array(["u", "v"], dtype=object)
        >>> shop = Dataset.create("toy", ids, Catalog(np.array(list("abcde"), dtype=object)), inter)
        >>> train, fold = hold_out_last(shop, shop.sequences())
        >>> train.to_lists(), fold.users.tolist(), fold.targets.tolist()
        ([[0, 1], [3, 4]], [0], [2])
    """
    users = np.flatnonzero(sequences.lengths >= 3)
    if share < 1.0:
        generator = rng if rng is not None else np.random.default_rng(0)
        count = max(1, round(share * len(users)))
        users = np.sort(generator.choice(users, size=min(count, len(users)), replace=False))
    keep = np.ones(len(sequences.values), dtype=bool)
    keep[sequences.indptr[users + 1] - 1] = False
    train = Ragged.from_groups(sequences.row_ids[keep], sequences.values[keep], len(sequences))
    fold = EvalFold(
        "validation",
        dataset,
        users.astype(np.int64),
        train.take(users),
        sequences.values[sequences.indptr[users + 1] - 1],
    )
    return train, fold
