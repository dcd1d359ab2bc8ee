from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recdrill.data.loading import load_dataset
from recdrill.errors import ConfigError, DataFileNotFoundError, DataFormatError, DataSchemaError

RETAIL = pd.DataFrame(
    {
        "InvoiceNo": ["1", "C2"],
        "StockCode": ["A", "A"],
        "Description": ["MUG", "MUG"],
        "Quantity": [1, -1],
        "InvoiceDate": pd.to_datetime(["2011-01-01", "2011-01-02"]),
        "UnitPrice": [2.0, 2.0],
        "CustomerID": [7.0, 7.0],
        "Country": ["UK", "UK"],
    }
)


def test_shopsim_spec_builds_the_synthetic_shop_with_seed_and_settings() -> None:
    small = "shopsim:n_items=200,n_users=100,n_events=2000"
    shop = load_dataset(small, seed=3)
    assert (shop.name, shop.n_items, shop.n_users, len(shop.interactions)) == ("shopsim", 200, 100, 2000)
    again = load_dataset(small, seed=3)
    other = load_dataset(small, seed=4)
    assert np.array_equal(shop.interactions.item, again.interactions.item)
    assert not np.array_equal(shop.interactions.item, other.interactions.item)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("shopsim:n_items", "must look like name=value"),
        ("shopsim:n_items=many", "'n_items' must be an integer, got 'many'"),
        ("shopsim:colour=3", "colour"),
        ("shopsim:n_items=-3", "n_items must be a positive integer, got -3"),
    ],
)
def test_bad_shopsim_settings_are_named(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_dataset(spec)
    with pytest.raises(ConfigError, match="a column mapping does not apply to 'shopsim'"):
        load_dataset("shopsim", columns="user=u")


def test_txt_is_a_sequence_file(tmp_path: Path) -> None:
    path = tmp_path / "Beauty.txt"
    path.write_text("1 2 3\n")
    shop = load_dataset(str(path))
    assert (shop.name, shop.has_time, shop.catalog.item_ids.tolist()) == ("Beauty", False, ["2", "3"])
    with pytest.raises(ConfigError, match=r"does not apply to sequence file .*Beauty\.txt"):
        load_dataset(str(path), columns="user=u")


def test_retail_parquet_is_recognised_by_its_columns(tmp_path: Path) -> None:
    path = tmp_path / "shop.parquet"
    RETAIL.to_parquet(path)
    shop = load_dataset(str(path))
    assert shop.quality is not None and shop.quality.dropped["cancellation"] == 1
    assert shop.quality.rows_dropped == 1
    assert shop.catalog.title is not None and shop.catalog.title.tolist() == ["MUG"]


def test_a_mapping_selects_the_table_loader_even_for_retail_columns(tmp_path: Path) -> None:
    path = tmp_path / "shop.parquet"
    RETAIL.to_parquet(path)
    shop = load_dataset(str(path), columns="user=CustomerID,item=StockCode,timestamp=InvoiceDate")
    assert shop.quality is not None and shop.quality.rows_kept == 2  # no cancellation rule here
    assert shop.user_ids.tolist() == ["7"]


def test_other_parquet_and_csv_use_default_columns(tmp_path: Path) -> None:
    parquet = tmp_path / "events.parquet"
    pd.DataFrame({"user_id": ["u"], "item_id": ["i"], "timestamp": [5]}).to_parquet(parquet)
    assert load_dataset(str(parquet)).interactions.timestamp.tolist() == [5]
    csv = tmp_path / "events.csv"
    csv.write_text("user_id,item_id,timestamp\nu,i,6\n")
    assert load_dataset(str(csv)).interactions.timestamp.tolist() == [6]
    other = tmp_path / "other.csv"
    other.write_text("uid,sku\nu,i\n")
    with pytest.raises(DataSchemaError, match=r"other\.csv: column 'user_id' \(mapped to user\)"):
        load_dataset(str(other))


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(DataFileNotFoundError, match=r"nope\.csv: no such file"):
        load_dataset(str(tmp_path / "nope.csv"))


def test_unsupported_paths(tmp_path: Path) -> None:
    json_file = tmp_path / "shop.json"
    json_file.write_text("{}")
    with pytest.raises(DataFormatError, match=r"shop\.json: unsupported file type '\.json'"):
        load_dataset(str(json_file))
    bare = tmp_path / "shop"
    bare.write_text("1 2\n")
    with pytest.raises(DataFormatError, match=r"shop: unsupported file type without extension"):
        load_dataset(str(bare))
    with pytest.raises(DataFormatError, match=r": not a file$"):
        load_dataset(str(tmp_path))
