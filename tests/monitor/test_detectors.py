"""Drift detectors: textbook values, seeded false-alarm and detection rates, the streaming window.

Rates are counted over many seeds with the default thresholds and a full default window (1,000
values): p-value tests (KS, chi-square, MMD's permutation threshold) may alarm on about alpha = 5% of
stationary windows (asserted <= 8%); the distances (PSI, KL, JS, normed Wasserstein) are documented
at <= 5% for windows of 1,000 and measured at 0-1%.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency, entropy, ks_2samp, wasserstein_distance

from recdrill.errors import ConfigError, DataError
from recdrill.monitor.drift.bins import EPSILON, Binning, smoothed_shares
from recdrill.monitor.drift.chi2 import Chi2Detector
from recdrill.monitor.drift.defaults import METHODS, default_detector
from recdrill.monitor.drift.detector import Detector
from recdrill.monitor.drift.js import JSDetector
from recdrill.monitor.drift.kl import KLDetector
from recdrill.monitor.drift.ks import KSDetector
from recdrill.monitor.drift.mmd import MMDDetector
from recdrill.monitor.drift.psi import PSIDetector
from recdrill.monitor.drift.wasserstein import WassersteinDetector

CATS = np.array(["books", "garden", "toys", "food", "tools"])
BASE_MIX = [0.3, 0.3, 0.2, 0.1, 0.1]
SHIFTED_MIX = [0.15, 0.3, 0.2, 0.1, 0.25]  # 15 points of "books" moved to "tools"

Sampler = Callable[[np.random.Generator, int, bool], np.ndarray]


def normal(rng: np.random.Generator, n: int, shifted: bool, shift: float = 0.5) -> np.ndarray:
    return rng.normal(shift if shifted else 0.0, 1.0, size=n)


def category_mix(rng: np.random.Generator, n: int, shifted: bool) -> np.ndarray:
    return rng.choice(CATS, size=n, p=SHIFTED_MIX if shifted else BASE_MIX)


def vectors(rng: np.random.Generator, n: int, shifted: bool) -> np.ndarray:
    return rng.normal(0.5 if shifted else 0.0, 1.0, size=(n, 4))


# method -> (reference size, data, detector parameters, seeds). Small references for the small-data
# tests (KS, chi-square), 5,000 for the distances; MMD on 4-D vectors with 100 rows a side.
CASES: dict[str, tuple[int, Sampler, dict[str, int], int]] = {
    "ks": (1000, normal, {}, 200),
    "chi2": (1000, category_mix, {}, 200),
    "wasserstein": (5000, normal, {}, 200),
    "psi": (5000, normal, {}, 200),
    "kl": (5000, lambda rng, n, shifted: normal(rng, n, shifted, shift=1.0), {}, 200),
    "js": (5000, category_mix, {}, 200),
    "mmd": (400, vectors, {"window": 100, "max_rows": 100}, 100),
}
MAX_FALSE_ALARMS = {
    "ks": 0.08,
    "chi2": 0.08,
    "mmd": 0.08,
    "wasserstein": 0.05,
    "psi": 0.05,
    "kl": 0.05,
    "js": 0.05,
}


def make(method: str, seed: int) -> tuple[Detector, Sampler, np.random.Generator]:
    n_ref, sample, params, _ = CASES[method]
    rng = np.random.default_rng(seed)
    extra = {"seed": seed} if method == "mmd" else {}
    return METHODS[method](sample(rng, n_ref, False), **params, **extra), sample, rng


@pytest.mark.parametrize("method", sorted(CASES))
def test_false_alarm_rate_on_same_distribution(method: str) -> None:
    seeds = CASES[method][3]
    alarms = 0
    for seed in range(seeds):
        detector, sample, rng = make(method, seed)
        alarms += detector.update(sample(rng, detector.window, False)).drift_detected
    assert alarms / seeds <= MAX_FALSE_ALARMS[method]


@pytest.mark.parametrize("method", sorted(CASES))
def test_known_shift_is_detected_in_every_seed(method: str) -> None:
    for seed in range(50):
        detector, sample, rng = make(method, 1000 + seed)
        assert detector.update(sample(rng, detector.window, True)).drift_detected, seed


@pytest.mark.parametrize("method", sorted(CASES))
def test_sliding_window_forgets_a_shift(method: str) -> None:
    detector, sample, rng = make(method, 7)
    detector.update(sample(rng, detector.window, True))
    assert detector.drift_detected
    half = detector.window // 2
    detector.update(sample(rng, half, False))
    assert detector.n_seen == detector.window  # half shifted, half stationary now
    detector.update(sample(rng, detector.window - half, False))
    assert not detector.drift_detected  # every shifted value has left the window


@pytest.mark.parametrize("method", sorted(CASES))
def test_streaming_score_equals_batch_score_on_the_window(method: str) -> None:
    detector, sample, rng = make(method, 3)
    reference = sample(np.random.default_rng(3), CASES[method][0], False)  # the same reference again
    held: list[np.ndarray] = []
    for size in (1, 37, detector.window // 3, detector.window, 5, detector.window // 2):
        batch = sample(rng, size, bool(size % 2))
        detector.update(batch)
        held.append(batch)
    window = np.concatenate(held)[-detector.window :]
    extra = {k: v for k, v in CASES[method][2].items() if k != "window"}
    batch = (
        type(detector).compare(reference, window, threshold=detector.threshold, seed=3, **extra)
        if (method == "mmd")
        else type(detector).compare(reference, window)
    )
    assert detector.n_seen == detector.window
    assert detector.score == pytest.approx(batch.score, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("method", sorted(CASES))
def test_fresh_window_is_neutral_below_min_current(method: str) -> None:
    detector, sample, rng = make(method, 5)
    detector.update(sample(rng, detector.min_current - 1, True))
    assert detector.n_seen == detector.min_current - 1
    assert detector.score == (0.0 if detector.higher_is_drift else 1.0)
    assert not detector.drift_detected
    detector.update(sample(rng, 1, True))
    assert detector.score != (0.0 if detector.higher_is_drift else 1.0)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_protocol_names_and_read_only_state(method: str) -> None:
    detector, sample, rng = make(method, 0)
    assert detector.method == method
    assert detector.higher_is_drift == (method not in {"ks", "chi2"})
    assert detector.update(sample(rng, 10, False)) is detector
    assert detector.update(sample(rng, 0, False)).n_seen == 10
    for name in ("score", "threshold", "drift_detected", "n_seen"):
        with pytest.raises(AttributeError):
            setattr(detector, name, 1)
    detector.update(sample(rng, 3 * detector.window, False))
    assert detector.n_seen == detector.window


# --- textbook values ---------------------------------------------------------------------------


def test_ks_statistic_equals_scipy_with_and_without_ties() -> None:
    rng = np.random.default_rng(11)
    for rounding in (None, 1):
        reference = rng.normal(size=700)
        current = rng.normal(0.2, size=300)
        if rounding is not None:
            reference, current = reference.round(rounding), current.round(rounding)
        detector = KSDetector(reference, window=300).update(current)
        expected = ks_2samp(reference, current, method="asymp")
        assert detector.statistic() == expected.statistic
        assert detector.score == pytest.approx(expected.pvalue, rel=1e-12)


def test_psi_matches_the_worked_example() -> None:
    # Reference shares 0.25/0.25/0.5, current 0.3/0.3/0.4, no empty bin so no smoothing:
    # PSI = 2 * (0.3 - 0.25) * ln(0.3 / 0.25) + (0.4 - 0.5) * ln(0.4 / 0.5)
    #     = 2 * 0.05 * 0.1823216 + 0.1 * 0.2231436 = 0.0182322 + 0.0223144 = 0.0405465
    reference = np.repeat(["a", "b", "c"], [25, 25, 50])
    current = np.repeat(["a", "b", "c"], [30, 30, 40])
    result = PSIDetector.compare(reference, current)
    assert result.score == pytest.approx(0.0405465, abs=1e-7)
    assert (result.method, result.threshold, result.drift) == ("psi", 0.1, False)


def _shares(reference: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    bins = Binning.from_reference(reference)
    size = bins.n_bins
    return smoothed_shares(
        np.bincount(bins.codes(reference), minlength=size), np.bincount(bins.codes(current), minlength=size)
    )


def test_smoothing_gives_empty_bins_epsilon_and_renormalises() -> None:
    p, q = smoothed_shares(np.array([50, 50, 0]), np.array([100, 0, 0]))
    assert len(p) == 2  # the bin empty in both is dropped
    assert q[1] == pytest.approx(EPSILON / (1 + EPSILON))
    assert q.sum() == pytest.approx(1.0) and p.tolist() == [0.5, 0.5]


def test_js_equals_scipy_jensenshannon_on_the_same_bins() -> None:
    rng = np.random.default_rng(12)
    reference, current = rng.normal(size=3000), rng.normal(0.3, 1.2, size=800)
    p, q = _shares(reference, current)
    assert JSDetector.compare(reference, current).score == pytest.approx(jensenshannon(p, q), rel=1e-12)
    # A category the reference never had: a smoothed bin of its own.
    ref_cats, cur_cats = category_mix(rng, 2000, False), np.append(category_mix(rng, 500, True), ["new"] * 50)
    p, q = _shares(ref_cats, cur_cats)
    assert len(p) == len(CATS) + 1
    assert JSDetector.compare(ref_cats, cur_cats).score == pytest.approx(jensenshannon(p, q), rel=1e-12)


def test_kl_equals_scipy_entropy_on_the_smoothed_bins() -> None:
    rng = np.random.default_rng(13)
    reference, current = rng.normal(size=3000), rng.normal(3.0, size=800)  # empty bins in current
    p, q = _shares(reference, current)
    assert (q == q.min()).sum() > 1
    assert KLDetector.compare(reference, current).score == pytest.approx(entropy(p, q), rel=1e-12)


def test_wasserstein_equals_scipy_distance_over_reference_std() -> None:
    rng = np.random.default_rng(14)
    for reference, current in [
        (rng.normal(100.0, 5.0, size=4000), rng.normal(101.0, 6.0, size=900)),
        (rng.exponential(size=2000).round(1), rng.exponential(1.3, size=2000).round(1)),  # ties
    ]:
        expected = wasserstein_distance(reference, current) / np.std(reference)
        assert WassersteinDetector.compare(reference, current).score == pytest.approx(expected, rel=1e-9)


def test_chi2_equals_scipy_contingency_test() -> None:
    rng = np.random.default_rng(15)
    reference = category_mix(rng, 600, False)
    current = np.append(category_mix(rng, 400, True), ["new"] * 5)
    table = [[np.sum(reference == c) for c in [*CATS, "new"]], [np.sum(current == c) for c in [*CATS, "new"]]]
    expected = chi2_contingency(table, correction=False)
    stat, dof = Chi2Detector.statistic(*(np.array(row) for row in table))
    assert (stat, dof) == (pytest.approx(expected.statistic, rel=1e-12), expected.dof)
    assert Chi2Detector.compare(reference, current).score == pytest.approx(expected.pvalue, rel=1e-9)


def test_mmd_threshold_is_calibrated_and_score_is_unbiased_mmd2() -> None:
    rng = np.random.default_rng(16)
    reference = rng.normal(size=(300, 3))
    detector = MMDDetector(reference, window=100, max_rows=100, seed=0)
    assert detector.threshold > 0 and detector.min_current == 100
    same = MMDDetector.compare(reference, rng.normal(size=(100, 3)), max_rows=100)
    assert abs(same.score) < same.threshold  # unbiased: centred on 0 under no drift


# --- the default rule --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reference", "kind", "method", "threshold"),
    [
        (np.arange(1000.0), None, "ks", 0.05),  # numeric, <= 1000 rows
        (np.arange(1001.0), None, "wasserstein", 0.1),  # numeric, > 1000 rows
        (np.tile(["a", "b"], 500), None, "chi2", 0.05),  # categorical, <= 1000 rows
        (np.tile(["a", "b"], 501), None, "js", 0.1),  # categorical, > 1000 rows
        (np.tile(np.arange(5), 200), None, "chi2", 0.05),  # numeric with 5 distinct values: categories
        (np.tile(np.arange(6), 200), None, "wasserstein", 0.1),  # 6 distinct: numeric
        (np.tile(np.arange(50), 100), "categorical", "js", 0.1),  # declared categorical
        (np.zeros((50, 4)), None, "mmd", None),  # embedding vectors
    ],
)
def test_default_detector_follows_evidentlys_rule(
    reference: np.ndarray, kind: str | None, method: str, threshold: float | None
) -> None:
    detector = default_detector(reference, kind=kind, window=100)  # type: ignore[arg-type]
    assert detector.method == method and detector.window == 100
    if threshold is not None:
        assert detector.threshold == threshold
    if method in {"chi2", "js"}:
        assert detector.binning.edges is None  # type: ignore[attr-defined]  # one bin per category


# --- bad input -----------------------------------------------------------------------------


def test_bad_parameters_and_data_raise_clear_errors() -> None:
    with pytest.raises(ConfigError, match="'window' parameter of KSDetector must be an int >= 1, got 0"):
        KSDetector([1.0, 2.0], window=0)
    with pytest.raises(ConfigError, match="'threshold' parameter of KSDetector must be a number in"):
        KSDetector([1.0, 2.0], threshold=2.0)
    with pytest.raises(DataError, match="reference sample is empty"):
        PSIDetector([])
    with pytest.raises(DataError, match="finite"):
        KSDetector([1.0, 2.0]).update([np.nan])
    with pytest.raises(DataError, match="expected numbers"):
        WassersteinDetector(["a", "b"])
    with pytest.raises(DataError, match="dimension 3"):
        MMDDetector(np.zeros((10, 3)), n_permutations=2).update(np.zeros((2, 4)))
    with pytest.raises(DataError, match="current sample is empty"):
        JSDetector.compare([1, 2, 3], [])
