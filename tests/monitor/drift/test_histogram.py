"""The histogram methods' shared state: reference and current bin counts over a sliding window."""

from __future__ import annotations

import numpy as np
import pytest

from recdrill.monitor.drift.histogram import BinnedDetector


class TotalVariation(BinnedDetector):
    """Half the L1 distance between the two bins' shares: a histogram distance for the tests."""

    method = "tv"
    higher_is_drift = True
    default_threshold = 0.2

    @staticmethod
    def score_counts(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
        p = reference_counts / reference_counts.sum()
        q = current_counts / current_counts.sum()
        return float(np.abs(p - q).sum() / 2)


def test_reference_counts_are_the_references_bins() -> None:
    reference = np.repeat(["a", "b", "c"], [5, 3, 2])
    detector = TotalVariation(reference)
    assert detector.binning.categories.tolist() == ["a", "b", "c"]
    assert detector.reference_counts.tolist() == [5, 3, 2, 0]  # the last bin: unseen categories
    assert detector.current_counts.tolist() == [0, 0, 0, 0]


def test_current_counts_follow_the_window_as_values_are_evicted() -> None:
    rng = np.random.default_rng(0)
    reference = rng.choice(["a", "b", "c"], 300)
    detector = TotalVariation(reference, window=40, min_current=1)
    stream: list[str] = []
    for size in (7, 40, 13, 1, 90, 22):
        batch = rng.choice(["a", "b", "c", "new"], size)
        detector.update(batch)
        stream.extend(batch.tolist())
        expected = np.bincount(detector.binning.codes(np.array(stream[-40:])), minlength=4)
        assert detector.current_counts.tolist() == expected.tolist()
        assert detector.score == pytest.approx(
            TotalVariation.score_counts(detector.reference_counts, expected), rel=1e-12
        )


def test_a_histogram_detector_waits_for_500_values_unless_told_otherwise() -> None:
    reference = np.arange(1000.0)
    assert TotalVariation(reference, window=1000).min_current == 500
    assert TotalVariation(reference, window=200).min_current == 200
    assert TotalVariation(reference, window=1000, min_current=50).min_current == 50
    waiting = TotalVariation(reference, window=1000).update(np.full(499, 5000.0))
    assert (waiting.score, waiting.drift_detected) == (0.0, False)
    assert waiting.update([5000.0]).score == pytest.approx(0.9)  # everything in the top bin


def test_kind_and_n_bins_choose_the_binning() -> None:
    reference = np.tile(np.arange(50.0), 4)
    quantiles = TotalVariation(reference, n_bins=5)
    assert quantiles.binning.edges is not None and quantiles.binning.n_bins == 5
    assert quantiles.reference_counts.tolist() == [40, 40, 40, 40, 40]
    categories = TotalVariation(reference, kind="categorical")
    assert categories.binning.edges is None and categories.binning.n_bins == 51
    assert categories.binning.categories.tolist() == np.arange(50.0).tolist()
    assert categories.reference_counts.tolist() == [4] * 50 + [0]


def test_compare_scores_the_count_vectors_of_both_samples() -> None:
    reference = np.repeat(["a", "b"], [50, 50])
    current = np.repeat(["a", "b"], [20, 80])
    result = TotalVariation.compare(reference, current)
    assert (result.method, result.score, result.threshold, result.drift) == (
        "tv",
        pytest.approx(0.3),
        0.2,
        True,
    )
