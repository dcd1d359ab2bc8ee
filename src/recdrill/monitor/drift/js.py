"""Jensen-Shannon distance: Evidently's default for categorical columns of large references.

Following Evidently's ``jensenshannon`` test, the score is the Jensen-Shannon **distance** (the
square root of the JS divergence) with the natural logarithm, as
``scipy.spatial.distance.jensenshannon(p, q)`` computes it with its default base; it is symmetric
and lies in [0, sqrt(ln 2)] ~ [0, 0.83]. ``p`` and ``q`` are the reference and current bin shares
after :func:`~recdrill.monitor.drift.bins.smoothed_shares`. Drift when ``score >= threshold`` (default
0.1, Evidently's).
"""

from __future__ import annotations

import numpy as np

from recdrill.monitor.drift.bins import smoothed_shares
from recdrill.monitor.drift.histogram import BinnedDetector


class JSDetector(BinnedDetector):
    """Jensen-Shannon distance on a sliding window (numeric on quantile bins, or categories).

    Example (the category mix changes at value 2000):
        >>> rng = np.random.default_rng(0)
        >>> js = JSDetector(rng.choice(["a", "b", "c"], size=5000, p=[0.5, 0.3, 0.2]), window=1000)
        >>> stream = np.concatenate(
        ...     [rng.choice(["a", "b", "c"], size=2000, p=[0.5, 0.3, 0.2]),
        ...      rng.choice(["a", "b", "c"], size=1000, p=[0.3, 0.3, 0.4])])
        >>> next(i for i in range(0, 3000, 100) if js.update(stream[i : i + 100]).drift_detected)
        2500
    """

    method = "js"
    higher_is_drift = True
    default_threshold = 0.1

    @staticmethod
    def score_counts(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
        p, q = smoothed_shares(reference_counts, current_counts)
        m = (p + q) / 2
        divergence = (np.sum(p * np.log(p / m)) + np.sum(q * np.log(q / m))) / 2
        return float(np.sqrt(max(divergence, 0.0)))
