"""Replay a real shop's event log month by month and week by week against a reference period, and
report which features drift and from when.

Built for UCI Online Retail (issue 7, item 6), whose invoice lines span 2010-12-01 to 2011-12-09: the
reference is 2010-12 to 2011-08, the current period 2011-09 to 2011-12, the autumn peak. Lines are
cleaned exactly as :func:`recdrill.data.online_retail.load_online_retail` cleans them (the same
reasons, in the same order, so the counts agree), but this module keeps what the loader throws away
and drift needs: the invoice, the quantity, the country and the time of day.

Features come at two levels, so each is compared with the unit it describes (see ``FEATURES``):
per invoice line (price, quantity, the bought item's popularity in the reference, whether the item is
new) and per invoice (basket size and value, country, hour, weekday, whether the customer is new).
Every feature of every period gets the default test of :func:`recdrill.monitor.drift.defaults.default_method`
(Evidently's rule) against the whole reference, via :func:`recdrill.monitor.drift.defaults.compare`.
A period shows *dataset drift* when at least half of its features drift (Evidently's default share).

"New" means absent from the reference period, so the reference has no new items or customers by
construction: their score measures how far the current share of unseen items and customers has moved
from zero, which is the cold-start load a model trained on the reference meets.

Example:
    >>> [f.name for f in FEATURES if f.level == "invoice"][:3]
    ['basket_size', 'log_basket_value', 'country']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from recdrill.data.fields import id_strings, parse_timestamps
from recdrill.data.files import read_column_names, read_parquet, require_file
from recdrill.data.online_retail import DROP_REASONS, NON_PRODUCT_CODES
from recdrill.errors import ConfigError, DataFormatError, DataSchemaError
from recdrill.monitor.drift.defaults import compare
from recdrill.monitor.drift.detector import DriftResult

RAW_COLUMNS = ("InvoiceNo", "StockCode", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID", "Country")
LINE_COLUMNS = ("invoice", "item", "customer", "quantity", "price", "time", "country")
REFERENCE = ("2010-12-01", "2011-08-31")  # inclusive days
CURRENT = ("2011-09-01", "2011-12-09")
# Evidently's dataset-drift rule: a period drifts when at least this share of its features drift.
DATASET_DRIFT_SHARE = 0.5
# A last week shorter than this many days joins the week before: a two-day stub would mostly show a
# weekday mix no real week has.
MIN_WEEK_DAYS = 4
# Drift counts as sustained from the first of this many flagged weeks in a row.
SUSTAINED_WEEKS = 2


@dataclass(frozen=True)
class Feature:
    """One monitored feature: its column, the unit it is measured on, and its type for the test."""

    name: str
    level: Literal["line", "invoice"]
    kind: Literal["numeric", "categorical"]
    meaning: str


FEATURES = (
    Feature("unit_price", "line", "numeric", "UnitPrice of the line, in pounds"),
    Feature("log_quantity", "line", "numeric", "log(1 + Quantity)"),
    Feature("item_popularity", "line", "numeric", "log(1 + the item's lines in the reference); 0 if new"),
    Feature("new_item", "line", "categorical", "the item has no line in the reference period"),
    Feature("basket_size", "invoice", "numeric", "lines on the invoice"),
    Feature("log_basket_value", "invoice", "numeric", "log(1 + sum of Quantity x UnitPrice)"),
    Feature("country", "invoice", "categorical", "the customer's country"),
    Feature("hour", "invoice", "categorical", "hour of day of the invoice (UK time)"),
    Feature("weekday", "invoice", "categorical", "day of week of the invoice"),
    Feature("new_customer", "invoice", "categorical", "the customer has no invoice in the reference period"),
)


@dataclass(frozen=True)
class Period:
    """A labelled time span, ``start`` inclusive and ``end`` exclusive."""

    label: str
    start: pd.Timestamp
    end: pd.Timestamp


@dataclass(frozen=True)
class PeriodDrift:
    """Every feature's drift test for one period, with the period's invoice lines and invoices."""

    period: Period
    lines: int
    invoices: int
    columns: dict[str, DriftResult]

    @property
    def drifted(self) -> list[str]:
        """The features whose test flagged drift, in ``FEATURES`` order."""
        return [name for name, result in self.columns.items() if result.drift]

    @property
    def dataset_drift(self) -> bool:
        return len(self.drifted) >= DATASET_DRIFT_SHARE * len(self.columns)


@dataclass(frozen=True)
class Replay:
    """The outcome of :func:`replay`: reference sizes, then one :class:`PeriodDrift` per month and week."""

    reference: Period
    reference_lines: int
    reference_invoices: int
    months: tuple[PeriodDrift, ...]
    weeks: tuple[PeriodDrift, ...]

    def first_flagged_week(self, feature: str) -> str | None:
        """The label of the first week whose test flags ``feature``; None if none does."""
        return next((w.period.label for w in self.weeks if w.columns[feature].drift), None)

    def sustained_from_week(self, feature: str) -> str | None:
        """The first week of the first run of ``SUSTAINED_WEEKS`` flagged weeks in a row: when the
        flag was raised and stayed raised, not a one-week blip. None if there is no such run."""
        run: list[str] = []
        for week in self.weeks:
            run = [*run, week.period.label] if week.columns[feature].drift else []
            if len(run) == SUSTAINED_WEEKS:
                return run[0]
        return None

    def drifting_features(self) -> list[str]:
        """Features flagged in some week or month, in ``FEATURES`` order."""
        flagged = {name for p in (*self.months, *self.weeks) for name in p.drifted}
        return [f.name for f in FEATURES if f.name in flagged]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready report: per feature its method and per-period figures, then per period."""
        periods = (*self.months, *self.weeks)
        features = {}
        for f in FEATURES:
            first = periods[0].columns[f.name]
            features[f.name] = {
                "level": f.level,
                "kind": f.kind,
                "meaning": f.meaning,
                "method": first.method,
                "threshold": first.threshold,
                "first_flagged_week": self.first_flagged_week(f.name),
                "sustained_from_week": self.sustained_from_week(f.name),
                "months": {p.period.label: _result(p.columns[f.name]) for p in self.months},
                "weeks": {p.period.label: _result(p.columns[f.name]) for p in self.weeks},
            }
        return {
            "reference": _span(self.reference)
            | {"lines": self.reference_lines, "invoices": self.reference_invoices},
            "features": features,
            "periods": {
                kind: [
                    _span(p.period)
                    | {
                        "lines": p.lines,
                        "invoices": p.invoices,
                        "drifted": p.drifted,
                        "dataset_drift": p.dataset_drift,
                    }
                    for p in group
                ]
                for kind, group in (("months", self.months), ("weeks", self.weeks))
            },
        }


def read_retail_lines(path: str | Path) -> tuple[pd.DataFrame, dict[str, int]]:
    """The Online Retail Parquet file's usable invoice lines and the dropped lines per reason.

    Raises:
        DataFileNotFoundError: ``path`` does not exist.
        DataFormatError: the file is not readable Parquet or no line is usable.
        DataSchemaError: a column of ``RAW_COLUMNS`` is missing.
    """
    path = require_file(path)
    missing = [c for c in RAW_COLUMNS if c not in read_column_names(path)]
    if missing:
        raise DataSchemaError(path, f"missing required column(s): {', '.join(missing)}")
    lines, dropped = clean_lines(read_parquet(path, list(RAW_COLUMNS)))
    if lines.empty:
        raise DataFormatError(path, f"no usable rows: all {sum(dropped.values())} were dropped")
    return lines, dropped


def clean_lines(raw: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """Raw lines (``RAW_COLUMNS``) cleaned as the Online Retail loader cleans them, with the count of
    dropped lines per reason of ``DROP_REASONS`` (each line under the first that matches).

    Returns ``LINE_COLUMNS`` in file order: ``time`` is a naive datetime (UK local time).

    Example:
        >>> raw = pd.DataFrame({"InvoiceNo": ["1", "C2"], "StockCode": ["a", "a"], "Quantity": [2, -2],
        ...     "InvoiceDate": ["2011-01-03 10:00"] * 2, "UnitPrice": [1.5, 1.5], "CustomerID": [7.0, 7.0],
        ...     "Country": ["France"] * 2})
        >>> lines, dropped = clean_lines(raw)
        >>> lines[["invoice", "item", "customer"]].values.tolist(), dropped["cancellation"]
        ([['1', 'A', '7']], 1)
    """
    invoice = raw["InvoiceNo"].astype("str").str.strip().str.upper()
    stock = id_strings(raw["StockCode"]).str.upper().str.replace(r"\s+", " ", regex=True)
    customer = id_strings(raw["CustomerID"])
    seconds, dated = parse_timestamps(raw["InvoiceDate"])
    quantity = pd.to_numeric(raw["Quantity"], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    price = pd.to_numeric(raw["UnitPrice"], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    code = stock.fillna("")
    checks = {
        "cancellation": (invoice.str.startswith("C") & raw["InvoiceNo"].notna()).to_numpy(dtype=bool),
        "missing customer id": customer.isna().to_numpy(),
        "missing stock code": stock.isna().to_numpy(),
        "unparseable date": ~dated,
        # Gift vouchers (GIFT_*) are non-product lines too, as in the loader.
        "non-product line": (code.isin(NON_PRODUCT_CODES) | code.str.startswith("GIFT_")).to_numpy(
            dtype=bool
        ),
        "non-positive quantity": ~(quantity > 0),  # NaN compares False: missing values go too
        "non-positive price": ~(price > 0),
    }
    keep = np.ones(len(raw), dtype=bool)
    dropped = {}
    for reason in DROP_REASONS:
        newly = checks[reason] & keep
        dropped[reason] = int(newly.sum())
        keep &= ~newly
    lines = pd.DataFrame(
        {
            "invoice": invoice[keep].to_numpy(dtype=object),
            "item": stock[keep].to_numpy(dtype=object),
            "customer": customer[keep].to_numpy(dtype=object),
            "quantity": quantity[keep],
            "price": price[keep],
            "time": pd.to_datetime(seconds[keep], unit="s"),
            "country": raw["Country"]
            .fillna("unknown")
            .astype("str")
            .str.strip()[keep]
            .to_numpy(dtype=object),
        }
    )
    return lines, dropped


def replay(
    lines: pd.DataFrame, *, reference: Sequence[str] = REFERENCE, current: Sequence[str] = CURRENT
) -> Replay:
    """Test every feature of every month and week of ``current`` against the ``reference`` period.

    Args:
        lines: cleaned invoice lines (``LINE_COLUMNS``, as :func:`clean_lines` returns them).
        reference: first and last day of the reference period (inclusive, ``YYYY-MM-DD``).
        current: first and last day of the replayed period; weeks are 7-day spans from its first day.

    Raises:
        ConfigError: a period is malformed or holds no invoice line, or the current period starts
            before the reference ends.
    """
    ref, cur = _span_of("reference", reference), _span_of("current", current)
    if cur.start < ref.end:
        raise ConfigError(f"current period {cur.label} starts before the reference {ref.label} ends")
    line_features, invoice_features = features(lines, ref)
    in_ref = _within(line_features, ref), _within(invoice_features, ref)
    if not in_ref[1].any():
        raise ConfigError(f"no invoice lines in the reference period {ref.label}")
    reference_values = {
        f.name: _values(
            line_features if f.level == "line" else invoice_features, f, in_ref[f.level == "invoice"]
        )
        for f in FEATURES
    }

    def test(period: Period) -> PeriodDrift | None:
        lines_in, invoices_in = _within(line_features, period), _within(invoice_features, period)
        if not invoices_in.any():
            return None
        columns = {}
        for f in FEATURES:
            frame, rows = (line_features, lines_in) if f.level == "line" else (invoice_features, invoices_in)
            columns[f.name] = compare(reference_values[f.name], _values(frame, f, rows), kind=f.kind)
        return PeriodDrift(period, int(lines_in.sum()), int(invoices_in.sum()), columns)

    def tested(periods: list[Period]) -> tuple[PeriodDrift, ...]:
        return tuple(d for d in map(test, periods) if d is not None)

    weekly = tested(weeks(cur))
    if not weekly:
        raise ConfigError(f"no invoice lines in the current period {cur.label}")
    return Replay(ref, int(in_ref[0].sum()), int(in_ref[1].sum()), tested(months(cur)), weekly)


def features(lines: pd.DataFrame, reference: Period) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The line-level and the invoice-level feature tables of ``FEATURES``, each with its ``time``.

    An invoice takes the time, customer and country of its first line; item popularity and the "new"
    flags are counted over the lines inside ``reference``.
    """
    in_ref = _within(lines, reference)
    reference_counts = lines["item"][in_ref].value_counts()
    item_count = lines["item"].map(reference_counts).fillna(0).to_numpy(dtype=np.float64)
    line_table = pd.DataFrame(
        {
            "time": lines["time"],
            "unit_price": lines["price"],
            "log_quantity": np.log1p(lines["quantity"]),
            "item_popularity": np.log1p(item_count),
            "new_item": np.where(item_count == 0, "new", "known"),
        }
    )
    value = lines["quantity"] * lines["price"]
    grouped = lines.assign(value=value).groupby("invoice", sort=False)
    invoices = grouped.agg(
        time=("time", "first"),
        customer=("customer", "first"),
        country=("country", "first"),
        basket_size=("item", "size"),
        value=("value", "sum"),
    ).reset_index(drop=True)
    known_customers = set(lines["customer"][in_ref])
    invoice_table = pd.DataFrame(
        {
            "time": invoices["time"],
            "basket_size": invoices["basket_size"].astype(np.float64),
            "log_basket_value": np.log1p(invoices["value"]),
            "country": invoices["country"],
            "hour": invoices["time"].dt.hour.astype("str"),
            "weekday": invoices["time"].dt.day_name(),
            "new_customer": np.where(invoices["customer"].isin(known_customers), "known", "new"),
        }
    )
    return line_table, invoice_table


def months(span: Period) -> list[Period]:
    """Calendar months overlapping ``span``, clipped to it, labelled ``YYYY-MM``."""
    starts = pd.date_range(span.start.to_period("M").to_timestamp(), span.end, freq="MS")
    return [
        Period(s.strftime("%Y-%m"), max(s, span.start), min(s + pd.offsets.MonthBegin(1), span.end))
        for s in starts
        if s < span.end
    ]


def weeks(span: Period) -> list[Period]:
    """7-day spans from ``span.start`` labelled by their first day; a last stub shorter than
    ``MIN_WEEK_DAYS`` days is joined to the week before."""
    starts = list(pd.date_range(span.start, span.end, freq="7D", inclusive="left"))
    if len(starts) > 1 and span.end - starts[-1] < pd.Timedelta(days=MIN_WEEK_DAYS):
        starts.pop()
    ends = [*starts[1:], span.end]
    return [Period(s.strftime("%Y-%m-%d"), s, e) for s, e in zip(starts, ends, strict=True)]


def _span_of(name: str, days: Sequence[str]) -> Period:
    """The period from the first day's midnight to the end of the last day."""
    try:
        first, last = (pd.Timestamp(d) for d in days)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name} period must be two days YYYY-MM-DD, got {list(days)!r}") from exc
    if last < first:
        raise ConfigError(f"{name} period ends ({days[1]}) before it starts ({days[0]})")
    return Period(f"{days[0]}..{days[1]}", first.normalize(), last.normalize() + pd.Timedelta(days=1))


def _values(table: pd.DataFrame, feature: Feature, rows: np.ndarray) -> np.ndarray:
    """A feature's values on ``rows``: float64 if numeric, Python strings if categorical."""
    column = table[feature.name][rows]
    return column.to_numpy(dtype=np.float64 if feature.kind == "numeric" else object)


def _within(table: pd.DataFrame, period: Period) -> np.ndarray:
    time = table["time"]
    return ((time >= period.start) & (time < period.end)).to_numpy(dtype=bool)


def _span(period: Period) -> dict[str, str]:
    last = period.end - pd.Timedelta(days=1)
    return {"label": period.label, "first_day": f"{period.start:%Y-%m-%d}", "last_day": f"{last:%Y-%m-%d}"}


def _result(result: DriftResult) -> dict[str, Any]:
    return {"score": result.score, "threshold": result.threshold, "drift": bool(result.drift)}
