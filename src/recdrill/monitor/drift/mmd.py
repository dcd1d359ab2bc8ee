"""Maximum Mean Discrepancy for embedding vectors (item or user embeddings, model outputs).

The score is the unbiased estimate of MMD^2 with the RBF kernel ``exp(-|x - y|^2 / (2 s^2))``, the
bandwidth ``s`` being the median pairwise distance within the reference (the median heuristic).
Both sides are subsampled to at most ``max_rows`` rows (default 500): the reference once, at random
(seeded), the current window evenly over time at each update, so a score costs two kernel matrices
of at most 500 x 500, whatever the window.

The threshold, unless given, comes from a permutation test at ``alpha`` = 0.05, run once when the
detector is built: ``n_permutations`` times, the reference is shuffled and split into a
reference-sized and a current-sized part, and the threshold is the (1 - alpha) quantile of their
MMD^2. That null distribution holds for a current sample of the calibrated size
(``min(window, max_rows, len(reference) // 2)`` rows), so the detector scores only once the window
holds that many vectors (its ``min_current``). Drift when ``score >= threshold``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from recdrill.errors import ConfigError, DataError
from recdrill.monitor.drift.detector import Detector, finite_numbers
from recdrill.monitor.drift.window import RingBuffer


def rbf_kernel(x: np.ndarray, y: np.ndarray, bandwidth: float) -> np.ndarray:
    """The RBF kernel matrix between the rows of ``x`` (n, d) and ``y`` (m, d): shape (n, m)."""
    sq = np.sum(x * x, axis=1)[:, None] + np.sum(y * y, axis=1)[None, :] - 2.0 * (x @ y.T)
    kernel: np.ndarray = np.exp(-np.maximum(sq, 0.0) / (2.0 * bandwidth * bandwidth))
    return kernel


def mmd2_unbiased(k_xx: np.ndarray, k_yy: np.ndarray, k_xy: np.ndarray) -> float:
    """Unbiased MMD^2 from the three kernel matrices (diagonals of the within-sample ones excluded)."""
    n, m = len(k_xx), len(k_yy)
    xx = (k_xx.sum() - np.trace(k_xx)) / (n * (n - 1))
    yy = (k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(xx + yy - 2.0 * k_xy.mean())


def median_bandwidth(x: np.ndarray) -> float:
    """The median pairwise Euclidean distance between distinct rows of ``x`` (1.0 if all equal)."""
    sq = np.sum(x * x, axis=1)[:, None] + np.sum(x * x, axis=1)[None, :] - 2.0 * (x @ x.T)
    upper = np.sqrt(np.maximum(sq[np.triu_indices(len(x), k=1)], 0.0))
    median = float(np.median(upper)) if upper.size else 0.0
    return median if median > 0 else 1.0


class MMDDetector(Detector):
    """Kernel two-sample drift score for vectors; ``update`` takes a (batch, dim) array.

    Extra parameters:
        max_rows: most rows per side in a kernel matrix (default 500).
        alpha: the permutation test's false-alarm rate (default 0.05).
        n_permutations: permutations for the threshold (default 100).
        seed: seeds the reference subsample and the permutations.

    Example (every coordinate moves by 0.3 at vector 2000):
        >>> rng = np.random.default_rng(0)
        >>> mmd = MMDDetector(rng.normal(size=(1000, 8)), window=500, max_rows=200)
        >>> stream = np.concatenate([rng.normal(size=(2000, 8)), rng.normal(0.3, size=(1000, 8))])
        >>> next(i for i in range(0, 3000, 100) if mmd.update(stream[i : i + 100]).drift_detected)
        2100
    """

    method = "mmd"
    higher_is_drift = True
    default_threshold = float("nan")  # calibrated per reference by the permutation test
    kinds = frozenset({"embedding"})

    def __init__(
        self,
        reference: ArrayLike,
        *,
        threshold: float | None = None,
        window: int = 1000,
        min_current: int | None = None,
        max_rows: int = 500,
        alpha: float = 0.05,
        n_permutations: int = 100,
        seed: int = 0,
    ) -> None:
        if max_rows < 2 or not 0 < alpha < 1 or n_permutations < 1:
            raise ConfigError(
                "MMDDetector needs max_rows >= 2, 0 < alpha < 1 and n_permutations >= 1, "
                f"got {max_rows!r}, {alpha!r}, {n_permutations!r}"
            )
        self._max_rows, self._alpha, self._n_permutations = max_rows, alpha, n_permutations
        self._rng = np.random.default_rng(seed)
        self._calibrate = threshold is None
        self._min_current_arg = min_current or 0
        # The base class checks a given threshold; a missing one is calibrated in _fit.
        super().__init__(reference, threshold=0.0 if threshold is None else threshold, window=window)

    def _fit(self, reference: np.ndarray) -> None:
        ref = self._rows(reference)
        if len(ref) < 4:
            raise DataError(f"MMDDetector: the reference needs at least 4 vectors, got {len(ref)}")
        self._dim = ref.shape[1]
        n_cur = min(self._window, self._max_rows, len(ref) // 2)
        n_ref = min(self._max_rows, len(ref) - n_cur)
        self._n_current = n_cur
        self.min_current = max(self._min_current_arg, n_cur)
        self._reference = ref[self._rng.permutation(len(ref))[:n_ref]]
        self.bandwidth = median_bandwidth(self._reference)
        k_rr = rbf_kernel(self._reference, self._reference, self.bandwidth)
        self._k_rr_mean = (k_rr.sum() - np.trace(k_rr)) / (n_ref * (n_ref - 1))
        if self._calibrate:
            self._threshold = self._permutation_threshold(ref, n_ref, n_cur)
        self._ring = RingBuffer(self._window, np.float64, width=self._dim)

    def _permutation_threshold(self, ref: np.ndarray, n_ref: int, n_cur: int) -> float:
        null = np.empty(self._n_permutations)
        for p in range(self._n_permutations):
            order = self._rng.permutation(len(ref))
            x, y = ref[order[:n_ref]], ref[order[n_ref : n_ref + n_cur]]
            k = self.bandwidth
            null[p] = mmd2_unbiased(rbf_kernel(x, x, k), rbf_kernel(y, y, k), rbf_kernel(x, y, k))
        return float(np.quantile(null, 1.0 - self._alpha))

    def _rows(self, values: np.ndarray) -> np.ndarray:
        rows = finite_numbers(values, type(self).__name__)
        if rows.ndim == 1:
            rows = rows.reshape(1, -1)
        if rows.ndim != 2:
            raise DataError(f"MMDDetector: expected (n, dim) vectors, got shape {values.shape}")
        return rows

    def _coerce(self, batch: np.ndarray) -> np.ndarray:
        if batch.size == 0:
            return np.empty((0, self._dim))
        rows = self._rows(batch)
        if rows.shape[1] != self._dim:
            raise DataError(f"MMDDetector: vectors of dimension {self._dim} expected, got {rows.shape[1]}")
        return rows

    def _push(self, values: np.ndarray) -> None:
        self._ring.push(values)

    def _compute(self) -> float:
        held = self._ring.values()
        cur = held[np.linspace(0, len(held) - 1, min(len(held), self._n_current)).astype(np.int64)]
        k_cc = rbf_kernel(cur, cur, self.bandwidth)
        m = len(cur)
        yy = (k_cc.sum() - np.trace(k_cc)) / (m * (m - 1))
        return float(self._k_rr_mean + yy - 2.0 * rbf_kernel(self._reference, cur, self.bandwidth).mean())
