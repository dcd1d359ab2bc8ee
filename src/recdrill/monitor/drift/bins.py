"""Bins for the histogram methods (PSI, KL, Jensen-Shannon, chi-square) and their smoothing.

* Numeric values with more than ``n_bins`` distinct reference values go into ``n_bins`` bins cut at
  the reference's quantiles (each bin holds about the same share of the reference; the outer bins
  are open, so current values beyond the reference's range still count). Tied quantiles merge.
* Categories (strings, booleans, or numbers with at most ``n_bins`` distinct values) get one bin
  each, plus one last bin for every category the reference never showed.

Smoothing (:func:`smoothed_shares`): a bin empty in both samples is dropped; a bin empty in only one
gets share ``EPSILON`` = 1e-4 in that sample (Evidently's value), whose shares are then renormalised
to sum to 1. The logarithms of PSI and KL stay finite and a new category still counts heavily.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from recdrill.errors import ConfigError, DataError

EPSILON = 1e-4
DEFAULT_BINS = 10
ColumnKind = Literal["numeric", "categorical"]


def infer_kind(values: np.ndarray) -> ColumnKind:
    """``numeric`` for int and float arrays, ``categorical`` for anything else (str, bool, object).

    Example:
        >>> infer_kind(np.array([1.5, 2.0])), infer_kind(np.array(["a", "b"]))
        ('numeric', 'categorical')
    """
    is_number = np.issubdtype(values.dtype, np.number) and values.dtype != np.bool_
    return "numeric" if is_number else "categorical"


def as_categories(values: np.ndarray) -> np.ndarray:
    """Numbers stay numbers; strings, booleans and objects become fixed-width strings (sortable)."""
    return values if infer_kind(values) == "numeric" else values.astype(str)


@dataclass(frozen=True)
class Binning:
    """Where each value falls: quantile ``edges`` (numeric) or sorted ``categories``.

    Example:
        >>> bins = Binning.from_reference(np.array(["a", "b", "b"]))
        >>> bins.n_bins, bins.codes(np.array(["b", "z", "a"])).tolist()
        (3, [1, 2, 0])
    """

    edges: np.ndarray | None  # inner cut points, ascending; None for categories
    categories: np.ndarray  # sorted distinct reference values; empty for quantile bins

    @classmethod
    def from_reference(
        cls, reference: ArrayLike, kind: ColumnKind | None = None, n_bins: int = DEFAULT_BINS
    ) -> Binning:
        """Bins learnt from the reference: quantile cuts or its categories (see the module doc)."""
        if n_bins < 2:
            raise ConfigError(f"The 'n_bins' parameter must be an int >= 2, got {n_bins!r} instead.")
        ref = np.asarray(reference).ravel()
        kind = kind or infer_kind(ref)
        if kind == "numeric":
            if infer_kind(ref) != "numeric":
                raise DataError(f"numeric bins need numbers, got {ref.dtype} values")
            if not np.isfinite(ref).all():
                raise DataError("values must be finite numbers (drop NaN and infinities first)")
            distinct = np.unique(ref)
            if len(distinct) > n_bins:
                cuts = np.quantile(ref, np.linspace(0.0, 1.0, n_bins + 1)[1:-1])
                return cls(edges=np.unique(cuts), categories=np.empty(0))
            return cls(edges=None, categories=distinct)
        return cls(edges=None, categories=np.unique(as_categories(ref)))

    @property
    def n_bins(self) -> int:
        if self.edges is not None:
            return len(self.edges) + 1
        return len(self.categories) + 1  # the last bin: categories unseen in the reference

    def codes(self, values: np.ndarray) -> np.ndarray:
        """The bin of each value, as int64 in ``[0, n_bins)``."""
        if self.edges is not None:
            if infer_kind(values) != "numeric":
                raise DataError(f"expected numbers, got {values.dtype} values")
            return np.searchsorted(self.edges, values, side="right")
        cats = self.categories
        if infer_kind(cats) == "numeric":
            if infer_kind(values) != "numeric":
                raise DataError(f"expected numbers, got {values.dtype} values")
        else:
            values = values.astype(str)
        at = np.searchsorted(cats, values)
        known = cats[np.minimum(at, len(cats) - 1)] == values
        return np.where(known, at, len(cats))


def smoothed_shares(
    reference_counts: np.ndarray, current_counts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Both samples' bin shares, smoothed as the module doc says.

    Example:
        >>> p, q = smoothed_shares(np.array([5, 5, 0, 0]), np.array([5, 0, 5, 0]))
        >>> len(p), round(float(p[2]), 6), round(float(q[1]), 6)
        (3, 0.0001, 0.0001)
    """
    keep = (reference_counts + current_counts) > 0
    shares = []
    for counts in (reference_counts[keep], current_counts[keep]):
        share = counts / counts.sum()
        share[share == 0] = EPSILON
        shares.append(share / share.sum())
    return shares[0], shares[1]
