"""Which test a column gets (Evidently's default rule, at its boundaries), the methods by name, and
the batch ``compare``."""

from __future__ import annotations

import numpy as np
import pytest

from recdrill.errors import ConfigError
from recdrill.monitor.drift.chi2 import Chi2Detector
from recdrill.monitor.drift.defaults import (
    FEW_VALUES,
    METHODS,
    SMALL_REFERENCE,
    compare,
    default_detector,
    default_method,
    effective_kind,
    method_class,
)
from recdrill.monitor.drift.ks import KSDetector
from recdrill.monitor.drift.psi import PSIDetector


def test_every_method_is_registered_under_its_own_name() -> None:
    assert sorted(METHODS) == ["chi2", "js", "kl", "ks", "mmd", "psi", "wasserstein"]
    for name, cls in METHODS.items():
        assert cls.method == name and method_class(name) is cls


def test_an_unknown_method_lists_the_known_ones() -> None:
    with pytest.raises(
        ConfigError,
        match="unknown drift method 'z-test'; choose one of chi2, js, kl, ks, mmd, psi, wasserstein",
    ):
        method_class("z-test")


def test_numbers_with_few_distinct_values_are_tested_as_categories() -> None:
    assert FEW_VALUES == 5
    assert effective_kind(np.arange(5.0).repeat(3)) == "categorical"
    assert effective_kind(np.arange(6.0).repeat(3)) == "numeric"
    assert effective_kind(np.arange(100), kind="categorical") == "categorical"
    assert effective_kind(np.array([True, False] * 10)) == "categorical"


@pytest.mark.parametrize(
    ("reference", "method"),
    [
        (np.arange(float(SMALL_REFERENCE)), "ks"),
        (np.arange(SMALL_REFERENCE + 1.0), "wasserstein"),
        (np.array(["a", "b"] * 500), "chi2"),
        (np.array(["a", "b"] * 500 + ["c"]), "js"),
        (np.arange(3.0).repeat(10), "chi2"),  # few values: categories
        (np.zeros((5, 2)), "mmd"),  # rows of vectors
    ],
)
def test_default_method_follows_the_rule_at_its_boundaries(reference: np.ndarray, method: str) -> None:
    assert default_method(reference) == method


def test_a_declared_kind_overrides_the_dtype() -> None:
    assert default_method(np.arange(100.0), kind="categorical") == "chi2"
    assert default_method(np.arange(2000.0), kind="categorical") == "js"


def test_default_detector_builds_the_rules_detector_with_its_parameters() -> None:
    detector = default_detector(np.arange(50.0), window=200, threshold=0.01, min_current=40)
    assert isinstance(detector, KSDetector)
    assert (detector.window, detector.threshold, detector.min_current) == (200, 0.01, 40)
    categories = default_detector(np.arange(4).repeat(10), window=100)
    assert isinstance(categories, Chi2Detector)
    assert categories.binning.edges is None and categories.binning.categories.tolist() == [0, 1, 2, 3]


def test_compare_runs_the_named_method_or_the_default() -> None:
    rng = np.random.default_rng(81)
    reference, current = rng.normal(size=400), rng.normal(1.0, size=300)
    default = compare(reference, current)
    assert default == KSDetector.compare(reference, current)
    assert default.method == "ks" and default.drift
    named = compare(reference, current, "psi", threshold=5.0)
    assert named == PSIDetector.compare(reference, current, threshold=5.0)
    assert (named.method, named.threshold, named.drift) == ("psi", 5.0, False)


def test_a_histogram_method_bins_what_the_rule_calls_categorical_one_bin_per_value() -> None:
    reference = np.arange(20).repeat(5)  # 20 distinct numbers: quantile bins unless declared categories
    current = np.arange(0, 20, 2).repeat(10)  # half the values, twice as often
    declared = compare(reference, current, "psi", kind="categorical")
    assert declared == PSIDetector.compare(reference, current, kind="categorical")
    assert declared.score != pytest.approx(PSIDetector.compare(reference, current).score, rel=1e-3)
    assert compare(reference, current, "psi") == PSIDetector.compare(reference, current)


def test_compare_refuses_an_unknown_method() -> None:
    with pytest.raises(ConfigError, match="unknown drift method 'nope'"):
        compare([1.0, 2.0], [1.0, 2.0], "nope")
