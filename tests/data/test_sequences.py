from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recdrill.data.dataset import EventType
from recdrill.data.sequences import load_sequences
from recdrill.errors import DataFileNotFoundError, DataFormatError
from tests.conftest import SHARED_DATASETS

SHARED = SHARED_DATASETS


def write(tmp_path: Path, text: str, name: str = "Shop.txt") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode())
    return path


def test_items_are_indexed_by_numeric_id_and_users_keep_file_order(tmp_path: Path) -> None:
    shop = load_sequences(write(tmp_path, "5 10 2 9\n3 2 100\n"))
    assert shop.name == "Shop"
    assert shop.user_ids.tolist() == ["5", "3"]
    assert shop.catalog.item_ids.tolist() == ["2", "9", "10", "100"]
    assert shop.sequences().to_lists() == [[2, 0, 1], [0, 3]]
    assert shop.interactions.timestamp.tolist() == [0, 1, 2, 0, 1]
    assert set(shop.interactions.event.tolist()) == {EventType.PURCHASE}
    assert shop.has_time is False
    assert shop.catalog.attributes is None


def test_ids_are_kept_as_canonical_integer_strings(tmp_path: Path) -> None:
    shop = load_sequences(write(tmp_path, "01 007 7 8"))
    assert shop.user_ids.tolist() == ["1"]
    assert shop.catalog.item_ids.tolist() == ["7", "8"]
    assert shop.sequences().to_lists() == [[0, 0, 1]]


def test_windows_line_endings_and_tabs(tmp_path: Path) -> None:
    shop = load_sequences(write(tmp_path, "1\t2 3\r\n2 3\r\n"))
    assert shop.sequences().to_lists() == [[0, 1], [1]]
    assert shop.quality is not None and shop.quality.rows_read == 2


def test_blank_lines_and_users_without_items_are_counted(tmp_path: Path) -> None:
    shop = load_sequences(write(tmp_path, "1 2 3\n\n2\n   \n3 4\n"))
    assert shop.user_ids.tolist() == ["1", "3"]
    quality = shop.quality
    assert quality is not None
    assert (quality.rows_read, quality.rows_kept) == (5, 2)
    assert dict(quality.dropped) == {"blank line": 2, "user without items": 1}
    assert dict(quality.first_row) == {"blank line": 2, "user without items": 3}


def test_non_integer_item_names_file_line_and_token(tmp_path: Path) -> None:
    path = write(tmp_path, "1 2 3\n\n2 4\n3 4 x9\n")
    with pytest.raises(DataFormatError, match=r"Shop\.txt:4: item id 'x9' is not an integer$") as info:
        load_sequences(path)
    assert info.value.line == 4


def test_non_integer_user_is_named_as_user(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match=r"Shop\.txt:2: user id 'u2' is not an integer$"):
        load_sequences(write(tmp_path, "1 2\nu2 3\n"))


def test_id_too_large_for_int64(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match=r"Shop\.txt:1: item id '99999999999999999999' is too large$"):
        load_sequences(write(tmp_path, "1 99999999999999999999\n"))


def test_duplicate_user_names_both_lines(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match=r"Shop\.txt:4: user id '1' appears twice \(first on line 1\)$"):
        load_sequences(write(tmp_path, "1 2\n2 3\n3 3\n1 4\n2 5\n"))


@pytest.mark.parametrize("text", ["", " \n\n\t"])
def test_empty_file(tmp_path: Path, text: str) -> None:
    with pytest.raises(DataFormatError, match=r"Shop\.txt: file is empty$"):
        load_sequences(write(tmp_path, text))


def test_file_with_no_usable_line(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match=r"Shop\.txt: no usable rows"):
        load_sequences(write(tmp_path, "1\n2\n"))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataFileNotFoundError, match=r"Nope\.txt: no such file"):
        load_sequences(tmp_path / "Nope.txt")


def test_attributes_found_beside_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "1 10 2\n2 9\n")
    (tmp_path / "Shop_item2attributes.json").write_text('{"2": [1, 2], "10": [3], "999": [4]}')
    attributes = load_sequences(path).catalog.attributes
    assert attributes is not None
    # Items 2, 9, 10 in that order; 9 is not in the file, 999 is not in the catalogue.
    assert attributes.to_lists() == [[1, 2], [], [3]]


def test_explicit_attributes_path(tmp_path: Path) -> None:
    path = write(tmp_path, "1 10 2\n")
    other = tmp_path / "attrs.json"
    other.write_text('{"10": [5]}')
    attributes = load_sequences(path, attributes_path=other).catalog.attributes
    assert attributes is not None and attributes.to_lists() == [[], [5]]
    with pytest.raises(DataFileNotFoundError, match=r"missing\.json: no such file"):
        load_sequences(path, attributes_path=tmp_path / "missing.json")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"2": [1,', r"Shop_item2attributes\.json:1: invalid JSON"),
        ("[1, 2]", r"Shop_item2attributes\.json: expected an object"),
        ('{"2": "brand"}', r"Shop_item2attributes\.json: attributes of item '2' must be a list of integers"),
        ('{"2": [1.5]}', r"Shop_item2attributes\.json: attributes of item '2' must be a list of integers"),
        ('{"x": [1]}', r"Shop_item2attributes\.json: item id 'x' is not an integer"),
    ],
)
def test_malformed_attributes_name_the_json_file(tmp_path: Path, content: str, message: str) -> None:
    path = write(tmp_path, "1 2\n")
    (tmp_path / "Shop_item2attributes.json").write_text(content)
    with pytest.raises(DataFormatError, match=message):
        load_sequences(path)


@pytest.mark.shared_data
@pytest.mark.skipif(not (SHARED / "amazon" / "Beauty.txt").exists(), reason="shared datasets not present")
def test_real_beauty_file() -> None:
    shop = load_sequences(SHARED / "amazon" / "Beauty.txt")
    assert (shop.n_users, shop.n_items, len(shop.interactions)) == (22_363, 12_101, 198_502)
    assert shop.user_ids[0] == "1"
    assert shop.catalog.item_ids[shop.sequences().row(0)].tolist() == ["1", "2", "3", "4", "5"]
    assert shop.catalog.attributes is not None and len(shop.catalog.attributes) == 12_101
    assert shop.catalog.attributes.row(3).tolist() == [1, 2, 3]  # item "4" in the json
    assert shop.quality is not None and shop.quality.rows_dropped == 0
    assert np.array_equal(shop.catalog.item_ids[:3], ["1", "2", "3"])
