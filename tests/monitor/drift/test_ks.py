"""The two-sample Kolmogorov-Smirnov detector: scipy's statistic and asymptotic p-value exactly, on
the sliding window, and seeded detection of a mean shift."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import ks_2samp

from recdrill.errors import DataError
from recdrill.monitor.drift.ks import KSDetector


def test_statistic_and_p_value_equal_scipys_asymptotic_two_sample_test() -> None:
    rng = np.random.default_rng(21)
    for reference, current in [
        (rng.normal(size=400), rng.normal(0.3, 1.1, size=250)),
        (rng.exponential(size=900), rng.exponential(1.2, size=60)),
        (rng.integers(0, 8, 500).astype(float), rng.integers(1, 9, 300).astype(float)),  # heavy ties
    ]:
        detector = KSDetector(reference, window=len(current)).update(current)
        expected = ks_2samp(reference, current, method="asymp")
        assert detector.statistic() == pytest.approx(expected.statistic, abs=1e-15)
        assert detector.score == pytest.approx(expected.pvalue, rel=1e-12)


def test_the_sliding_window_is_scored_as_its_last_values() -> None:
    rng = np.random.default_rng(22)
    reference = rng.normal(size=600).round(2)
    detector = KSDetector(reference, window=200)
    stream = np.concatenate([rng.normal(size=450), rng.normal(0.4, size=170)]).round(2)
    for start in range(0, len(stream), 90):
        detector.update(stream[start : start + 90])
    window = stream[-200:]
    expected = ks_2samp(reference, window, method="asymp")
    assert detector.n_seen == 200
    assert detector.statistic() == pytest.approx(expected.statistic, abs=1e-15)
    assert detector.score == pytest.approx(expected.pvalue, rel=1e-12)


def test_identical_samples_have_no_gap_and_disjoint_ones_the_largest() -> None:
    reference = np.arange(100.0)
    same = KSDetector(reference, window=100).update(reference)
    assert (same.statistic(), same.score, same.drift_detected) == (0.0, 1.0, False)
    beyond = KSDetector(reference, window=50).update(np.arange(200.0, 250.0))
    assert beyond.statistic() == 1.0 and beyond.drift_detected
    below = KSDetector(reference, window=50).update(np.arange(-60.0, -10.0))
    assert below.statistic() == 1.0


def test_an_empty_window_has_statistic_zero_and_a_neutral_p_value() -> None:
    detector = KSDetector(np.arange(10.0))
    assert (detector.statistic(), detector.score, detector.n_seen) == (0.0, 1.0, 0)


def test_below_30_values_a_p_value_test_stays_neutral_whatever_it_sees() -> None:
    detector = KSDetector(np.random.default_rng(23).normal(size=500))
    assert detector.min_current == 30
    detector.update(np.full(29, 100.0))
    assert (detector.score, detector.drift_detected) == (1.0, False)
    detector.update([100.0])
    assert detector.score < 1e-10 and detector.drift_detected


def test_a_half_sigma_mean_shift_is_detected_one_batch_after_onset() -> None:
    rng = np.random.default_rng(1)
    ks = KSDetector(rng.normal(size=1000), threshold=0.001, window=500)
    stream = np.concatenate([rng.normal(size=2000), rng.normal(0.5, size=1000)])
    flags = [ks.update(stream[i : i + 100]).drift_detected for i in range(0, 3000, 100)]
    assert flags.index(True) * 100 == 2100  # the shift starts at value 2000


def test_method_metadata() -> None:
    assert (KSDetector.method, KSDetector.higher_is_drift, KSDetector.default_threshold) == (
        "ks",
        False,
        0.05,
    )
    assert KSDetector.kinds == frozenset({"numeric"})


def test_non_numbers_are_refused() -> None:
    with pytest.raises(DataError, match="KSDetector: expected numbers"):
        KSDetector(np.array(["a", "b"]))
    with pytest.raises(DataError, match="KSDetector: values must be finite numbers"):
        KSDetector(np.array([1.0, 2.0])).update(np.array([np.inf]))
