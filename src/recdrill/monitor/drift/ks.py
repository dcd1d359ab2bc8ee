"""Two-sample Kolmogorov-Smirnov test: Evidently's default for numeric columns of small references.

The statistic is the largest gap between the two empirical CDFs; it equals
``scipy.stats.ks_2samp(reference, current).statistic`` exactly. The p-value is the two-sided
asymptotic one, ``scipy.stats.kstwo.sf(D, round(m n / (m + n)))`` (what ``ks_2samp`` returns with
``method="asymp"``): it costs microseconds whatever the window, where the exact distribution costs
O(m n). Drift when ``p < threshold`` (default 0.05, Evidently's).
"""

from __future__ import annotations

import numpy as np

from recdrill.monitor.drift.detector import Detector, finite_numbers
from recdrill.monitor.drift.window import SortedWindow


class KSDetector(Detector):
    """Kolmogorov-Smirnov drift test on a sliding window of numbers.

    The window is kept sorted with each value's rank in the sorted reference, so an update costs
    O(window) (the gap between the CDFs can only peak at a window value or just before the next one).

    A stream is tested again after every batch, so a monitor wants a stricter threshold than one
    batch test does (here 0.001): the mean moves by half a standard deviation at value 2000.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> ks = KSDetector(rng.normal(size=1000), threshold=0.001, window=500)
        >>> stream = np.concatenate([rng.normal(size=2000), rng.normal(0.5, size=1000)])
        >>> next(i for i in range(0, 3000, 100) if ks.update(stream[i : i + 100]).drift_detected)
        2100
    """

    method = "ks"
    higher_is_drift = False
    default_threshold = 0.05
    kinds = frozenset({"numeric"})

    def _fit(self, reference: np.ndarray) -> None:
        ref = np.sort(finite_numbers(reference.ravel(), type(self).__name__))
        self._sorted = SortedWindow(ref, self._window)

    def _coerce(self, batch: np.ndarray) -> np.ndarray:
        return finite_numbers(super()._coerce(batch), type(self).__name__)

    def _push(self, values: np.ndarray) -> None:
        self._sorted.push(values)

    def statistic(self) -> float:
        """The KS statistic D of the current window (0.0 when it is empty)."""
        w = self._sorted
        n, m = len(w), len(w.reference)
        if n == 0:
            return 0.0
        # The last of each run of equal window values: there the current CDF is exact.
        last = np.flatnonzero(np.append(w.values[1:] != w.values[:-1], True))
        cdf_cur = (last + 1) / n
        at_values = np.abs(w.rank_right[last] / m - cdf_cur)
        # Just before the next distinct window value the reference CDF is #(ref < next) / m.
        before_next = np.abs(w.rank_left[last[1:]] / m - cdf_cur[:-1])
        before_first = w.rank_left[last[0]] / m
        return float(max(at_values.max(), before_next.max(initial=0.0), before_first))

    def _compute(self) -> float:
        from scipy.stats import kstwo  # imported on first use: scipy.stats costs seconds at start-up

        n, m = len(self._sorted), len(self._sorted.reference)
        big, small = max(n, m), min(n, m)
        return float(kstwo.sf(self.statistic(), np.round(big * small / (big + small))))
