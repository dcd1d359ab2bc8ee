"""The normed Wasserstein-1 detector: scipy's ``wasserstein_distance`` over the reference std, on the
sliding window, the std floor, large offsets, and seeded detection of a mean shift."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import wasserstein_distance

from recdrill.errors import DataError
from recdrill.monitor.drift.wasserstein import MIN_NORM, WassersteinDetector


def test_distance_and_score_equal_scipy_over_the_population_std() -> None:
    rng = np.random.default_rng(61)
    for reference, current in [
        (rng.normal(size=800), rng.normal(0.3, 1.4, size=123)),
        (rng.exponential(size=500).round(1), rng.exponential(2.0, size=500).round(1)),  # ties
        (rng.integers(0, 5, 300).astype(float), rng.integers(0, 5, 40).astype(float)),
    ]:
        detector = WassersteinDetector(reference, window=len(current), min_current=1).update(current)
        expected = wasserstein_distance(reference, current)
        assert detector.distance() == pytest.approx(expected, rel=1e-9, abs=1e-12)
        assert detector.score == pytest.approx(expected / np.std(reference), rel=1e-9, abs=1e-12)


def test_the_sliding_window_is_scored_as_its_last_values() -> None:
    rng = np.random.default_rng(62)
    reference = rng.gamma(2.0, size=1500)
    detector = WassersteinDetector(reference, window=600)
    stream = np.concatenate([rng.gamma(2.0, size=700), rng.gamma(2.5, size=400)])
    for start in range(0, len(stream), 130):
        detector.update(stream[start : start + 130])
    expected = wasserstein_distance(reference, stream[-600:]) / np.std(reference)
    assert detector.n_seen == 600 and detector.score == pytest.approx(expected, rel=1e-9)


def test_prices_far_from_zero_keep_full_precision() -> None:
    rng = np.random.default_rng(63)
    reference, current = rng.normal(1e6, 50.0, 3000), rng.normal(1e6 + 10.0, 50.0, 600)
    detector = WassersteinDetector(reference, window=600).update(current)
    assert detector.distance() == pytest.approx(wasserstein_distance(reference, current), rel=1e-9)


def test_a_constant_reference_is_normed_by_the_floor_not_zero() -> None:
    detector = WassersteinDetector(np.full(10, 5.0), window=3, min_current=1).update([5.001] * 3)
    assert detector.distance() == pytest.approx(0.001, rel=1e-9)
    assert detector.score == pytest.approx(0.001 / MIN_NORM, rel=1e-9)
    assert WassersteinDetector.compare(np.full(10, 5.0), np.full(4, 5.0)).score == 0.0


def test_an_empty_window_has_distance_zero() -> None:
    detector = WassersteinDetector(np.arange(10.0))
    assert (detector.distance(), detector.score) == (0.0, 0.0)


def test_below_500_values_the_distance_is_neutral() -> None:
    detector = WassersteinDetector(np.random.default_rng(64).normal(size=2000))
    assert detector.min_current == 500
    detector.update(np.full(499, 10.0))
    assert (detector.score, detector.drift_detected) == (0.0, False)
    assert detector.update([10.0]).drift_detected


def test_a_half_sigma_mean_shift_is_detected_after_onset() -> None:
    rng = np.random.default_rng(1)
    wd = WassersteinDetector(rng.normal(size=5000), window=1000)
    stream = np.concatenate([rng.normal(size=2000), rng.normal(0.5, size=1000)])
    flags = [wd.update(stream[i : i + 100]).drift_detected for i in range(0, 3000, 100)]
    assert flags.index(True) * 100 == 2100  # the mean moves at value 2000


def test_method_metadata_and_bad_data() -> None:
    assert (WassersteinDetector.method, WassersteinDetector.higher_is_drift) == ("wasserstein", True)
    assert WassersteinDetector.default_threshold == 0.1
    assert WassersteinDetector.kinds == frozenset({"numeric"})
    with pytest.raises(DataError, match="WassersteinDetector: expected numbers"):
        WassersteinDetector(np.array(["a", "b"]))
    with pytest.raises(DataError, match="WassersteinDetector: values must be finite numbers"):
        WassersteinDetector(np.arange(3.0)).update([np.nan])
