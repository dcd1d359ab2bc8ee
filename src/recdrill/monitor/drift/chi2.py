"""Pearson's chi-square test of homogeneity: Evidently's default for categorical columns of small
references.

The reference and current counts form a 2 x K contingency table (categories empty in both samples
are left out); the statistic is Pearson's ``sum((observed - expected)^2 / expected)`` with the
expected counts from the pooled shares, on K - 1 degrees of freedom, as
``scipy.stats.chi2_contingency(table, correction=False)`` computes it. Unlike a goodness-of-fit test
against the reference shares, it accounts for the reference being a sample too, so a small reference
does not inflate false alarms. Drift when ``p < threshold`` (default 0.05, Evidently's).

The test runs on bins; it fits categories (numbers with many values go into quantile bins, but
``recdrill drift check --method chi2`` forces it on categorical columns only, as Evidently allows).
"""

from __future__ import annotations

import numpy as np

from recdrill.monitor.drift.histogram import BinnedDetector


class Chi2Detector(BinnedDetector):
    """Chi-square homogeneity test on a sliding window of categories.

    A stream is tested again after every batch, so a monitor wants a stricter threshold than one
    batch test does (here 0.001): the category mix changes at value 2000.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> test = Chi2Detector(
        ...     rng.choice(["a", "b", "c"], size=800, p=[0.5, 0.3, 0.2]), threshold=0.001, window=500)
        >>> stream = np.concatenate(
        ...     [rng.choice(["a", "b", "c"], size=2000, p=[0.5, 0.3, 0.2]),
        ...      rng.choice(["a", "b", "c"], size=1000, p=[0.3, 0.3, 0.4])])
        >>> next(i for i in range(0, 3000, 100) if test.update(stream[i : i + 100]).drift_detected)
        2200
    """

    method = "chi2"
    higher_is_drift = False
    default_threshold = 0.05
    kinds = frozenset({"categorical"})
    min_current = 30  # a p-value accounts for the sample size itself

    @staticmethod
    def statistic(reference_counts: np.ndarray, current_counts: np.ndarray) -> tuple[float, int]:
        """Pearson's statistic and degrees of freedom of the 2 x K table."""
        keep = (reference_counts + current_counts) > 0
        table = np.stack([reference_counts[keep], current_counts[keep]]).astype(np.float64)
        expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0) / table.sum()
        return float(np.sum((table - expected) ** 2 / expected)), int(keep.sum()) - 1

    @staticmethod
    def score_counts(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
        from scipy.stats import chi2  # imported on first use: scipy.stats costs seconds at start-up

        stat, dof = Chi2Detector.statistic(reference_counts, current_counts)
        return 1.0 if dof < 1 else float(chi2.sf(stat, dof))
