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

import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
from pandas.tseries.api import guess_datetime_format

from recdrill.data.dataset import Catalog, Dataset, EventType, Interactions
from recdrill.data.quality import QualityTally
from recdrill.errors import ConfigError, DataFileNotFoundError, DataFormatError, DataSchemaError

# Event names accepted in an event column (case-insensitive). The aliases are RetailRocket's names.
EVENT_NAMES: dict[str, EventType] = {
    "view": EventType.VIEW,
    "click": EventType.CLICK,
    "cart": EventType.CART,
    "addtocart": EventType.CART,
    "add_to_cart": EventType.CART,
    "purchase": EventType.PURCHASE,
    "transaction": EventType.PURCHASE,
}

# Text a Parquet string column holds for "missing" when a frame was cast to str before saving.
_MISSING_TEXT = ("", "nan", "None", "<NA>")
_EPOCH = pd.Timestamp(0, tz="UTC")
_ONE_SECOND = pd.Timedelta(seconds=1)


@dataclass(frozen=True)
class ColumnMapping:
    """Which column of the file holds each field; ``None`` means the file has no such column.

    ``timestamp=None`` keeps the file order (the dataset then has no time); ``event=None`` makes
    every row a purchase. ``title``, ``category`` and ``brand`` describe items: the first non-null
    value per item is used. ``price`` is the price of the event; the catalogue gets each item's median.

    Example:
        >>> ColumnMapping(user="CustomerID", item="StockCode", timestamp=None).item
        'StockCode'
    """

    user: str = "user_id"
    item: str = "item_id"
    timestamp: str | None = "timestamp"
    event: str | None = None
    query: str | None = None
    price: str | None = None
    title: str | None = None
    category: str | None = None
    brand: str | None = None

    def __post_init__(self) -> None:
        for name in ("user", "item"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ConfigError(
                    f"The {name!r} column of a ColumnMapping must be a column name, got {value!r}"
                )

    def columns(self) -> dict[str, str]:
        """The mapped fields and their column names, skipping fields mapped to ``None``."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


def parse_column_mapping(text: str) -> ColumnMapping:
    """Parse ``"field=column,..."`` (the CLI's ``--columns``); unnamed fields keep their defaults.

    An empty column (``"timestamp="``) unmaps an optional field.

    Raises:
        ConfigError: a pair without ``=``, an unknown or repeated field, or ``user``/``item`` left empty.

    Example:
        >>> parse_column_mapping("user=CustomerID,item=StockCode,timestamp=InvoiceDate").timestamp
        'InvoiceDate'
    """
    known = [f.name for f in fields(ColumnMapping)]
    values: dict[str, str | None] = {}
    for pair in (p.strip() for p in text.split(",")):
        if not pair:
            continue
        name, sep, column = (part.strip() for part in pair.partition("="))
        if not sep or not name:
            raise ConfigError(f"column mapping entry {pair!r} must look like field=column")
        if name not in known:
            raise ConfigError(f"column mapping names unknown field {name!r}; fields are: {', '.join(known)}")
        if name in values:
            raise ConfigError(f"column mapping names field {name!r} twice")
        values[name] = column or None
    return ColumnMapping(**values)  # type: ignore[arg-type]  # user/item None is rejected inside


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
        event = _parse_events(frame[mapping.event])
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


def require_file(path: str | Path) -> Path:
    """``path`` as a ``Path``, or ``DataFileNotFoundError``/``DataFormatError`` if it is not a file."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DataFileNotFoundError(path)
    if not path.is_file():
        raise DataFormatError(path, "not a file")
    return path


def read_column_names(path: Path) -> list[str]:
    """The column names of a CSV or Parquet file, without reading its rows."""
    if path.suffix.lower() == ".parquet":
        try:
            return list(pq.read_schema(path).names)
        except (pa.ArrowException, OSError) as exc:
            raise DataFormatError(path, f"cannot read Parquet file: {exc}") from exc
    return list(_read_csv(path, nrows=0).columns)


def read_parquet(path: Path, columns: list[str]) -> pd.DataFrame:
    """The given columns of a Parquet file, with a fresh 0-based index; ``DataFormatError`` if corrupt."""
    try:
        frame = pd.read_parquet(path, columns=columns)
    except (pa.ArrowException, OSError) as exc:
        raise DataFormatError(path, f"cannot read Parquet file: {exc}") from exc
    return frame.reset_index(drop=True)


def id_strings(values: pd.Series[Any]) -> pd.Series[str]:
    """Ids as stripped strings with NA where missing; integral floats lose their ``.0``.

    Example:
        >>> id_strings(pd.Series([12346.0, None])).tolist()
        ['12346', nan]
    """
    if pd.api.types.is_float_dtype(values.dtype):
        numbers = values.to_numpy(dtype=np.float64, na_value=np.nan)
        present = numbers[~np.isnan(numbers)]
        if (np.abs(present) < 2**53).all() and (present == np.round(present)).all():
            values = values.astype("Int64")
    text = values.astype("str").str.strip()
    return text.mask(values.isna() | text.isin(_MISSING_TEXT))


def index_ids(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dense codes for ``ids`` (strings) and the sorted vocabulary; integer-like ids sort by value.

    Example:
        >>> codes, vocab = index_ids(np.array(["10", "9", "10"], dtype=object))
        >>> codes.tolist(), vocab.tolist()
        ([1, 0, 1], ['9', '10'])
    """
    codes, uniques = pd.factorize(ids)
    uniques = np.asarray(uniques, dtype=object)
    keys: np.ndarray = uniques
    as_text = pd.Series(uniques, dtype="str")
    # 18 digits always fit in int64; longer "numbers" are sorted as text.
    if len(uniques) and as_text.str.fullmatch(r"-?\d{1,18}").all():
        keys = as_text.astype(np.int64).to_numpy()
    order = np.argsort(keys, kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank[codes].astype(np.int32), uniques[order]


def parse_timestamps(values: pd.Series[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Epoch seconds (UTC; naive times are taken as UTC) and a mask of the values that parsed.

    Accepts datetime columns, numbers (epoch seconds) and datetime strings in any format pandas
    can parse; the format is guessed from the first value so a whole column parses at C speed.

    Example:
        >>> seconds, ok = parse_timestamps(pd.Series(["1970-01-02", "12/1/2010 8:26", "soon"]))
        >>> seconds.tolist(), ok.tolist()
        ([86400, 1291191960, 0], [True, True, False])
    """
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return _to_seconds(pd.to_datetime(values, utc=True))
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        return _epoch_numbers(values.to_numpy(dtype=np.float64, na_value=np.nan))
    text = values.astype("str").str.strip().mask(values.isna())
    # Numbers are epoch seconds even in a column of datetime strings (a common mixed export).
    numbers = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    seconds, ok = _epoch_numbers(numbers)
    dates = text[np.isnan(numbers) & text.notna().to_numpy()]
    if len(dates):
        guessed = guess_datetime_format(str(dates.iloc[0]))
        parsed = pd.to_datetime(dates, errors="coerce", utc=True, format=guessed or "ISO8601")
        retry = parsed.isna()
        if retry.any():
            # Values in another format than the first: parse them one by one (slow, but usually few).
            parsed[retry] = pd.to_datetime(dates[retry], errors="coerce", utc=True, format="mixed")
        date_seconds, date_ok = _to_seconds(parsed)
        where = np.flatnonzero(np.isnan(numbers) & text.notna().to_numpy())
        seconds[where], ok[where] = date_seconds, date_ok
    return seconds, ok


def _to_seconds(parsed: pd.Series[Any]) -> tuple[np.ndarray, np.ndarray]:
    ok = parsed.notna().to_numpy()
    seconds = np.zeros(len(parsed), dtype=np.int64)
    if ok.any():
        seconds[ok] = ((parsed[ok] - _EPOCH) // _ONE_SECOND).to_numpy(dtype=np.int64)
    return seconds, ok


def _epoch_numbers(numbers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ok = np.isfinite(numbers) & (np.abs(numbers) < 2**62)
    return np.where(ok, np.floor(np.where(ok, numbers, 0)), 0).astype(np.int64), ok


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
    frame = _read_csv(path)
    if frame.empty:
        raise DataFormatError(path, "file has a header but no rows")
    return frame[usecols], np.arange(len(frame), dtype=np.int64) + 2


def _read_csv(path: Path, *, nrows: int | None = None) -> pd.DataFrame:
    try:
        # Everything as text: ids keep their leading zeros and each field is parsed once, by us.
        # All columns are read: with ``usecols`` pandas would accept rows with too many fields.
        return pd.read_csv(path, dtype=str, nrows=nrows)
    except pd.errors.EmptyDataError as exc:
        raise DataFormatError(path, "file is empty") from exc
    except pd.errors.ParserError as exc:
        found = re.search(r"line (\d+)", str(exc))
        line = int(found.group(1)) if found else None
        raise DataFormatError(path, f"cannot parse CSV: {exc}", line=line) from exc
    except UnicodeDecodeError as exc:
        raise DataFormatError(path, f"not UTF-8 text: {exc}") from exc
    except OSError as exc:
        raise DataFormatError(path, f"cannot read file: {exc.strerror or exc}") from exc


def _parse_events(values: pd.Series[Any]) -> np.ndarray:
    """Event codes 0-3 from names or integers; -1 where unknown or missing."""
    text = values.astype("str").str.strip().str.lower().mask(values.isna())
    named = text.map(EVENT_NAMES)
    numbers = pd.to_numeric(text, errors="coerce")
    valid_number = numbers.isin([int(e) for e in EventType])
    codes = named.where(named.notna(), numbers.where(valid_number))
    return codes.fillna(-1).to_numpy(dtype=np.int8)


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


def _first_per_item(values: pd.Series[Any], item: np.ndarray, n_items: int) -> pd.Series[Any]:
    """The first non-null value of each item, in item order (NA where the item has none)."""
    first = values.groupby(item).first()
    return first.reindex(range(n_items))


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
        first = _first_per_item(titles.mask(titles == ""), item, n_items)
        parts["title"] = first.fillna("").to_numpy(dtype=object)
    if mapping.category is not None:
        parts["category"], parts["category_names"] = _labels(
            _first_per_item(id_strings(kept[mapping.category]), item, n_items)
        )
    if mapping.brand is not None:
        parts["brand"], parts["brand_names"] = _labels(
            _first_per_item(id_strings(kept[mapping.brand]), item, n_items)
        )
    if price is not None:
        parts["price"] = median_per_item(price, item, n_items)
    return Catalog(item_ids=item_ids, **parts)


def median_per_item(price: np.ndarray, item: np.ndarray, n_items: int) -> np.ndarray:
    """Each item's median price over the given rows (NaN where the item has no known price)."""
    medians = pd.Series(price).groupby(item).median()
    return medians.reindex(range(n_items)).to_numpy(dtype=np.float64, na_value=np.nan)
