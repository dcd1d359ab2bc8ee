"""Population Stability Index: the credit-scoring classic, binned with documented smoothing.

``PSI = sum((q - p) * ln(q / p))`` over the bins, ``p`` the reference shares and ``q`` the current
ones after :func:`~recdrill.monitor.drift.bins.smoothed_shares` (1e-4 for an empty bin, renormalised).
Drift when ``PSI >= threshold``; the default 0.1 is Evidently's (the usual reading: below 0.1 no
significant change, 0.1-0.25 moderate, above 0.25 major).
"""

from __future__ import annotations

import numpy as np

from recdrill.monitor.drift.bins import smoothed_shares
from recdrill.monitor.drift.histogram import BinnedDetector


class PSIDetector(BinnedDetector):
    """Population Stability Index on a sliding window (numeric on quantile bins, or categories).

    Example (the mean moves by half a standard deviation at value 2000):
        >>> rng = np.random.default_rng(0)
        >>> psi = PSIDetector(rng.normal(size=5000), window=1000)
        >>> stream = np.concatenate([rng.normal(size=2000), rng.normal(0.5, size=1000)])
        >>> next(i for i in range(0, 3000, 100) if psi.update(stream[i : i + 100]).drift_detected)
        2600
    """

    method = "psi"
    higher_is_drift = True
    default_threshold = 0.1

    @staticmethod
    def score_counts(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
        p, q = smoothed_shares(reference_counts, current_counts)
        return float(np.sum((q - p) * np.log(q / p)))
