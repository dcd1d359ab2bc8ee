"""The UCI Online Retail data: invoice lines of a UK gift shop, 2010-12-01 to 2011-12-09.

Customers become users, stock codes items, each kept invoice line a purchase at its invoice time.
Row numbers in the quality report are 0-based row indices of the Parquet file.

Example:
    >>> DROP_REASONS[:2], "POST" in NON_PRODUCT_CODES
    (('cancellation', 'missing customer id'), True)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recdrill.data.dataset import Catalog, Dataset, EventType, Interactions
from recdrill.data.fields import id_strings, index_ids, median_per_item, parse_timestamps
from recdrill.data.files import read_column_names, read_parquet, require_file
from recdrill.data.quality import QualityTally
from recdrill.errors import DataFormatError, DataSchemaError

REQUIRED_COLUMNS = (
    "InvoiceNo",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "UnitPrice",
    "CustomerID",
)

# Stock codes of lines that are not a product sale: postage, carriage, manual adjustments, discounts,
# samples, fees, bad debt and tests (seen in UCI Online Retail I and II). Gift vouchers (GIFT_*) too.
NON_PRODUCT_CODES = frozenset(
    {
        "POST",  # postage
        "DOT",  # dotcom postage
        "C2",  # carriage
        "M",  # manual entry
        "D",  # discount
        "S",  # samples
        "B",  # adjust bad debt
        "CRUK",  # charity commission
        "BANK CHARGES",
        "AMAZONFEE",
        "ADJUST",  # the codes from here on occur in Online Retail II
        "ADJUST2",
        "TEST001",
        "TEST002",
    }
)
_VOUCHER_PREFIX = "GIFT_"

# Reasons a row is dropped, in the order they are tested: each dropped row is counted under the first
# that matches, so rows_read == rows_kept + sum(dropped). Cancellations and anonymous lines come first
# as the data set documents them; a non-product line is dropped whatever its quantity or price.
DROP_REASONS = (
    "cancellation",
    "missing customer id",
    "missing stock code",
    "unparseable date",
    "non-product line",
    "non-positive quantity",
    "non-positive price",
)


def load_online_retail(path: str | Path) -> Dataset:
    """Load the Online Retail Parquet file, dropping and counting unusable lines.

    Users are ``CustomerID`` strings ("12346"), items normalised ``StockCode`` strings (upper case,
    single spaces), both indexed in sorted order. The catalogue's title is each item's most frequent
    description on kept lines and its price the median kept ``UnitPrice``; each interaction carries its
    own ``UnitPrice``. Invoice times are local UK times taken as UTC. See ``DROP_REASONS``.

    Raises:
        DataFileNotFoundError: ``path`` does not exist.
        DataFormatError: the file is not readable Parquet or no line is usable.
        DataSchemaError: a column of ``REQUIRED_COLUMNS`` is missing.

    Example:
        >>> # load_online_retail("online_retail.parquet").summary()
        >>> # 'online_retail: 4,334 users, 3,660 items, 396,340 interactions, mean history 91.4'
    """
    path = require_file(path)
    missing = [c for c in REQUIRED_COLUMNS if c not in read_column_names(path)]
    if missing:
        raise DataSchemaError(path, f"missing required column(s): {', '.join(missing)}")
    frame = read_parquet(path, list(REQUIRED_COLUMNS))

    stock = _stock_codes(frame["StockCode"])
    customer = id_strings(frame["CustomerID"])
    seconds, dated = parse_timestamps(frame["InvoiceDate"])
    quantity = pd.to_numeric(frame["Quantity"], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    price = pd.to_numeric(frame["UnitPrice"], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    invoice = frame["InvoiceNo"].astype("str").str.strip().str.upper()
    stock_text = stock.fillna("")
    checks = {
        "cancellation": invoice.str.startswith("C").to_numpy(dtype=bool)
        & frame["InvoiceNo"].notna().to_numpy(),
        "missing customer id": customer.isna().to_numpy(),
        "missing stock code": stock.isna().to_numpy(),
        "unparseable date": ~dated,
        "non-product line": (
            stock_text.isin(NON_PRODUCT_CODES) | stock_text.str.startswith(_VOUCHER_PREFIX)
        ).to_numpy(dtype=bool),
        # NaN compares False, so "not > 0" also catches missing values.
        "non-positive quantity": ~(quantity > 0),
        "non-positive price": ~(price > 0),
    }
    tally = QualityTally(str(path), DROP_REASONS)
    tally.read(len(frame))
    keep = np.ones(len(frame), dtype=bool)
    for reason in DROP_REASONS:
        newly = checks[reason] & keep
        tally.drop(reason, np.flatnonzero(newly))
        keep &= ~newly
    if not keep.any():
        raise DataFormatError(path, f"no usable rows: all {len(frame)} were dropped")

    user, user_ids = index_ids(customer[keep].to_numpy(dtype=object))
    item, item_ids = index_ids(stock[keep].to_numpy(dtype=object))
    catalog = Catalog(
        item_ids=item_ids,
        title=_most_frequent(frame["Description"][keep], item, len(item_ids)),
        price=median_per_item(price[keep], item, len(item_ids)),
    )
    interactions = Interactions(
        user=user,
        item=item,
        timestamp=seconds[keep],
        event=np.full(len(user), EventType.PURCHASE, dtype=np.int8),
        price=price[keep],
    )
    return Dataset.create(
        path.stem, user_ids, catalog, interactions, has_time=True, quality=tally.report(kept=int(keep.sum()))
    )


def _stock_codes(values: pd.Series[Any]) -> pd.Series[str]:
    """Stock codes in upper case with single spaces ("bank  charges" -> "BANK CHARGES"); NA if blank."""
    # Normalise the few thousand distinct codes, not the half a million rows.
    codes, uniques = pd.factorize(id_strings(values))
    normal = pd.Series(uniques, dtype="str").str.upper().str.replace(r"\s+", " ", regex=True)
    normal = normal.mask(normal == "NAN")
    return pd.Series(normal.to_numpy(dtype=object)[codes], dtype="str").mask(codes < 0)


def _most_frequent(descriptions: pd.Series[Any], item: np.ndarray, n_items: int) -> np.ndarray:
    """Each item's most frequent non-blank description (ties: alphabetical first; "" if none)."""
    text = descriptions.astype("str").str.strip()
    # Missing descriptions were written as the text "nan" when the source was cast to str.
    text = text.mask(descriptions.isna() | text.isin(["", "nan"]))
    code, names = pd.factorize(text, sort=True)  # sorted, so the smaller code is alphabetically first
    known = code >= 0
    titles = np.full(n_items, "", dtype=object)
    if not known.any():
        return titles
    pair, count = np.unique(item[known].astype(np.int64) * len(names) + code[known], return_counts=True)
    pair_item, pair_code = np.divmod(pair, len(names))
    order = np.lexsort((pair_code, -count, pair_item))
    best = order[np.r_[True, pair_item[order][1:] != pair_item[order][:-1]]]
    titles[pair_item[best]] = np.asarray(names, dtype=object)[pair_code[best]]
    return titles
