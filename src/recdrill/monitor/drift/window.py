"""The current window of a streaming detector: a numpy ring buffer, and a sorted view of it.

Detectors keep only the last ``window`` values. :class:`RingBuffer` holds them in arrival order and
hands back what a push evicts, so that a detector can undo their effect (bin counts, sorted order)
instead of recomputing from scratch. :class:`SortedWindow` keeps the window sorted as well, beside
each value's rank in the (fixed) reference sample: KS and Wasserstein then cost O(window) per
update, independent of the reference size, with no per-value Python loop.
"""

from __future__ import annotations

import numpy as np


class RingBuffer:
    """The last ``capacity`` rows pushed (1-D values, or rows of ``width`` for embeddings).

    Example:
        >>> ring = RingBuffer(3, np.int64)
        >>> ring.push(np.array([1, 2])).tolist(), ring.push(np.array([3, 4])).tolist()
        ([], [1])
        >>> ring.values().tolist()
        [2, 3, 4]
    """

    def __init__(self, capacity: int, dtype: np.dtype | type, width: int | None = None) -> None:
        shape = (capacity,) if width is None else (capacity, width)
        self._data = np.empty(shape, dtype=dtype)
        self._capacity = capacity
        self._start = 0  # position of the oldest row
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def push(self, rows: np.ndarray) -> np.ndarray:
        """Append ``rows`` (at most ``capacity`` of them); returns the rows evicted, oldest first."""
        k = len(rows)
        n_evict = max(0, self._size + k - self._capacity)
        evicted = self._data[(self._start + np.arange(n_evict)) % self._capacity].copy()
        end = (self._start + self._size) % self._capacity
        self._data[(end + np.arange(k)) % self._capacity] = rows
        self._start = (self._start + n_evict) % self._capacity
        self._size = min(self._capacity, self._size + k)
        return evicted

    def values(self) -> np.ndarray:
        """The rows held, oldest first (a copy)."""
        return self._data[(self._start + np.arange(self._size)) % self._capacity]


class SortedWindow:
    """A ring buffer of floats kept sorted too, each value with its rank in a sorted reference.

    ``values`` is the window in ascending order; ``rank_left[i]`` and ``rank_right[i]`` count the
    reference values ``< values[i]`` and ``<= values[i]`` (exact integers held as float64). The
    three are rows of one (3, n) table, so that a push moves them together: it drops the evicted
    columns with one boolean mask and merges in the new, sorted values at their places, ranking
    only the new ones: about five passes over the window, no Python loop.

    Example:
        >>> window = SortedWindow(np.array([0.0, 1.0, 2.0]), capacity=2)
        >>> window.push(np.array([1.5, 1.0]))
        >>> window.push(np.array([5.0]))
        >>> window.values.tolist(), window.rank_left.tolist(), window.rank_right.tolist()
        ([1.0, 5.0], [1.0, 3.0], [2.0, 3.0])
    """

    def __init__(self, reference_sorted: np.ndarray, capacity: int) -> None:
        self.reference = reference_sorted
        self._ring = RingBuffer(capacity, np.float64)
        self._table = np.empty((3, 0), dtype=np.float64)

    def __len__(self) -> int:
        return self._table.shape[1]

    @property
    def values(self) -> np.ndarray:
        row: np.ndarray = self._table[0]
        return row

    @property
    def rank_left(self) -> np.ndarray:
        row: np.ndarray = self._table[1]
        return row

    @property
    def rank_right(self) -> np.ndarray:
        row: np.ndarray = self._table[2]
        return row

    def push(self, batch: np.ndarray) -> None:
        """Add ``batch`` (at most ``capacity`` values), dropping the oldest beyond ``capacity``."""
        # The ring evicts only values pushed before: `batch` is never longer than the capacity.
        evicted = self._ring.push(batch)
        full = self._table
        gone = np.sort(evicted)
        new = np.sort(batch)
        keep = np.ones(full.shape[1], dtype=bool)
        if len(gone):
            # Equal evicted values must remove distinct positions: offset each by its rank in its run.
            pos = np.searchsorted(full[0], gone, side="left")
            keep[pos + np.arange(len(gone)) - np.searchsorted(gone, gone, side="left")] = False
        # Where each new value lands among the kept ones, then in the result.
        at = np.searchsorted(full[0], new) - np.searchsorted(gone, new) + np.arange(len(new))
        n = full.shape[1] - len(gone) + len(new)
        source = np.empty(n, dtype=np.intp)  # result column -> column of [full | new]
        old = np.ones(n, dtype=bool)
        old[at] = False
        source[old] = np.flatnonzero(keep)
        source[at] = full.shape[1] + np.arange(len(new))
        ranks = [np.searchsorted(self.reference, new, side=side) for side in ("left", "right")]
        self._table = np.concatenate([full, np.stack([new, *ranks])], axis=1).take(source, axis=1)
