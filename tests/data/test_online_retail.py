from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from recdrill.data.dataset import EventType
from recdrill.data.online_retail import DROP_REASONS, load_online_retail
from recdrill.errors import DataFileNotFoundError, DataFormatError, DataSchemaError
from tests.conftest import SHARED_DATASETS

SHARED = SHARED_DATASETS
REAL = SHARED / "online_retail" / "online_retail.parquet"
NAN = float("nan")

# InvoiceNo, StockCode, Description, Quantity, InvoiceDate, UnitPrice, CustomerID; the comment is the
# reason the row is dropped (the first matching one in DROP_REASONS) or "kept".
DIRTY_ROWS: list[tuple[Any, ...]] = [
    ("536365", "85123A", "WHITE HEART", 6, "2010-12-01 08:26", 2.55, 17850.0),  # kept
    ("536365", " 85123a ", "WHITE HEART ", 2, "2010-12-01 08:26", 2.75, 17850.0),  # kept, same item
    ("536366", "71053", "LANTERN", 1, "2010-12-02 09:00", 3.39, 13047.0),  # kept
    ("536367", "85123A", "WHITE HANGING HEART", 1, "2010-12-03 00:00", 2.95, 13047.0),  # kept
    ("C536379", "85123A", "WHITE HEART", -1, "2010-12-04 00:00", 2.55, 17850.0),  # cancellation
    ("C536380", "71053", "LANTERN", -2, "2010-12-04 00:00", 3.39, NAN),  # cancellation
    ("536381", "71053", "LANTERN", 1, "2010-12-05 00:00", 3.39, NAN),  # missing customer id
    ("536381", "22000", "CANDLE", 1, "2010-12-05 00:00", 1.25, NAN),  # missing customer id
    ("536382", "  ", "?", 1, "2010-12-05 00:00", 1.0, 12346.0),  # missing stock code
    ("536382", None, "?", 1, "2010-12-05 00:00", 1.0, 12346.0),  # missing stock code
    ("536383", "71053", "LANTERN", 1, None, 3.39, 12346.0),  # unparseable date
    ("536384", "POST", "POSTAGE", 1, "2010-12-06 00:00", 18.0, 12346.0),  # non-product line
    ("536384", "bank  charges", "Bank Charges", 1, "2010-12-06 00:00", 15.0, 12346.0),  # non-product line
    ("536384", "gift_0001_20", "Gift Voucher", 1, "2010-12-06 00:00", 17.0, 12346.0),  # non-product line
    ("536385", "71053", "LANTERN", 0, "2010-12-07 00:00", 3.39, 12346.0),  # non-positive quantity
    ("536386", "71053", "LANTERN", 1, "2010-12-07 00:00", 0.0, 12346.0),  # non-positive price
    ("536386", "71053", "LANTERN", 1, "2010-12-07 00:00", -11.0, 12346.0),  # non-positive price
]
EXPECTED_DROPPED = {
    "cancellation": 2,
    "missing customer id": 2,
    "missing stock code": 2,
    "unparseable date": 1,
    "non-product line": 3,
    "non-positive quantity": 1,
    "non-positive price": 2,
}
EXPECTED_FIRST_ROW = {
    "cancellation": 4,
    "missing customer id": 6,
    "missing stock code": 8,
    "unparseable date": 10,
    "non-product line": 11,
    "non-positive quantity": 14,
    "non-positive price": 15,
}
COLUMNS = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID"]


def retail_frame(rows: list[tuple[Any, ...]] = DIRTY_ROWS) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["InvoiceDate"] = pd.to_datetime(frame["InvoiceDate"], format="%Y-%m-%d %H:%M")
    frame["Country"] = "United Kingdom"
    return frame


def write(tmp_path: Path, frame: pd.DataFrame, name: str = "retail.parquet") -> Path:
    path = tmp_path / name
    frame.to_parquet(path, index=False)
    return path


def test_every_reason_is_counted_once_in_order(tmp_path: Path) -> None:
    shop = load_online_retail(write(tmp_path, retail_frame()))
    quality = shop.quality
    assert quality is not None
    assert dict(quality.dropped) == EXPECTED_DROPPED
    assert dict(quality.first_row) == EXPECTED_FIRST_ROW
    assert (quality.rows_read, quality.rows_kept) == (17, 4)
    assert quality.rows_read == quality.rows_kept + quality.rows_dropped
    assert set(DROP_REASONS) == set(EXPECTED_DROPPED)


def test_kept_rows_become_users_items_and_purchases(tmp_path: Path) -> None:
    shop = load_online_retail(write(tmp_path, retail_frame()))
    assert shop.name == "retail"
    assert shop.has_time is True
    assert shop.user_ids.tolist() == ["13047", "17850"]
    assert shop.catalog.item_ids.tolist() == ["71053", "85123A"]
    assert shop.catalog.title is not None and shop.catalog.price is not None
    assert shop.catalog.title.tolist() == ["LANTERN", "WHITE HEART"]  # most frequent description
    assert shop.catalog.price.tolist() == [3.39, 2.75]  # median of kept lines
    interactions = shop.interactions
    assert interactions.user.tolist() == [0, 0, 1, 1]
    assert interactions.item.tolist() == [0, 1, 1, 1]
    assert interactions.timestamp.tolist() == [1291280400, 1291334400, 1291191960, 1291191960]
    assert interactions.price is not None and interactions.price.tolist() == [3.39, 2.95, 2.55, 2.75]
    assert set(interactions.event.tolist()) == {EventType.PURCHASE}


def test_text_columns_as_written_by_other_tools(tmp_path: Path) -> None:
    # CustomerID as text, dates as text, missing descriptions written as "nan", ties broken alphabetically.
    rows = [
        ("1", "A1", "nan", 1, "12/1/2010 8:26", 1.0, "00042"),
        ("2", "B2", "ZEBRA", 1, "12/2/2010 8:26", 1.0, "7"),
        ("3", "B2", "APPLE", 1, "soon", 1.0, "7"),
        ("4", "B2", "APPLE", 1, "12/3/2010 8:26", 1.0, "7"),
        ("5", "B2", "ZEBRA", 1, "12/4/2010 8:26", 1.0, " "),
    ]
    frame = pd.DataFrame(rows, columns=COLUMNS)
    shop = load_online_retail(write(tmp_path, frame))
    assert shop.quality is not None
    assert dict(shop.quality.dropped) == {reason: 0 for reason in DROP_REASONS} | {
        "unparseable date": 1,
        "missing customer id": 1,
    }
    assert shop.user_ids.tolist() == ["7", "00042"]  # numeric order
    assert shop.catalog.title is not None and shop.catalog.title.tolist() == ["", "APPLE"]
    assert shop.interactions.timestamp.tolist() == [1291278360, 1291364760, 1291191960]


def test_items_without_any_description_get_an_empty_title(tmp_path: Path) -> None:
    frame = retail_frame(DIRTY_ROWS[:3])
    frame["Description"] = None
    shop = load_online_retail(write(tmp_path, frame))
    assert shop.catalog.title is not None and shop.catalog.title.tolist() == ["", ""]


def test_no_usable_row(tmp_path: Path) -> None:
    path = write(tmp_path, retail_frame(DIRTY_ROWS[4:]))
    with pytest.raises(DataFormatError, match=r"retail\.parquet: no usable rows: all 13 were dropped"):
        load_online_retail(path)


def test_missing_columns_are_named(tmp_path: Path) -> None:
    path = write(tmp_path, retail_frame().drop(columns=["CustomerID", "UnitPrice"]))
    with pytest.raises(
        DataSchemaError, match=r"retail\.parquet: missing required column\(s\): UnitPrice, CustomerID$"
    ):
        load_online_retail(path)


def test_truncated_parquet(tmp_path: Path) -> None:
    path = write(tmp_path, retail_frame())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataFormatError, match=r"retail\.parquet: cannot read Parquet file"):
        load_online_retail(path)


def test_not_parquet_at_all(tmp_path: Path) -> None:
    path = tmp_path / "retail.parquet"
    path.write_text("InvoiceNo,StockCode\n1,2\n")
    with pytest.raises(DataFormatError, match=r"retail\.parquet: cannot read Parquet file"):
        load_online_retail(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataFileNotFoundError, match=r"gone\.parquet: no such file"):
        load_online_retail(tmp_path / "gone.parquet")


@pytest.mark.shared_data
@pytest.mark.skipif(not REAL.exists(), reason="shared datasets not present")
def test_real_file_counts_add_up() -> None:
    shop = load_online_retail(REAL)
    quality = shop.quality
    assert quality is not None
    assert quality.rows_read == 541_909
    assert quality.rows_read == quality.rows_kept + quality.rows_dropped
    assert dict(quality.dropped) == {reason: 0 for reason in DROP_REASONS} | {
        "cancellation": 9_288,
        "missing customer id": 134_697,
        "non-product line": 1_550,
        "non-positive price": 34,
    }
    assert (shop.n_users, shop.n_items, len(shop.interactions)) == (4_334, 3_660, 396_340)
    assert shop.catalog.title is not None and shop.catalog.price is not None
    assert np.all(shop.catalog.title != "")
    assert np.all(shop.catalog.price > 0)
    assert shop.interactions.timestamp.min() == 1291191960  # 2010-12-01 08:26
