"""Parsing the fields of a tabular file, vectorised over whole columns: ids, timestamps, event names,
and per-item values (the first non-null one, the median price).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from pandas.tseries.api import guess_datetime_format

from recdrill.data.columns import EVENT_NAMES
from recdrill.data.dataset import EventType

# Text a Parquet string column holds for "missing" when a frame was cast to str before saving.
_MISSING_TEXT = ("", "nan", "None", "<NA>")
_EPOCH = pd.Timestamp(0, tz="UTC")
_ONE_SECOND = pd.Timedelta(seconds=1)


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


def parse_events(values: pd.Series[Any]) -> np.ndarray:
    """Event codes 0-3 from names or integers; -1 where unknown or missing."""
    text = values.astype("str").str.strip().str.lower().mask(values.isna())
    named = text.map(EVENT_NAMES)
    numbers = pd.to_numeric(text, errors="coerce")
    valid_number = numbers.isin([int(e) for e in EventType])
    codes = named.where(named.notna(), numbers.where(valid_number))
    return codes.fillna(-1).to_numpy(dtype=np.int8)


def first_per_item(values: pd.Series[Any], item: np.ndarray, n_items: int) -> pd.Series[Any]:
    """The first non-null value of each item, in item order (NA where the item has none)."""
    first = values.groupby(item).first()
    return first.reindex(range(n_items))


def median_per_item(price: np.ndarray, item: np.ndarray, n_items: int) -> np.ndarray:
    """Each item's median price over the given rows (NaN where the item has no known price)."""
    medians = pd.Series(price).groupby(item).median()
    return medians.reindex(range(n_items)).to_numpy(dtype=np.float64, na_value=np.nan)
