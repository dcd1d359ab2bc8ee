"""Pearson's chi-square homogeneity test on a sliding window of categories: scipy's
``chi2_contingency(correction=False)`` exactly, empty categories left out, seeded detection."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chi2_contingency

from recdrill.monitor.drift.chi2 import Chi2Detector

CATS = np.array(["a", "b", "c", "d"])


def test_statistic_dof_and_p_value_equal_scipys_contingency_test() -> None:
    reference_counts = np.array([40, 25, 20, 15])
    current_counts = np.array([20, 30, 25, 5])
    expected = chi2_contingency(np.stack([reference_counts, current_counts]), correction=False)
    stat, dof = Chi2Detector.statistic(reference_counts, current_counts)
    assert stat == pytest.approx(expected.statistic, rel=1e-12) and dof == expected.dof == 3
    assert Chi2Detector.score_counts(reference_counts, current_counts) == pytest.approx(
        expected.pvalue, rel=1e-12
    )


def test_a_category_empty_in_both_samples_is_left_out() -> None:
    with_empty = Chi2Detector.statistic(np.array([10, 0, 20]), np.array([15, 0, 5]))
    without = Chi2Detector.statistic(np.array([10, 20]), np.array([15, 5]))
    assert with_empty == without
    assert with_empty[1] == 1


def test_a_single_category_has_no_degrees_of_freedom_and_p_value_one() -> None:
    assert Chi2Detector.statistic(np.array([10, 0]), np.array([5, 0])) == (0.0, 0)
    assert Chi2Detector.score_counts(np.array([10, 0]), np.array([5, 0])) == 1.0
    detector = Chi2Detector(np.array(["a"] * 50), window=40).update(np.array(["a"] * 40))
    assert (detector.score, detector.drift_detected) == (1.0, False)


def test_the_same_shares_give_statistic_zero() -> None:
    reference = np.repeat(CATS, [40, 30, 20, 10])
    result = Chi2Detector.compare(reference, np.repeat(CATS, [4, 3, 2, 1]))
    assert (result.method, result.score, result.threshold, result.drift) == (
        "chi2",
        pytest.approx(1.0),
        0.05,
        False,
    )


def test_the_sliding_window_and_an_unseen_category_are_scored_like_scipy() -> None:
    rng = np.random.default_rng(31)
    reference = rng.choice(CATS, 400, p=[0.4, 0.3, 0.2, 0.1])
    detector = Chi2Detector(reference, window=150)
    stream = np.concatenate([rng.choice(CATS, 200), np.array(["new"] * 12), rng.choice(CATS, 30)])
    for start in range(0, len(stream), 70):
        detector.update(stream[start : start + 70])
    window = stream[-150:]
    labels = [*CATS, "new"]
    table = [[int(np.sum(sample == c)) for c in labels] for sample in (reference, window)]
    expected = chi2_contingency(table, correction=False)
    assert detector.score == pytest.approx(expected.pvalue, rel=1e-9)
    assert detector.drift_detected is bool(expected.pvalue < 0.05)


def test_chi2_waits_for_30_values_not_the_histogram_500() -> None:
    detector = Chi2Detector(np.repeat(CATS, 25))
    assert detector.min_current == 30
    detector.update(np.array(["d"] * 29))
    assert (detector.score, detector.drift_detected) == (1.0, False)
    assert detector.update(np.array(["d"])).drift_detected


def test_a_change_of_category_mix_is_detected_after_onset() -> None:
    rng = np.random.default_rng(1)
    p_before, p_after = [0.5, 0.3, 0.2], [0.3, 0.3, 0.4]
    test = Chi2Detector(rng.choice(["a", "b", "c"], size=800, p=p_before), threshold=0.001, window=500)
    stream = np.concatenate(
        [
            rng.choice(["a", "b", "c"], size=2000, p=p_before),
            rng.choice(["a", "b", "c"], size=1000, p=p_after),
        ]
    )
    flags = [test.update(stream[i : i + 100]).drift_detected for i in range(0, 3000, 100)]
    assert flags.index(True) * 100 == 2200  # the mix changes at value 2000


def test_method_metadata() -> None:
    assert (Chi2Detector.method, Chi2Detector.higher_is_drift, Chi2Detector.default_threshold) == (
        "chi2",
        False,
        0.05,
    )
    assert Chi2Detector.kinds == frozenset({"categorical"})
