"""Tests of recdrill.data.files: reading CSV and Parquet files with errors naming the file and line."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from recdrill.data.files import read_column_names, read_csv, read_parquet, require_file
from recdrill.errors import DataFileNotFoundError, DataFormatError


def test_require_file_returns_the_path_of_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text("a\n1\n")
    assert require_file(str(path)) == path


def test_require_file_expands_the_home_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "events.csv").write_text("a\n")
    assert require_file("~/events.csv") == tmp_path / "events.csv"


def test_require_file_refuses_a_missing_path_and_a_folder(tmp_path: Path) -> None:
    with pytest.raises(DataFileNotFoundError, match=r"nope\.csv: no such file$") as info:
        require_file(tmp_path / "nope.csv")
    assert info.value.path == tmp_path / "nope.csv"
    with pytest.raises(DataFormatError, match=r": not a file$"):
        require_file(tmp_path)


def test_column_names_come_from_the_header_of_a_csv_and_the_schema_of_a_parquet(tmp_path: Path) -> None:
    csv = tmp_path / "events.csv"
    csv.write_text("user,item,when\nu,i,1\n")
    assert read_column_names(csv) == ["user", "item", "when"]
    parquet = tmp_path / "events.PARQUET"
    pd.DataFrame({"b": [1], "a": ["x"]}).to_parquet(parquet)
    assert read_column_names(parquet) == ["b", "a"]


def test_a_corrupt_parquet_file_is_a_format_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"PAR1 certainly not parquet")
    with pytest.raises(DataFormatError, match=r"broken\.parquet: cannot read Parquet file"):
        read_column_names(path)
    with pytest.raises(DataFormatError, match=r"broken\.parquet: cannot read Parquet file"):
        read_parquet(path, ["a"])


def test_read_parquet_returns_the_given_columns_with_a_fresh_index(tmp_path: Path) -> None:
    path = tmp_path / "events.parquet"
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"], "c": [0.5, 1.5]}, index=[10, 20])
    frame.to_parquet(path)
    read = read_parquet(path, ["c", "a"])
    assert list(read.columns) == ["c", "a"]
    assert read.index.tolist() == [0, 1]
    assert read["a"].tolist() == [1, 2]


def test_a_csv_is_read_as_text_so_ids_keep_their_leading_zeros(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text("user,item\n007,0.50\n8,\n")
    frame = read_csv(path)
    assert frame["user"].tolist() == ["007", "8"]
    assert frame["item"].iloc[0] == "0.50" and pd.isna(frame["item"].iloc[1])
    assert read_csv(path, nrows=0).columns.tolist() == ["user", "item"]


def test_csv_errors_name_the_file_and_the_problem(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataFormatError, match=r"empty\.csv: file is empty$"):
        read_csv(empty)
    ragged = tmp_path / "bad.csv"
    ragged.write_text("a,b\n1,2\n3,4,5\n")
    with pytest.raises(DataFormatError, match=r"bad\.csv:3: cannot parse CSV") as info:
        read_csv(ragged)
    assert info.value.line == 3
    latin = tmp_path / "latin.csv"
    latin.write_bytes("a\nJosé\n".encode("latin-1"))
    with pytest.raises(DataFormatError, match=r"latin\.csv: not UTF-8 text"):
        read_csv(latin)


def test_a_folder_read_as_csv_is_a_format_error_saying_why(tmp_path: Path) -> None:
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    with pytest.raises(DataFormatError, match=r"folder\.csv: cannot read file: Is a directory"):
        read_csv(folder)
