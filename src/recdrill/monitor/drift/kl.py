"""Kullback-Leibler divergence of the reference from the current bins (Evidently's ``kl_div``).

``KL = sum(p * ln(p / q))`` in nats, ``p`` the reference shares and ``q`` the current ones after
:func:`~recdrill.monitor.drift.bins.smoothed_shares`; it equals ``scipy.stats.entropy(p, q)``. KL is
asymmetric and unbounded; drift when ``KL >= threshold`` (default 0.1, Evidently's). For a small
shift KL is about half the PSI, so it needs a larger shift than PSI to cross the same threshold.
"""

from __future__ import annotations

import numpy as np

from recdrill.monitor.drift.bins import smoothed_shares
from recdrill.monitor.drift.histogram import BinnedDetector


class KLDetector(BinnedDetector):
    """KL divergence on a sliding window (numeric on quantile bins, or categories).

    Example (the mean moves by one standard deviation at value 2000):
        >>> rng = np.random.default_rng(0)
        >>> kl = KLDetector(rng.normal(size=5000), window=1000)
        >>> stream = np.concatenate([rng.normal(size=2000), rng.normal(1.0, size=1000)])
        >>> next(i for i in range(0, 3000, 100) if kl.update(stream[i : i + 100]).drift_detected)
        2400
    """

    method = "kl"
    higher_is_drift = True
    default_threshold = 0.1

    @staticmethod
    def score_counts(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
        p, q = smoothed_shares(reference_counts, current_counts)
        return float(np.sum(p * np.log(p / q)))
