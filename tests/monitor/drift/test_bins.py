"""Bins of the histogram methods: quantile cuts, one bin per category plus an unseen one, smoothing."""

from __future__ import annotations

import numpy as np
import pytest

from recdrill.errors import ConfigError, DataError
from recdrill.monitor.drift.bins import (
    DEFAULT_BINS,
    EPSILON,
    Binning,
    as_categories,
    infer_kind,
    smoothed_shares,
)


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        (np.array([1, 2, 3]), "numeric"),
        (np.array([1.5, np.nan]), "numeric"),
        (np.array([True, False]), "categorical"),  # booleans are categories, not numbers
        (np.array(["a", "b"]), "categorical"),
        (np.array(["a", 1], dtype=object), "categorical"),
    ],
)
def test_infer_kind_calls_only_ints_and_floats_numeric(values: np.ndarray, kind: str) -> None:
    assert infer_kind(values) == kind


def test_as_categories_keeps_numbers_and_turns_the_rest_into_strings() -> None:
    numbers = np.array([3, 1, 2])
    assert as_categories(numbers) is numbers
    assert as_categories(np.array([True, False])).tolist() == ["True", "False"]
    assert as_categories(np.array(["x", 7], dtype=object)).tolist() == ["x", "7"]


def test_many_distinct_numbers_get_quantile_bins_with_open_outer_bins() -> None:
    bins = Binning.from_reference(np.arange(100.0))
    assert bins.n_bins == DEFAULT_BINS
    assert bins.edges is not None and bins.categories.size == 0
    np.testing.assert_allclose(bins.edges, [9.9, 19.8, 29.7, 39.6, 49.5, 59.4, 69.3, 79.2, 89.1])
    # Beyond the reference's range on either side still lands in the outer bins; a cut belongs above.
    assert bins.codes(np.array([-5.0, 0.0, 9.9, 50.0, 99.0, 1e6])).tolist() == [0, 0, 1, 5, 9, 9]


def test_each_reference_quantile_bin_holds_about_the_same_share() -> None:
    reference = np.random.default_rng(0).normal(size=10_000)
    counts = np.bincount(Binning.from_reference(reference, n_bins=4).codes(reference), minlength=4)
    assert counts.tolist() == [2500, 2500, 2500, 2500]


def test_tied_quantiles_merge_into_fewer_bins() -> None:
    reference = np.concatenate([np.zeros(90), np.arange(1.0, 21.0)])  # 82% zeros
    bins = Binning.from_reference(reference)
    assert bins.edges is not None
    np.testing.assert_allclose(bins.edges, [0.0, 9.1])
    assert bins.n_bins == 3
    assert bins.codes(np.array([-1.0, 0.0, 0.5, 30.0])).tolist() == [0, 1, 1, 2]


def test_few_distinct_numbers_get_one_bin_each_plus_one_for_unseen_values() -> None:
    bins = Binning.from_reference(np.array([3, 1, 2, 2]))
    assert bins.edges is None and bins.categories.tolist() == [1, 2, 3]
    assert bins.n_bins == 4
    assert bins.codes(np.array([1, 2, 3, 7, 0])).tolist() == [0, 1, 2, 3, 3]


def test_categories_are_matched_as_strings() -> None:
    bins = Binning.from_reference(np.array([True, False, True]))
    assert bins.categories.tolist() == ["False", "True"]
    assert bins.codes(np.array([True, False])).tolist() == [1, 0]
    assert bins.codes(np.array(["True", "maybe"], dtype=object)).tolist() == [1, 2]


def test_a_declared_categorical_kind_gives_numbers_a_bin_each() -> None:
    bins = Binning.from_reference(np.arange(50), kind="categorical")
    assert bins.edges is None and bins.n_bins == 51
    assert bins.codes(np.array([0, 49, 50])).tolist() == [0, 49, 50]


def test_bad_references_and_values_raise_named_errors() -> None:
    with pytest.raises(ConfigError, match="'n_bins' parameter must be an int >= 2, got 1 instead"):
        Binning.from_reference(np.arange(10.0), n_bins=1)
    with pytest.raises(DataError, match="numeric bins need numbers, got <U1 values"):
        Binning.from_reference(np.array(["a", "b"]), kind="numeric")
    with pytest.raises(DataError, match="values must be finite numbers"):
        Binning.from_reference(np.array([1.0, np.inf, 2.0]))
    with pytest.raises(DataError, match="expected numbers, got <U1 values"):
        Binning.from_reference(np.arange(100.0)).codes(np.array(["a"]))
    with pytest.raises(DataError, match="expected numbers"):
        Binning.from_reference(np.array([1, 2])).codes(np.array(["1"]))


def test_smoothed_shares_without_empty_bins_are_the_plain_shares() -> None:
    p, q = smoothed_shares(np.array([1, 3]), np.array([2, 2]))
    assert p.tolist() == [0.25, 0.75] and q.tolist() == [0.5, 0.5]


def test_smoothing_drops_bins_empty_in_both_and_gives_one_sided_empties_epsilon() -> None:
    p, q = smoothed_shares(np.array([0, 4, 0, 6]), np.array([0, 0, 5, 5]))
    assert len(p) == len(q) == 3  # the first bin is empty in both
    assert p == pytest.approx(np.array([0.4, EPSILON, 0.6]) / (1 + EPSILON), rel=1e-12)
    assert q == pytest.approx(np.array([EPSILON, 0.5, 0.5]) / (1 + EPSILON), rel=1e-12)
    assert p.sum() == pytest.approx(1.0) and q.sum() == pytest.approx(1.0)
