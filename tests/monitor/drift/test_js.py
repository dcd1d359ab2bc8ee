"""The Jensen-Shannon distance detector: scipy's ``jensenshannon`` (natural log) on the smoothed bins,
symmetric and bounded by sqrt(ln 2), and seeded detection of a category shift."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon

from recdrill.monitor.drift.bins import smoothed_shares
from recdrill.monitor.drift.js import JSDetector


@pytest.mark.parametrize(
    ("reference_counts", "current_counts"),
    [
        ([50, 50], [25, 75]),
        ([10, 20, 30, 40], [40, 30, 20, 10]),
        ([100, 0, 5], [60, 40, 0]),  # one-sided empty bins: smoothed
    ],
)
def test_score_equals_scipys_jensenshannon_distance_on_the_smoothed_shares(
    reference_counts: list[int], current_counts: list[int]
) -> None:
    ref, cur = np.array(reference_counts), np.array(current_counts)
    p, q = smoothed_shares(ref, cur)
    assert JSDetector.score_counts(ref, cur) == pytest.approx(jensenshannon(p, q), rel=1e-12)


def test_the_distance_is_symmetric_and_zero_for_equal_shares() -> None:
    a, b = np.array([70, 20, 10]), np.array([30, 30, 40])
    assert JSDetector.score_counts(a, b) == pytest.approx(JSDetector.score_counts(b, a), rel=1e-12)
    assert JSDetector.score_counts(a, 3 * a) == 0.0


def test_disjoint_categories_come_close_to_the_bound_sqrt_ln2() -> None:
    result = JSDetector.compare(np.array(["a"] * 100), np.array(["b"] * 100))  # "b" is unseen
    assert 0.83 < result.score < np.sqrt(np.log(2))
    assert (result.method, result.threshold, result.drift) == ("js", 0.1, True)


def test_numbers_are_compared_on_the_references_quantile_bins() -> None:
    rng = np.random.default_rng(41)
    reference, current = rng.normal(size=2000), rng.normal(0.2, size=700)
    detector = JSDetector(reference, window=700).update(current)
    bins = detector.binning
    assert bins.edges is not None and bins.n_bins == 10
    p, q = smoothed_shares(
        np.bincount(bins.codes(reference), minlength=10), np.bincount(bins.codes(current), minlength=10)
    )
    assert detector.score == pytest.approx(jensenshannon(p, q), rel=1e-12)


def test_a_change_of_category_mix_is_detected_after_onset() -> None:
    rng = np.random.default_rng(1)
    p_before, p_after = [0.5, 0.3, 0.2], [0.3, 0.3, 0.4]
    js = JSDetector(rng.choice(["a", "b", "c"], size=5000, p=p_before), window=1000)
    stream = np.concatenate(
        [
            rng.choice(["a", "b", "c"], size=2000, p=p_before),
            rng.choice(["a", "b", "c"], size=1000, p=p_after),
        ]
    )
    flags = [js.update(stream[i : i + 100]).drift_detected for i in range(0, 3000, 100)]
    assert flags.index(True) * 100 == 2400  # the mix changes at value 2000


def test_method_metadata_and_the_small_sample_floor() -> None:
    assert (JSDetector.method, JSDetector.higher_is_drift, JSDetector.default_threshold) == ("js", True, 0.1)
    assert JSDetector.kinds == frozenset({"numeric", "categorical"})
    detector = JSDetector(np.array(["a"] * 600), window=1000).update(np.array(["b"] * 499))
    assert detector.min_current == 500 and (detector.score, detector.drift_detected) == (0.0, False)
