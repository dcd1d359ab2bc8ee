"""Maximum Mean Discrepancy for vectors: the RBF kernel, the unbiased estimate, the median bandwidth,
the seeded permutation threshold and subsampling, and what the detector refuses."""

from __future__ import annotations

import numpy as np
import pytest

from recdrill.errors import ConfigError, DataError
from recdrill.monitor.drift.mmd import MMDDetector, median_bandwidth, mmd2_unbiased, rbf_kernel


def test_rbf_kernel_values_and_shape() -> None:
    x = np.array([[0.0, 0.0]])
    y = np.array([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]])
    kernel = rbf_kernel(x, y, bandwidth=1.0)
    assert kernel.shape == (1, 3)
    np.testing.assert_allclose(kernel, [[np.exp(-0.5), np.exp(-2.0), 1.0]], rtol=1e-12)
    np.testing.assert_allclose(
        rbf_kernel(x, y, bandwidth=2.0), [[np.exp(-1 / 8), np.exp(-0.5), 1.0]], rtol=1e-12
    )


def test_mmd2_unbiased_leaves_out_the_diagonals() -> None:
    k_xx = np.array([[1.0, 0.4], [0.4, 1.0]])
    k_yy = np.array([[1.0, 0.6, 0.2], [0.6, 1.0, 0.4], [0.2, 0.4, 1.0]])
    k_xy = np.full((2, 3), 0.3)
    # xx = 0.4; yy = (0.6 + 0.2 + 0.4) * 2 / 6 = 0.4; xy = 0.3
    assert mmd2_unbiased(k_xx, k_yy, k_xy) == pytest.approx(0.4 + 0.4 - 0.6, rel=1e-12)


def test_median_bandwidth_is_the_median_pairwise_distance_or_one() -> None:
    assert median_bandwidth(np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 8.0]])) == pytest.approx(5.0)
    assert median_bandwidth(np.ones((4, 2))) == 1.0  # all rows equal
    assert median_bandwidth(np.zeros((1, 3))) == 1.0  # no pairs


def test_the_score_is_the_unbiased_mmd2_against_the_seeded_reference_subsample() -> None:
    rng = np.random.default_rng(71)
    reference, current = rng.normal(size=(40, 3)), rng.normal(0.5, size=(10, 3))
    detector = MMDDetector(reference, threshold=0.1, window=10, seed=5).update(current)
    kept = reference[np.random.default_rng(5).permutation(40)[:30]]  # reference minus n_current rows
    bandwidth = median_bandwidth(kept)
    assert detector.bandwidth == pytest.approx(bandwidth, rel=1e-12)
    expected = mmd2_unbiased(
        rbf_kernel(kept, kept, bandwidth),
        rbf_kernel(current, current, bandwidth),
        rbf_kernel(kept, current, bandwidth),
    )
    assert detector.score == pytest.approx(expected, rel=1e-9)


def test_a_full_window_is_subsampled_evenly_over_time() -> None:
    rng = np.random.default_rng(72)
    reference = rng.normal(size=(400, 2))
    stream = rng.normal(size=(300, 2)) + np.linspace(0, 1, 300)[:, None]  # a slow drift
    detector = MMDDetector(reference, threshold=1.0, window=300, max_rows=100, seed=3).update(stream)
    assert detector.n_seen == 300
    evenly = stream[np.linspace(0, 299, 100).astype(np.int64)]
    batch = MMDDetector.compare(reference, evenly, threshold=1.0, max_rows=100, seed=3)
    assert detector.score == pytest.approx(batch.score, rel=1e-9)


def test_the_calibrated_threshold_is_seeded_and_a_given_one_is_kept() -> None:
    reference = np.random.default_rng(73).normal(size=(200, 3))
    first = MMDDetector(reference, window=50, max_rows=50, n_permutations=20, seed=1)
    again = MMDDetector(reference, window=50, max_rows=50, n_permutations=20, seed=1)
    other = MMDDetector(reference, window=50, max_rows=50, n_permutations=20, seed=2)
    assert first.threshold == again.threshold > 0
    assert other.threshold != first.threshold
    assert MMDDetector(reference, threshold=0.25, window=50, max_rows=50).threshold == 0.25


def test_min_current_is_the_calibrated_current_size() -> None:
    reference = np.random.default_rng(74).normal(size=(300, 2))
    params = {"n_permutations": 2, "threshold": 0.1}
    assert MMDDetector(reference, window=500, max_rows=200, **params).min_current == 150  # len // 2
    assert MMDDetector(reference, window=80, max_rows=200, **params).min_current == 80
    assert MMDDetector(reference, window=500, max_rows=60, **params).min_current == 60
    assert MMDDetector(reference, window=500, max_rows=60, min_current=90, **params).min_current == 90


def test_one_vector_is_a_batch_of_one_and_an_empty_batch_changes_nothing() -> None:
    detector = MMDDetector(np.random.default_rng(75).normal(size=(20, 3)), threshold=0.1, window=10)
    assert detector.update(np.zeros(3)).n_seen == 1
    assert detector.update(np.empty((0, 3))).n_seen == 1
    assert (detector.score, detector.drift_detected) == (0.0, False)  # below min_current


def test_a_shift_of_every_coordinate_is_detected_after_onset() -> None:
    rng = np.random.default_rng(1)
    mmd = MMDDetector(rng.normal(size=(400, 4)), window=200, max_rows=100, n_permutations=50, seed=1)
    stream = np.concatenate([rng.normal(size=(1000, 4)), rng.normal(0.5, size=(500, 4))])
    flags = [mmd.update(stream[i : i + 50]).drift_detected for i in range(0, 1500, 50)]
    assert flags.index(True) * 50 == 1050  # the shift starts at vector 1000


@pytest.mark.parametrize(
    "params",
    [{"max_rows": 1}, {"alpha": 0.0}, {"alpha": 1.0}, {"n_permutations": 0}],
)
def test_bad_parameters_are_named(params: dict[str, float]) -> None:
    with pytest.raises(
        ConfigError, match="MMDDetector needs max_rows >= 2, 0 < alpha < 1 and n_permutations >= 1"
    ):
        MMDDetector(np.zeros((10, 2)), **params)  # type: ignore[arg-type]


def test_bad_vectors_are_refused() -> None:
    with pytest.raises(DataError, match="the reference needs at least 4 vectors, got 3"):
        MMDDetector(np.zeros((3, 2)))
    with pytest.raises(DataError, match="the reference needs at least 4 vectors, got 1"):
        MMDDetector(np.zeros(8))  # a 1-D reference is one vector
    with pytest.raises(DataError, match=r"expected \(n, dim\) vectors, got shape \(2, 2, 2\)"):
        MMDDetector(np.zeros((2, 2, 2)))
    detector = MMDDetector(np.random.default_rng(76).normal(size=(10, 3)), n_permutations=2)
    with pytest.raises(DataError, match="vectors of dimension 3 expected, got 4"):
        detector.update(np.zeros((2, 4)))
    with pytest.raises(DataError, match="MMDDetector: values must be finite numbers"):
        detector.update(np.full((1, 3), np.nan))
