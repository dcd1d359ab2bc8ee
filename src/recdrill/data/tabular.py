"""Generic interaction tables: one event per row of a CSV or Parquet file, columns named by a mapping.

Row numbers in the quality report are CSV line numbers (the header is line 1, so they are exact
unless a quoted field spans lines) or 0-based Parquet row indices, as ``pandas`` shows them.

Example:
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "events.csv"
    >>> _ = path.write_text("user_id,item_id,timestamp\\nu1,a,10\\nu1,b,20\\nu2,,30\\n")
    >>> shop = load_interactions(path)
    >>> shop.user_ids.tolist(), shop.catalog.item_ids.tolist(), dict(shop.quality.dropped)
    (['u1'], ['a', 'b'], {'missing item': 1})
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recdrill.data.columns import ColumnMapping
from recdrill.data.dataset import Catalog, Dataset, EventType, Interactions
from recdrill.data.fields import (
    first_per_item,
    id_strings,
    index_ids,
    median_per_item,
    parse_events,
    parse_timestamps,
)
from recdrill.data.files import read_column_names, read_csv, read_parquet, require_file
from recdrill.data.quality import QualityTally
from recdrill.errors import DataFormatError, DataSchemaError


def load_interactions(path: str | Path, columns: ColumnMapping | None = None) -> Dataset:
    """Load a CSV or Parquet file with one interaction per row.

    Dirty rows are skipped and counted in ``dataset.quality``, first matching reason wins:
    "missing user", "missing item", "unparseable timestamp", "unknown event type",
    "unparseable price", "non-positive price". A missing price is kept as NaN (unknown).
    Users and items are indexed in sorted order of their ids (numerically when all ids are
    integers), so the result does not depend on row order.

    Raises:
        DataFileNotFoundError: ``path`` does not exist.
        DataSchemaError: the mapping names a column the file lacks.
        DataFormatError: the file is empty, cannot be parsed, or has no usable row.

    Example:
        >>> mapping = ColumnMapping(user="CustomerID", item="StockCode", timestamp="InvoiceDate")
        >>> # load_interactions("orders.parquet", mapping)
    """
    path = require_file(path)
    mapping = columns if columns is not None else ColumnMapping()
    frame, row_numbers = _read_table(path, mapping)
    tally = QualityTally(str(path))
    tally.read(len(frame))

    keep = np.ones(len(frame), dtype=bool)

    def drop(reason: str, bad: np.ndarray) -> None:
        newly = bad & keep
        tally.drop(reason, row_numbers[newly])
        keep[newly] = False

    users = id_strings(frame[mapping.user])
    items = id_strings(frame[mapping.item])
    drop("missing user", users.isna().to_numpy())
    drop("missing item", items.isna().to_numpy())
    seconds = np.zeros(len(frame), dtype=np.int64)
    if mapping.timestamp is not None:
        seconds, parsed = parse_timestamps(frame[mapping.timestamp])
        drop("unparseable timestamp", ~parsed)
    event = np.full(len(frame), EventType.PURCHASE, dtype=np.int8)
    if mapping.event is not None:
        event = parse_events(frame[mapping.event])
        drop("unknown event type", event < 0)
    price: np.ndarray | None = None
    if mapping.price is not None:
        raw = frame[mapping.price]
        price = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        drop("unparseable price", np.isnan(price) & raw.notna().to_numpy())
        drop("non-positive price", price <= 0)
    if not keep.any():
        raise DataFormatError(path, f"no usable rows: all {len(frame)} were dropped")

    kept = frame[keep]
    user, user_ids = index_ids(users[keep].to_numpy(dtype=object))
    item, item_ids = index_ids(items[keep].to_numpy(dtype=object))
    seconds = _positions(user) if mapping.timestamp is None else seconds[keep]
    query, queries = _index_queries(kept[mapping.query]) if mapping.query else (None, ())
    kept_price = None if price is None else price[keep]
    catalog = _catalog(item_ids, item, kept, mapping, kept_price)
    interactions = Interactions(user, item, seconds, event[keep], query=query, price=kept_price)
    return Dataset.create(
        path.stem,
        user_ids,
        catalog,
        interactions,
        has_time=mapping.timestamp is not None,
        queries=queries,
        quality=tally.report(kept=int(keep.sum())),
    )


def _read_table(path: Path, mapping: ColumnMapping) -> tuple[pd.DataFrame, np.ndarray]:
    """The mapped columns of the file and each row's number for the quality report."""
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise DataFormatError(path, f"unsupported file type {path.suffix!r}: expected .csv or .parquet")
    available = read_column_names(path)
    wanted = mapping.columns()
    for name, column in wanted.items():
        if column not in available:
            raise DataSchemaError(
                path,
                f"column {column!r} (mapped to {name}) is not in the file; "
                f"available columns: {', '.join(map(str, available))}",
            )
    usecols = list(dict.fromkeys(wanted.values()))
    if suffix == ".parquet":
        frame = read_parquet(path, usecols)
        return frame, np.arange(len(frame), dtype=np.int64)
    frame = read_csv(path)
    if frame.empty:
        raise DataFormatError(path, "file has a header but no rows")
    return frame[usecols], np.arange(len(frame), dtype=np.int64) + 2


def _positions(user: np.ndarray) -> np.ndarray:
    """Each row's position within its user's rows, in file order (the timestamp of untimed data)."""
    order = np.argsort(user, kind="stable")
    counts = np.bincount(user)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    positions = np.empty(len(user), dtype=np.int64)
    positions[order] = np.arange(len(user)) - starts
    return positions


def _index_queries(values: pd.Series[Any]) -> tuple[np.ndarray, tuple[str, ...]]:
    text = values.astype("str").str.strip().mask(values.isna())
    text = text.mask(text == "")
    codes, uniques = pd.factorize(text, sort=True)
    return codes.astype(np.int32), tuple(str(q) for q in uniques)


def _labels(values: pd.Series[Any]) -> tuple[np.ndarray, tuple[str, ...]]:
    codes, names = pd.factorize(id_strings(values), sort=True)
    return codes.astype(np.int32), tuple(str(n) for n in names)


def _catalog(
    item_ids: np.ndarray,
    item: np.ndarray,
    kept: pd.DataFrame,
    mapping: ColumnMapping,
    price: np.ndarray | None,
) -> Catalog:
    n_items = len(item_ids)
    parts: dict[str, Any] = {}
    if mapping.title is not None:
        titles = kept[mapping.title].astype("str").str.strip().mask(kept[mapping.title].isna())
        first = first_per_item(titles.mask(titles == ""), item, n_items)
        parts["title"] = first.fillna("").to_numpy(dtype=object)
    if mapping.category is not None:
        parts["category"], parts["category_names"] = _labels(
            first_per_item(id_strings(kept[mapping.category]), item, n_items)
        )
    if mapping.brand is not None:
        parts["brand"], parts["brand_names"] = _labels(
            first_per_item(id_strings(kept[mapping.brand]), item, n_items)
        )
    if price is not None:
        parts["price"] = median_per_item(price, item, n_items)
    return Catalog(item_ids=item_ids, **parts)
