"""Tests of recdrill.models.sasrec.batches: left padding and the shuffled next-item training batches."""

from __future__ import annotations

from collections import Counter

import numpy as np
import torch

from recdrill.data.ragged import Ragged
from recdrill.models.sasrec.batches import left_pad, training_batches


def test_left_pad_right_aligns_the_last_items_shifted_by_one() -> None:
    rows = Ragged.from_lists([[4, 5, 6], [7], []])
    padded = left_pad(rows, 4)
    assert padded.tolist() == [[0, 5, 6, 7], [0, 0, 0, 8], [0, 0, 0, 0]]
    assert padded.dtype == np.int64


def test_left_pad_cuts_long_rows_to_their_most_recent_items() -> None:
    assert left_pad(Ragged.from_lists([[1, 2, 3, 4, 5]]), 2).tolist() == [[5, 6]]


def test_left_pad_can_keep_ids_unshifted() -> None:
    assert left_pad(Ragged.from_lists([[0, 3], [2]]), 3, shift=0).tolist() == [[0, 0, 3], [0, 0, 2]]


def test_left_pad_of_no_rows_is_an_empty_matrix() -> None:
    assert left_pad(Ragged.from_lists([]), 3).shape == (0, 3)


def rows_of(batches: list[tuple[torch.Tensor, torch.Tensor]]) -> list[tuple[list[int], list[int]]]:
    """Every (inputs, targets) pair of rows from the first real (non-padding) input on."""
    pairs = []
    for inputs, targets in batches:
        for i, t in zip(inputs.tolist(), targets.tolist(), strict=True):
            start = next((k for k, v in enumerate(i) if v != 0), len(i))
            pairs.append((i[start:], t[start:]))
    return pairs


def test_targets_are_the_inputs_shifted_by_one_position() -> None:
    sequences = Ragged.from_lists([[1, 2, 3, 4], [5, 6], [7, 8, 9]])
    batches = list(training_batches(sequences, batch_size=2, max_len=10, rng=np.random.default_rng(0)))
    for inputs, targets in batches:
        assert inputs.shape == targets.shape and inputs.dtype == torch.int64
        # Targets are the same padded row one step later: each real input predicts the next item.
        assert torch.equal(inputs[:, 1:], targets[:, :-1])
    assert sorted(rows_of(batches)) == [([2, 3, 4], [3, 4, 5]), ([6], [7]), ([8, 9], [9, 10])]


def test_every_usable_row_appears_exactly_once_per_epoch() -> None:
    rng = np.random.default_rng(3)
    lists = [list(rng.integers(0, 50, size=int(rng.integers(0, 9)))) for _ in range(101)]
    sequences = Ragged.from_lists(lists)
    batches = list(training_batches(sequences, batch_size=8, max_len=20, rng=np.random.default_rng(1)))
    seen = Counter(tuple([*inputs, targets[-1]]) for inputs, targets in rows_of(batches))
    expected = Counter(tuple(v + 1 for v in row) for row in lists if len(row) >= 2)
    assert seen == expected
    assert sum(len(inputs) for inputs, _ in batches) == sum(1 for row in lists if len(row) >= 2)
    assert all(len(inputs) <= 8 for inputs, _ in batches)


def test_rows_keep_their_last_max_len_plus_one_items() -> None:
    sequences = Ragged.from_lists([list(range(10))])
    ((inputs, targets),) = training_batches(sequences, batch_size=4, max_len=3, rng=np.random.default_rng(0))
    assert inputs.tolist() == [[7, 8, 9]] and targets.tolist() == [[8, 9, 10]]


def test_a_batch_pads_only_to_its_own_longest_row() -> None:
    # Rows are sorted by length before batching: short rows end up together.
    sequences = Ragged.from_lists([[1, 2], [3, 4], [1, 2, 3, 4, 5, 6], [2, 3, 4, 5, 6, 7]])
    batches = list(training_batches(sequences, batch_size=2, max_len=10, rng=np.random.default_rng(0)))
    assert sorted(inputs.shape[1] for inputs, _ in batches) == [1, 5]


def test_batches_are_shuffled_repeatably_by_the_generator() -> None:
    sequences = Ragged.from_lists([[i, i + 1, i + 2] for i in range(40)])

    def order(seed: int) -> list[list[int]]:
        batches = training_batches(sequences, batch_size=4, max_len=5, rng=np.random.default_rng(seed))
        return [row for inputs, _ in batches for row in inputs.tolist()]

    assert order(7) == order(7)
    assert order(7) != order(8)
    assert sorted(order(7)) == sorted(order(8))


def test_no_batches_when_no_row_has_two_items() -> None:
    sequences = Ragged.from_lists([[1], [], [4]])
    assert list(training_batches(sequences, batch_size=2, max_len=5, rng=np.random.default_rng(0))) == []
