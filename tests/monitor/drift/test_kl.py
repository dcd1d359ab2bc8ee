"""The Kullback-Leibler divergence detector: ``scipy.stats.entropy(p, q)`` on the smoothed bins, a
worked value, asymmetry, and seeded detection of a mean shift."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import entropy

from recdrill.monitor.drift.bins import smoothed_shares
from recdrill.monitor.drift.kl import KLDetector
from recdrill.monitor.drift.psi import PSIDetector


def test_the_worked_value_of_two_bins() -> None:
    # p = (0.5, 0.5), q = (0.25, 0.75): KL = 0.5 ln(0.5/0.25) + 0.5 ln(0.5/0.75) = 0.5 ln(4/3).
    assert KLDetector.score_counts(np.array([50, 50]), np.array([25, 75])) == pytest.approx(
        0.5 * np.log(4 / 3), rel=1e-12
    )


@pytest.mark.parametrize(
    ("reference_counts", "current_counts"),
    [([10, 20, 30, 40], [40, 30, 20, 10]), ([100, 0, 5], [60, 40, 0])],
)
def test_score_equals_scipy_entropy_of_reference_against_current(
    reference_counts: list[int], current_counts: list[int]
) -> None:
    ref, cur = np.array(reference_counts), np.array(current_counts)
    p, q = smoothed_shares(ref, cur)
    assert KLDetector.score_counts(ref, cur) == pytest.approx(entropy(p, q), rel=1e-12)


def test_kl_is_asymmetric_and_zero_for_equal_shares() -> None:
    a, b = np.array([90, 10]), np.array([50, 50])
    assert KLDetector.score_counts(a, b) != pytest.approx(KLDetector.score_counts(b, a), rel=1e-3)
    assert KLDetector.score_counts(a, 2 * a) == 0.0


def test_for_a_small_shift_kl_is_about_half_the_psi() -> None:
    a, b = np.array([500, 500]), np.array([520, 480])
    kl, psi = KLDetector.score_counts(a, b), PSIDetector.score_counts(a, b)
    assert kl == pytest.approx(psi / 2, rel=0.01)


def test_compare_on_numbers_scores_the_quantile_bins() -> None:
    rng = np.random.default_rng(51)
    reference, current = rng.normal(size=3000), rng.normal(2.5, size=600)  # some bins empty in current
    detector = KLDetector(reference, window=600).update(current)
    bins = detector.binning
    p, q = smoothed_shares(
        np.bincount(bins.codes(reference), minlength=bins.n_bins),
        np.bincount(bins.codes(current), minlength=bins.n_bins),
    )
    assert detector.score == pytest.approx(entropy(p, q), rel=1e-12) and detector.drift_detected


def test_a_one_sigma_mean_shift_is_detected_after_onset() -> None:
    rng = np.random.default_rng(1)
    kl = KLDetector(rng.normal(size=5000), window=1000)
    stream = np.concatenate([rng.normal(size=2000), rng.normal(1.0, size=1000)])
    flags = [kl.update(stream[i : i + 100]).drift_detected for i in range(0, 3000, 100)]
    assert flags.index(True) * 100 == 2400  # the mean moves at value 2000


def test_method_metadata() -> None:
    assert (KLDetector.method, KLDetector.higher_is_drift, KLDetector.default_threshold) == ("kl", True, 0.1)
    assert KLDetector.min_current == 500
