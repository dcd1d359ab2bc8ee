"""The batch drift check of two tables: per-column tests, forcing a method, the dataset verdict, the
JSON and text shapes, and the errors that name a table, a column or a file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recdrill.errors import ConfigError, DataError, DataFileNotFoundError, DataFormatError, DataSchemaError
from recdrill.monitor.drift.batch import (
    ColumnDrift,
    DriftCheck,
    check_files,
    check_frames,
    column_kind,
    read_table,
    same_columns,
)
from recdrill.monitor.drift.defaults import compare


def _tables(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``price`` drifts (mean + 1 std), ``cat`` does not."""
    rng = np.random.default_rng(seed)
    ref = pd.DataFrame({"price": rng.normal(10, 2, 500), "cat": rng.choice(["a", "b"], 500)})
    cur = pd.DataFrame({"price": rng.normal(12, 2, 500), "cat": rng.choice(["a", "b"], 500)})
    return ref, cur


def _column(name: str, drift: bool) -> ColumnDrift:
    return ColumnDrift(name, "numeric", "ks", 0.01 if drift else 0.5, 0.05, drift)


def test_each_column_gets_its_default_test_and_the_same_score_as_compare() -> None:
    ref, cur = _tables()
    check = check_frames(ref, cur)
    assert list(check.columns) == ["price", "cat"]
    price, cat = check.columns["price"], check.columns["cat"]
    assert (price.kind, price.method, price.drift, price.forced) == ("numeric", "ks", True, None)
    assert (cat.kind, cat.method, cat.drift, cat.forced) == ("categorical", "chi2", False, None)
    expected = compare(ref["price"].to_numpy(float), cur["price"].to_numpy(float))
    assert (price.score, price.threshold) == (expected.score, expected.threshold)


def test_the_dataset_drifts_when_at_least_half_its_columns_do() -> None:
    assert DriftCheck({"a": _column("a", True), "b": _column("b", False)}).dataset_drift
    assert not DriftCheck(
        {"a": _column("a", True), "b": _column("b", False), "c": _column("c", False)}
    ).dataset_drift
    assert (
        DriftCheck({"a": _column("a", True), "b": _column("b", True), "c": _column("c", False)}).n_drifted
        == 2
    )


def test_a_forced_method_runs_where_it_fits_and_the_entry_says_where_it_did_not() -> None:
    ref, cur = _tables()
    check = check_frames(ref, cur, method="ks")
    assert (check.columns["price"].method, check.columns["price"].forced) == ("ks", True)
    assert (check.columns["cat"].method, check.columns["cat"].forced) == (
        "chi2",
        False,
    )  # ks fits numbers only
    both = check_frames(ref, cur, method="psi")
    assert {c.method for c in both.columns.values()} == {"psi"}
    assert all(c.forced for c in both.columns.values())


def test_the_json_shape_names_forced_only_when_a_method_was_forced() -> None:
    ref, cur = _tables()
    plain = check_frames(ref, cur).to_dict()
    assert set(plain) == {"columns", "dataset_drift"} and plain["dataset_drift"] is True
    assert set(plain["columns"]["price"]) == {"method", "score", "threshold", "drift", "kind"}
    forced = check_frames(ref, cur, method="ks").to_dict()
    assert forced["columns"]["cat"]["forced"] is False and forced["columns"]["price"]["forced"] is True


def test_the_text_table_has_one_line_per_column_and_the_verdict() -> None:
    check = DriftCheck(
        {
            "price": ColumnDrift("price", "numeric", "ks", 0.0012345, 0.05, True),
            "category": ColumnDrift("category", "categorical", "chi2", 0.5, 0.05, False),
        }
    )
    lines = check.format_table().splitlines()
    assert lines[0].split() == ["column", "kind", "method", "score", "threshold", "drift"]
    assert lines[1].split() == ["price", "numeric", "ks", "0.001234", "0.05", "DRIFT"]
    assert lines[2].split() == ["category", "categorical", "chi2", "0.5", "0.05", "no"]
    assert lines[3] == "dataset: DRIFT (1 of 2 columns drifted)"


def test_only_the_named_columns_are_tested_and_missing_values_are_dropped() -> None:
    ref, cur = _tables()
    cur.loc[::2, "price"] = np.nan
    check = check_frames(ref, cur, columns=["price"])
    assert list(check.columns) == ["price"]
    kept = cur["price"].dropna().to_numpy(float)
    assert len(kept) == 250
    assert check.columns["price"].score == compare(ref["price"].to_numpy(float), kept).score


def test_column_kind_calls_booleans_categories_and_nullable_ints_numbers() -> None:
    assert column_kind(pd.Series([True, False])) == "categorical"
    assert column_kind(pd.Series([1, None, 3], dtype="Int64")) == "numeric"
    assert column_kind(pd.Series([1.5, 2.5])) == "numeric"
    assert column_kind(pd.Series(["a", "b"])) == "categorical"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"method": "mmd"},
            "'mmd' compares embedding vectors; for columns choose one of chi2, js, kl, ks, psi",
        ),
        ({"method": "anova"}, "unknown drift method 'anova'"),
        ({"columns": ["price", "colour"]}, "column 'colour' is not in both tables; they have: price, cat"),
    ],
)
def test_bad_methods_and_columns_are_config_errors(kwargs: dict[str, object], message: str) -> None:
    ref, cur = _tables()
    with pytest.raises(ConfigError, match=message):
        check_frames(ref, cur, **kwargs)  # type: ignore[arg-type]


def test_unusable_columns_are_data_errors() -> None:
    ref, cur = _tables()
    empty = cur.assign(price=np.nan)
    with pytest.raises(DataError, match="column 'price' has no values in the current table"):
        check_frames(ref, empty)
    with pytest.raises(DataError, match="column 'price' has no values in the reference table"):
        check_frames(ref.assign(price=np.nan), cur)
    with pytest.raises(
        DataError, match="column 'price': numbers in the reference but not in the current table"
    ):
        check_frames(ref, cur.assign(price="cheap"))


def test_same_columns_names_the_missing_and_the_extra_ones() -> None:
    ref = pd.DataFrame({"a": [1], "b": [2]})
    with pytest.raises(
        DataSchemaError,
        match=r"cur\.csv: columns differ from the reference: missing b; not in the reference: c",
    ):
        same_columns(ref, pd.DataFrame({"a": [1], "c": [3]}), "cur.csv")
    same_columns(ref, pd.DataFrame({"b": [1], "a": [2]}), "cur.csv")  # order does not matter


def test_check_files_reads_csv_and_parquet_alike(tmp_path: Path) -> None:
    ref, cur = _tables()
    ref.to_csv(tmp_path / "ref.csv", index=False)
    cur.to_parquet(tmp_path / "cur.parquet", index=False)
    from_files = check_files(tmp_path / "ref.csv", tmp_path / "cur.parquet")
    from_frames = check_frames(pd.read_csv(tmp_path / "ref.csv"), cur)
    assert from_files.to_dict() == from_frames.to_dict()


def test_check_files_refuses_tables_whose_columns_differ(tmp_path: Path) -> None:
    ref, cur = _tables()
    ref.to_csv(tmp_path / "ref.csv", index=False)
    cur.rename(columns={"cat": "kind"}).to_csv(tmp_path / "cur.csv", index=False)
    with pytest.raises(DataSchemaError, match=r"cur\.csv: columns differ from the reference: missing cat"):
        check_files(tmp_path / "ref.csv", tmp_path / "cur.csv")


def test_read_table_names_the_file_at_fault(tmp_path: Path) -> None:
    with pytest.raises(DataFileNotFoundError, match=r"nope\.csv: no such file"):
        read_table(tmp_path / "nope.csv")
    (tmp_path / "data.json").write_text("{}")
    with pytest.raises(DataFormatError, match=r"unsupported file type '.json': expected .csv or .parquet"):
        read_table(tmp_path / "data.json")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataFormatError, match=r"empty\.csv: file is empty"):
        read_table(tmp_path / "empty.csv")
    (tmp_path / "header.csv").write_text("a,b\n")
    with pytest.raises(DataFormatError, match=r"header\.csv: no rows"):
        read_table(tmp_path / "header.csv")
    (tmp_path / "T.CSV").write_text("a\n1\n")
    assert read_table(tmp_path / "T.CSV")["a"].tolist() == [1]  # the extension in any case
