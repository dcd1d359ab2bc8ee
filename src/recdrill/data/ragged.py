"""A ragged array: many variable-length integer rows stored as one flat array plus offsets.

Used for user histories, item attribute lists and anything else with one short list per row.
It is the CSR layout, so rows can be turned into a ``scipy.sparse`` matrix without a Python loop.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class Ragged:
    """Rows of integers: row ``i`` is ``values[indptr[i]:indptr[i + 1]]``.

    Example:
        >>> r = Ragged.from_lists([[3, 1], [], [2]])
        >>> len(r), r.row(0).tolist(), r.lengths.tolist()
        (3, [3, 1], [2, 0, 1])
    """

    indptr: np.ndarray  # int64, shape [n_rows + 1]
    values: np.ndarray  # int32, shape [indptr[-1]]

    def __post_init__(self) -> None:
        if self.indptr.ndim != 1 or len(self.indptr) == 0 or self.indptr[0] != 0:
            raise ValueError("Ragged.indptr must be 1-d and start at 0")
        if int(self.indptr[-1]) != len(self.values):
            raise ValueError(
                f"Ragged.indptr ends at {int(self.indptr[-1])} but there are {len(self.values)} values"
            )
        if len(self.indptr) > 1 and np.any(np.diff(self.indptr) < 0):
            raise ValueError("Ragged.indptr must be non-decreasing")

    @classmethod
    def from_lists(cls, rows: Iterable[Sequence[int] | np.ndarray]) -> Ragged:
        arrays = [np.asarray(row, dtype=np.int64).ravel() for row in rows]
        lengths = np.fromiter((len(a) for a in arrays), dtype=np.int64, count=len(arrays))
        indptr = np.zeros(len(arrays) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        values = np.concatenate(arrays).astype(np.int32) if arrays else np.zeros(0, dtype=np.int32)
        return cls(indptr, values)

    @classmethod
    def from_groups(cls, group: np.ndarray, values: np.ndarray, n_rows: int) -> Ragged:
        """Build rows from ``values`` already sorted by ``group`` (the row of each value)."""
        counts = np.bincount(group, minlength=n_rows).astype(np.int64)
        indptr = np.zeros(n_rows + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        return cls(indptr, np.asarray(values, dtype=np.int32))

    def __len__(self) -> int:
        return len(self.indptr) - 1

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(len(self)):
            yield self.row(i)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.indptr)

    @property
    def row_ids(self) -> np.ndarray:
        """The row of every value, aligned with ``values``."""
        return np.repeat(np.arange(len(self), dtype=np.int64), self.lengths)

    def row(self, i: int) -> np.ndarray:
        return self.values[self.indptr[i] : self.indptr[i + 1]]

    def to_lists(self) -> list[list[int]]:
        return [row.tolist() for row in self]

    def take(self, rows: np.ndarray) -> Ragged:
        """The selected rows, in the given order."""
        rows = np.asarray(rows, dtype=np.int64)
        starts, ends = self.indptr[rows], self.indptr[rows + 1]
        lengths = ends - starts
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        offsets = np.repeat(starts - indptr[:-1], lengths) + np.arange(indptr[-1])
        return Ragged(indptr, self.values[offsets])

    def concat(self, other: Ragged) -> Ragged:
        """This object's rows followed by ``other``'s."""
        indptr = np.concatenate([self.indptr, other.indptr[1:] + self.indptr[-1]])
        return Ragged(indptr, np.concatenate([self.values, other.values]).astype(np.int32))

    def last(self, n: int) -> Ragged:
        """Each row cut to its last ``n`` values."""
        keep = np.minimum(self.lengths, n)
        starts = self.indptr[1:] - keep
        indptr = np.zeros(len(self) + 1, dtype=np.int64)
        np.cumsum(keep, out=indptr[1:])
        offsets = np.repeat(starts - indptr[:-1], keep) + np.arange(indptr[-1])
        return Ragged(indptr, self.values[offsets])

    def to_csr(self, n_cols: int, weights: np.ndarray | None = None) -> sp.csr_matrix:
        """Rows as a sparse ``[n_rows, n_cols]`` matrix; repeated values add up."""
        data = np.ones(len(self.values), dtype=np.float32) if weights is None else weights.astype(np.float32)
        # Copies: scipy keeps the arrays it is given, and sum_duplicates compacts them in place,
        # which would silently rewrite this (frozen, shared) row data.
        matrix = sp.csr_matrix((data, self.values.copy(), self.indptr.copy()), shape=(len(self), n_cols))
        matrix.sum_duplicates()
        return matrix
