"""Tests of recdrill.data.fields: ids, timestamps, event names and per-item values of a tabular file."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recdrill.data.fields import (
    first_per_item,
    id_strings,
    index_ids,
    median_per_item,
    parse_events,
    parse_timestamps,
)


def test_integral_float_ids_lose_their_trailing_zero() -> None:
    ids = id_strings(pd.Series([12346.0, None, 7.0]))
    assert ids.isna().tolist() == [False, True, False]
    assert ids.dropna().tolist() == ["12346", "7"]


def test_a_column_with_one_fractional_float_keeps_every_decimal_point() -> None:
    # The choice is made per column, so ids in one column are always written the same way.
    assert id_strings(pd.Series([1.5, 2.0])).tolist() == ["1.5", "2.0"]


def test_floats_too_large_for_exact_integers_are_not_turned_into_integers() -> None:
    assert id_strings(pd.Series([2.0**60, 1.0])).tolist() == ["1.152921504606847e+18", "1.0"]


def test_text_ids_are_stripped_and_missing_markers_become_na() -> None:
    ids = id_strings(pd.Series([" a ", "nan", "", "None", "<NA>", None, "007"]))
    assert ids.isna().tolist() == [False, True, True, True, True, True, False]
    assert ids.dropna().tolist() == ["a", "007"]


def test_integer_like_ids_are_indexed_in_numeric_order() -> None:
    codes, vocab = index_ids(np.array(["10", "9", "007", "10"], dtype=object))
    assert vocab.tolist() == ["007", "9", "10"]
    assert codes.tolist() == [2, 1, 0, 2] and codes.dtype == np.int32


def test_mixed_ids_are_indexed_in_text_order() -> None:
    codes, vocab = index_ids(np.array(["b", "a", "10", "b"], dtype=object))
    assert vocab.tolist() == ["10", "a", "b"]
    assert codes.tolist() == [2, 1, 0, 2]


def test_numbers_longer_than_18_digits_sort_as_text() -> None:
    codes, vocab = index_ids(np.array(["1234567890123456789", "2"], dtype=object))
    assert vocab.tolist() == ["1234567890123456789", "2"]
    assert codes.tolist() == [0, 1]


def test_indexing_no_ids_gives_empty_codes_and_vocabulary() -> None:
    codes, vocab = index_ids(np.array([], dtype=object))
    assert (codes.tolist(), vocab.tolist()) == ([], [])


def test_parse_timestamps_mixes_numbers_and_formats() -> None:
    seconds, ok = parse_timestamps(pd.Series(["1970-01-02", "12/1/2010 8:26", "soon", None, "5"]))
    assert seconds.tolist() == [86400, 1291191960, 0, 0, 5]
    assert ok.tolist() == [True, True, False, False, True]


def test_numeric_timestamps_are_floored_epoch_seconds_and_non_finite_ones_fail() -> None:
    seconds, ok = parse_timestamps(pd.Series([1.7, -1.5, np.nan, np.inf]))
    assert seconds.tolist() == [1, -2, 0, 0]
    assert ok.tolist() == [True, True, False, False]


def test_datetime_columns_are_read_as_utc_and_naive_times_taken_as_utc() -> None:
    aware = pd.Series(pd.to_datetime(["2020-01-01T01:00:00+01:00", None], utc=True))
    assert [a.tolist() for a in parse_timestamps(aware)] == [[1577836800, 0], [True, False]]
    naive = pd.Series(pd.to_datetime(["1970-01-01 00:00:10"]))
    assert [a.tolist() for a in parse_timestamps(naive)] == [[10], [True]]


def test_boolean_columns_are_not_timestamps() -> None:
    seconds, ok = parse_timestamps(pd.Series([True, False]))
    assert (seconds.tolist(), ok.tolist()) == ([0, 0], [False, False])


def test_event_names_are_case_insensitive_and_unknown_or_missing_ones_are_minus_one() -> None:
    codes = parse_events(pd.Series(["View", " add_to_cart ", "2", "7", None, "like", "TRANSACTION"]))
    assert codes.tolist() == [0, 2, 2, -1, -1, -1, 3]
    assert codes.dtype == np.int8


def test_integer_event_columns_keep_codes_zero_to_three_only() -> None:
    assert parse_events(pd.Series([0, 3, 4, -1])).tolist() == [0, 3, -1, -1]


def test_first_per_item_skips_nulls_and_leaves_items_without_a_value_na() -> None:
    first = first_per_item(pd.Series([None, "x", "y", "z"]), np.array([0, 0, 0, 2]), 3)
    assert first.isna().tolist() == [False, True, False]
    assert first.iloc[0] == "x" and first.iloc[2] == "z"


def test_median_per_item_ignores_unknown_prices_and_is_nan_without_one() -> None:
    medians = median_per_item(np.array([1.0, 3.0, np.nan, 10.0, 2.0]), np.array([0, 0, 0, 2, 0]), 4)
    assert medians[0] == 2.0 and medians[2] == 10.0
    assert np.isnan(medians[[1, 3]]).all()
