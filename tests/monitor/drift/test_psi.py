"""The Population Stability Index detector: worked values, symmetry, the smoothing of a new
category, and seeded detection of a mean shift."""

from __future__ import annotations

import numpy as np
import pytest

from recdrill.monitor.drift.bins import EPSILON
from recdrill.monitor.drift.psi import PSIDetector


def test_the_worked_value_of_two_bins() -> None:
    # p = (0.5, 0.5), q = (0.25, 0.75): PSI = -0.25 ln(0.5) + 0.25 ln(1.5) = 0.25 ln 3.
    assert PSIDetector.score_counts(np.array([50, 50]), np.array([25, 75])) == pytest.approx(
        0.25 * np.log(3), rel=1e-12
    )


def test_psi_is_symmetric_and_zero_for_equal_shares() -> None:
    a, b = np.array([70, 20, 10]), np.array([30, 30, 40])
    assert PSIDetector.score_counts(a, b) == pytest.approx(PSIDetector.score_counts(b, a), rel=1e-12)
    assert PSIDetector.score_counts(a, 5 * a) == 0.0


def test_a_new_category_gets_the_smoothed_share_and_counts_heavily() -> None:
    result = PSIDetector.compare(np.array(["a"] * 100), np.array(["a"] * 90 + ["new"] * 10))
    p = np.array([1.0, EPSILON]) / (1 + EPSILON)
    q = np.array([0.9, 0.1])
    assert result.score == pytest.approx(float(np.sum((q - p) * np.log(q / p))), rel=1e-12)
    assert result.score > 0.7 and (result.method, result.threshold, result.drift) == ("psi", 0.1, True)


def test_the_threshold_is_reached_inclusively() -> None:
    reference = np.repeat(["a", "b"], [50, 50])
    current = np.repeat(["a", "b"], [25, 75])
    score = PSIDetector.compare(reference, current).score
    assert score == pytest.approx(0.25 * np.log(3), rel=1e-12)
    assert PSIDetector.compare(reference, current, threshold=score).drift
    assert not PSIDetector.compare(reference, current, threshold=score + 1e-9).drift


def test_a_half_sigma_mean_shift_is_detected_after_onset() -> None:
    rng = np.random.default_rng(1)
    psi = PSIDetector(rng.normal(size=5000), window=1000)
    stream = np.concatenate([rng.normal(size=2000), rng.normal(0.5, size=1000)])
    flags = [psi.update(stream[i : i + 100]).drift_detected for i in range(0, 3000, 100)]
    assert flags.index(True) * 100 == 2600  # the mean moves at value 2000


def test_method_metadata() -> None:
    assert (PSIDetector.method, PSIDetector.higher_is_drift, PSIDetector.default_threshold) == (
        "psi",
        True,
        0.1,
    )
    assert PSIDetector.kinds == frozenset({"numeric", "categorical"})
