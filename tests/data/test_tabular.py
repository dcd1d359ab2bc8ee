from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recdrill.data.columns import ColumnMapping
from recdrill.data.dataset import EventType
from recdrill.data.tabular import load_interactions
from recdrill.errors import DataFileNotFoundError, DataFormatError, DataSchemaError


def write(tmp_path: Path, text: str, name: str = "events.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_default_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "user_id,item_id,timestamp\nu2,b,30\nu1,a,20\nu1,b,10\n")
    shop = load_interactions(path)
    assert shop.name == "events"
    assert shop.has_time is True
    assert shop.user_ids.tolist() == ["u1", "u2"]
    assert shop.catalog.item_ids.tolist() == ["a", "b"]
    assert shop.sequences().to_lists() == [[1, 0], [1]]  # u1 sorted by time
    assert shop.interactions.timestamp.tolist() == [10, 20, 30]
    assert set(shop.interactions.event.tolist()) == {EventType.PURCHASE}
    assert shop.quality is not None and (shop.quality.rows_read, shop.quality.rows_kept) == (3, 3)


def test_integer_ids_sort_by_value_and_keep_their_text(tmp_path: Path) -> None:
    path = write(tmp_path, "user_id,item_id,timestamp\n10,007,1\n9,12,2\n100,8,3\n")
    shop = load_interactions(path)
    assert shop.user_ids.tolist() == ["9", "10", "100"]
    assert shop.catalog.item_ids.tolist() == ["007", "8", "12"]


def test_dirty_rows_are_counted_by_first_reason(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "user_id,item_id,timestamp,event,price\n"
        "u1,a,2020-01-01,view,1.5\n"  # line 2: kept
        "u1,b,2020-01-02 10:00,Purchase,0\n"  # line 3: non-positive price
        ",c,5,view,1\n"  # line 4: missing user
        "u2,,5,view,1\n"  # line 5: missing item
        ",,5,view,1\n"  # line 6: missing user (first reason wins)
        "u2,d,never,2,3\n"  # line 7: unparseable timestamp
        "u2,e,2020-01-03,like,2\n"  # line 8: unknown event type
        "u2,e,2020-01-03,,2\n"  # line 9: unknown event type (missing)
        "u2,f,2020-01-04,3,abc\n"  # line 10: unparseable price
        "u3,a,1600000000,CART,\n",  # line 11: kept, price unknown
    )
    shop = load_interactions(path, ColumnMapping(event="event", price="price"))
    quality = shop.quality
    assert quality is not None
    assert dict(quality.dropped) == {
        "missing user": 2,
        "missing item": 1,
        "unparseable timestamp": 1,
        "unknown event type": 2,
        "unparseable price": 1,
        "non-positive price": 1,
    }
    assert dict(quality.first_row) == {
        "missing user": 4,
        "missing item": 5,
        "unparseable timestamp": 7,
        "unknown event type": 8,
        "unparseable price": 10,
        "non-positive price": 3,
    }
    assert (quality.rows_read, quality.rows_kept) == (10, 2)
    assert shop.user_ids.tolist() == ["u1", "u3"]
    assert shop.interactions.timestamp.tolist() == [1577836800, 1600000000]
    assert shop.interactions.event.tolist() == [EventType.VIEW, EventType.CART]
    price = shop.interactions.price
    assert price is not None and price[0] == 1.5 and math.isnan(price[1])


def test_event_names_and_numbers(tmp_path: Path) -> None:
    rows = ["view", "CLICK", " Cart ", "purchase", "0", "3", "addtocart", "transaction", "4", "1.0"]
    text = "user_id,item_id,event\n" + "".join(f"u,i,{e}\n" for e in rows)
    shop = load_interactions(write(tmp_path, text), ColumnMapping(timestamp=None, event="event"))
    assert shop.interactions.event.tolist() == [0, 1, 2, 3, 0, 3, 2, 3, 1]
    assert shop.quality is not None and dict(shop.quality.dropped) == {"unknown event type": 1}


def test_no_timestamp_keeps_file_order(tmp_path: Path) -> None:
    path = write(tmp_path, "user_id,item_id\nu1,c\nu2,a\nu1,b\nu1,a\n")
    shop = load_interactions(path, ColumnMapping(timestamp=None))
    assert shop.has_time is False
    assert shop.sequences().to_lists() == [[2, 1, 0], [0]]
    assert shop.interactions.timestamp.tolist() == [0, 1, 2, 0]


def test_item_columns_queries_and_prices(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "uid,sku,ts,q,price,name,cat,brand\n"
        "u1,a,1,red mug,2.0,,Kitchen,\n"
        "u1,a,2,,4.0,Mug,Home,Acme\n"
        "u1,b,3,blue mug,9.0,Plate,,Zed\n"
        "u2,a,4,red mug,3.0,Mug 2,Kitchen,Acme\n",
    )
    mapping = ColumnMapping(
        user="uid",
        item="sku",
        timestamp="ts",
        query="q",
        price="price",
        title="name",
        category="cat",
        brand="brand",
    )
    shop = load_interactions(path, mapping)
    catalog = shop.catalog
    assert catalog.title is not None and catalog.title.tolist() == ["Mug", "Plate"]  # first non-null
    assert catalog.category_names == ("Kitchen",)
    assert catalog.category is not None and catalog.category.tolist() == [0, -1]
    assert catalog.brand_names == ("Acme", "Zed")
    assert catalog.brand is not None and catalog.brand.tolist() == [0, 1]
    assert catalog.price is not None and catalog.price.tolist() == [3.0, 9.0]  # median per item
    assert shop.queries == ("blue mug", "red mug")
    assert shop.interactions.query is not None and shop.interactions.query.tolist() == [1, -1, 0, 1]


def test_parquet_with_typed_columns(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "user_id": [12346.0, 12347.0, np.nan],
            "item_id": [3, 1, 2],
            "timestamp": pd.to_datetime(["2011-01-01", "2011-01-02", "2011-01-03"]),
        }
    )
    path = tmp_path / "events.parquet"
    frame.to_parquet(path)
    shop = load_interactions(path)
    assert shop.user_ids.tolist() == ["12346", "12347"]
    assert shop.catalog.item_ids.tolist() == ["1", "3"]
    assert shop.interactions.timestamp.tolist() == [1293840000, 1293926400]
    assert shop.quality is not None and dict(shop.quality.first_row) == {"missing user": 2}


def test_unknown_column_lists_available_ones(tmp_path: Path) -> None:
    path = write(tmp_path, "user_id,item_id,timestamp\nu,i,1\n")
    message = (
        r"events\.csv: column 'uid' \(mapped to user\) is not in the file; "
        r"available columns: user_id, item_id, timestamp$"
    )
    with pytest.raises(DataSchemaError, match=message):
        load_interactions(path, ColumnMapping(user="uid"))


def test_empty_and_header_only_csv(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match=r"empty\.csv: file is empty$"):
        load_interactions(write(tmp_path, "", "empty.csv"))
    with pytest.raises(DataFormatError, match=r"header\.csv: file has a header but no rows$"):
        load_interactions(write(tmp_path, "user_id,item_id,timestamp\n", "header.csv"))


def test_csv_parse_error_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "user_id,item_id,timestamp\nu,i,1\nu,i,2,extra\n", "bad.csv")
    with pytest.raises(DataFormatError, match=r"bad\.csv:3: cannot parse CSV") as info:
        load_interactions(path)
    assert info.value.line == 3


def test_csv_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("user_id,item_id,timestamp\nJosé,i,1\n".encode("latin-1"))
    with pytest.raises(DataFormatError, match=r"latin\.csv: not UTF-8 text"):
        load_interactions(path)


def test_no_usable_rows(tmp_path: Path) -> None:
    path = write(tmp_path, "user_id,item_id,timestamp\n,a,1\nu,,2\n")
    with pytest.raises(DataFormatError, match=r"events\.csv: no usable rows: all 2 were dropped"):
        load_interactions(path)


def test_missing_file_and_unsupported_type(tmp_path: Path) -> None:
    with pytest.raises(DataFileNotFoundError, match=r"nope\.csv: no such file"):
        load_interactions(tmp_path / "nope.csv")
    with pytest.raises(DataFormatError, match=r"events\.json: unsupported file type '\.json'"):
        load_interactions(write(tmp_path, "{}", "events.json"))
