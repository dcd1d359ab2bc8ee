from __future__ import annotations

import numpy as np
import pytest

from recdrill.data.ragged import Ragged


def test_from_lists_round_trips_rows_including_empty() -> None:
    rows = [[3, 1, 2], [], [7]]
    ragged = Ragged.from_lists(rows)
    assert ragged.to_lists() == rows
    assert ragged.lengths.tolist() == [3, 0, 1]
    assert ragged.row_ids.tolist() == [0, 0, 0, 2]


def test_take_and_last_select_the_right_values() -> None:
    ragged = Ragged.from_lists([[1, 2, 3], [4], [5, 6]])
    assert ragged.take(np.array([2, 0, 2])).to_lists() == [[5, 6], [1, 2, 3], [5, 6]]
    assert ragged.last(2).to_lists() == [[2, 3], [4], [5, 6]]


def test_to_csr_adds_repeated_values() -> None:
    matrix = Ragged.from_lists([[1, 1, 0], [2]]).to_csr(3).toarray()
    assert matrix.tolist() == [[1.0, 2.0, 0.0], [0.0, 0.0, 1.0]]


def test_to_csr_leaves_the_rows_untouched() -> None:
    ragged = Ragged.from_lists([[2, 0, 2], [1, 1]])
    ragged.to_csr(3)
    assert ragged.to_lists() == [[2, 0, 2], [1, 1]]
    assert ragged.indptr.tolist() == [0, 3, 5]


def test_inconsistent_offsets_are_rejected() -> None:
    with pytest.raises(ValueError, match="ends at 3 but there are 2 values"):
        Ragged(np.array([0, 3]), np.array([1, 2], dtype=np.int32))
