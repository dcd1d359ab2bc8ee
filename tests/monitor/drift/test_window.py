"""The current window of a streaming detector: the numpy ring buffer and its sorted, ranked view."""

from __future__ import annotations

import numpy as np

from recdrill.monitor.drift.window import RingBuffer, SortedWindow


def test_a_ring_buffer_hands_back_what_a_push_evicts_oldest_first() -> None:
    ring = RingBuffer(4, np.int64)
    assert ring.push(np.array([1, 2, 3])).tolist() == []
    assert len(ring) == 3
    assert ring.push(np.array([4, 5, 6])).tolist() == [1, 2]
    assert ring.values().tolist() == [3, 4, 5, 6]
    # A push of the whole capacity evicts everything held, oldest first, across the wrap-around.
    assert ring.push(np.array([7, 8, 9, 10])).tolist() == [3, 4, 5, 6]
    assert ring.values().tolist() == [7, 8, 9, 10] and len(ring) == 4


def test_an_empty_ring_buffer_holds_no_values_and_an_empty_push_evicts_nothing() -> None:
    ring = RingBuffer(3, np.float64)
    assert len(ring) == 0 and ring.values().tolist() == []
    assert ring.push(np.array([], dtype=np.float64)).tolist() == []
    ring.push(np.array([1.5, 2.5, 3.5]))
    assert ring.push(np.array([], dtype=np.float64)).tolist() == []
    assert ring.values().tolist() == [1.5, 2.5, 3.5]


def test_a_ring_buffer_of_rows_keeps_whole_embedding_rows() -> None:
    ring = RingBuffer(2, np.float64, width=3)
    ring.push(np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]))
    evicted = ring.push(np.array([[2.0, 2.0, 2.0]]))
    assert evicted.shape == (1, 3) and evicted.tolist() == [[0.0, 0.0, 0.0]]
    assert ring.values().tolist() == [[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]]


def test_ring_buffer_values_are_a_copy() -> None:
    ring = RingBuffer(3, np.int64)
    ring.push(np.array([1, 2, 3]))
    held = ring.values()
    held[:] = 0
    assert ring.values().tolist() == [1, 2, 3]


def test_a_sorted_window_drops_one_copy_per_evicted_duplicate() -> None:
    window = SortedWindow(np.array([1.0, 2.0, 3.0]), capacity=3)
    window.push(np.array([2.0, 2.0, 2.0]))
    window.push(np.array([1.0, 3.0]))  # evicts two of the three 2.0s
    assert window.values.tolist() == [1.0, 2.0, 3.0]
    assert window.rank_left.tolist() == [0.0, 1.0, 2.0]
    assert window.rank_right.tolist() == [1.0, 2.0, 3.0]
    assert len(window) == 3


def test_a_sorted_window_matches_sorting_the_last_values_after_many_pushes() -> None:
    rng = np.random.default_rng(0)
    reference = np.sort(rng.integers(0, 20, 300).astype(np.float64))  # many ties with the window
    window = SortedWindow(reference, capacity=50)
    stream: list[float] = []
    for size in rng.integers(1, 51, 40).tolist():
        batch = rng.integers(0, 25, size).astype(np.float64)
        window.push(batch)
        stream.extend(batch.tolist())
        expected = np.sort(np.array(stream[-50:]))
        assert window.values.tolist() == expected.tolist()
        assert window.rank_left.tolist() == np.searchsorted(reference, expected, side="left").tolist()
        assert window.rank_right.tolist() == np.searchsorted(reference, expected, side="right").tolist()


def test_a_fresh_sorted_window_is_empty() -> None:
    window = SortedWindow(np.array([0.0, 1.0]), capacity=5)
    assert len(window) == 0
    assert (
        window.values.tolist() == [] and window.rank_left.tolist() == [] and window.rank_right.tolist() == []
    )
