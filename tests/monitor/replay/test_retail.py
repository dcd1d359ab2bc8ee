from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recdrill.data.online_retail import DROP_REASONS, load_online_retail
from recdrill.errors import ConfigError, DataSchemaError
from recdrill.monitor.replay.retail import (
    FEATURES,
    Period,
    clean_lines,
    read_retail_lines,
    replay,
    weeks,
)
from tests.conftest import SHARED_DATASETS

SHARED = SHARED_DATASETS
REAL = SHARED / "online_retail" / "online_retail.parquet"

# A small shop: two reference months, then two current months; the shift starts on a Tuesday, the
# first day of the third 7-day week counted from 2011-03-01.
REFERENCE = ("2011-01-01", "2011-02-28")
CURRENT = ("2011-03-01", "2011-04-25")  # 8 whole weeks: a part week would skew the weekday mix
SHIFT_WEEK = "2011-03-15"
WEEK_LABELS = [
    "2011-03-01",
    "2011-03-08",
    "2011-03-15",
    "2011-03-22",
    "2011-03-29",
    "2011-04-05",
    "2011-04-12",
    "2011-04-19",
]


def synthetic_shop(shift: str | None, seed: int = 0) -> pd.DataFrame:
    """Raw Online Retail lines (``RAW_COLUMNS``), 300 invoices a day from 300 customers buying 200
    items, stationary except for ``shift`` from ``SHIFT_WEEK`` on:

    * ``"hour"``: invoices move from 09-16 h to 17-20 h (an invoice-level categorical feature);
    * ``"price"``: every price rises by half (unit price, and with it basket value);
    * ``"new items"``: 40 % of the lines buy items never sold before.

    Cancellations (``C`` invoices) and anonymous lines are mixed in, to be dropped and counted.
    """
    rng = np.random.default_rng(seed)
    days = pd.date_range(REFERENCE[0], CURRENT[1], freq="D")
    n_invoices = 300 * len(days)
    day = days[np.repeat(np.arange(len(days)), 300)]
    late = day >= pd.Timestamp(SHIFT_WEEK)
    hours = rng.integers(9, 17, n_invoices)
    if shift == "hour":
        hours = np.where(late, rng.integers(17, 21, n_invoices), hours)
    time = day + pd.to_timedelta(hours * 3600 + rng.integers(0, 3600, n_invoices), unit="s")
    customer = rng.integers(12000, 12300, n_invoices)
    country = np.where(customer % 5 == 0, "France", "United Kingdom")
    size = rng.integers(1, 6, n_invoices)

    invoice = np.repeat(np.arange(500000, 500000 + n_invoices), size)
    line_late = np.repeat(late, size)
    n_lines = len(invoice)
    popularity = 1.0 / (np.arange(200) + 10.0)
    item = rng.choice(200, n_lines, p=popularity / popularity.sum())
    price = np.round(np.exp(rng.normal(1.0, 0.5, 200)), 2)[item]
    if shift == "price":
        price = np.where(line_late, np.round(price * 1.5, 2), price)
    stock = np.array([f"{20000 + i}" for i in range(200)], dtype=object)[item]
    if shift == "new items":
        fresh = line_late & (rng.random(n_lines) < 0.4)
        stock = np.where(fresh, [f"9{i:04d}" for i in rng.integers(0, 300, n_lines)], stock)
    raw = pd.DataFrame(
        {
            "InvoiceNo": invoice.astype(str),
            "StockCode": stock,
            "Quantity": rng.geometric(0.3, n_lines),
            "InvoiceDate": np.repeat(time, size),
            "UnitPrice": price,
            "CustomerID": np.repeat(customer, size).astype(np.float64),
            "Country": np.repeat(country, size),
        }
    )
    cancelled = raw.iloc[:40].assign(InvoiceNo=lambda f: "C" + f["InvoiceNo"], Quantity=-1)
    anonymous = raw.iloc[40:70].assign(CustomerID=np.nan)
    return pd.concat([raw, cancelled, anonymous], ignore_index=True)


@pytest.fixture(scope="module")
def stationary() -> pd.DataFrame:
    return clean_lines(synthetic_shop(None))[0]


def test_cleaning_counts_each_dropped_line_under_its_first_reason() -> None:
    raw = synthetic_shop(None)
    lines, dropped = clean_lines(raw)
    assert dropped == {reason: 0 for reason in DROP_REASONS} | {"cancellation": 40, "missing customer id": 30}
    assert len(lines) == len(raw) - 70
    assert lines["customer"].str.fullmatch(r"12\d{3}").all()


def test_a_stationary_shop_drifts_nowhere(stationary: pd.DataFrame) -> None:
    result = replay(stationary, reference=REFERENCE, current=CURRENT)
    assert [w.period.label for w in result.weeks] == WEEK_LABELS
    assert [m.period.label for m in result.months] == ["2011-03", "2011-04"]
    assert result.drifting_features() == []
    assert not any(p.dataset_drift for p in (*result.months, *result.weeks))
    # Every line and invoice of the current period is in exactly one month and one week.
    assert sum(w.lines for w in result.weeks) == sum(m.lines for m in result.months)
    assert sum(w.invoices for w in result.weeks) == sum(m.invoices for m in result.months) == 300 * 56


@pytest.mark.parametrize(
    ("shift", "expected"),
    [
        ("hour", ["hour"]),
        ("price", ["unit_price", "log_basket_value"]),
        ("new items", ["item_popularity", "new_item"]),
    ],
)
def test_a_shift_is_named_with_the_week_it_starts(shift: str, expected: list[str]) -> None:
    result = replay(clean_lines(synthetic_shop(shift))[0], reference=REFERENCE, current=CURRENT)
    assert result.drifting_features() == expected
    for name in expected:
        assert result.first_flagged_week(name) == SHIFT_WEEK
        assert result.sustained_from_week(name) == SHIFT_WEEK
        # Both months hold shifted weeks (March from the 15th): both flag the feature.
        assert all(m.columns[name].drift for m in result.months)
    report = result.to_dict()
    assert {name for name, f in report["features"].items() if f["first_flagged_week"]} == set(expected)
    assert report["features"][expected[0]]["weeks"]["2011-03-08"]["drift"] is False
    assert report["features"][expected[0]]["weeks"][SHIFT_WEEK]["drift"] is True


def test_every_feature_gets_evidentlys_default_test(stationary: pd.DataFrame) -> None:
    # References above 1,000 rows: normed Wasserstein for numbers, Jensen-Shannon for categories and
    # for numbers with at most 5 distinct values, as the synthetic basket sizes 1-5 are.
    report = replay(stationary, reference=REFERENCE, current=CURRENT).to_dict()
    methods = {name: f["method"] for name, f in report["features"].items()}
    numeric = {f.name for f in FEATURES if f.kind == "numeric"} - {"basket_size"}
    assert methods == {f.name: "wasserstein" if f.name in numeric else "js" for f in FEATURES}


def test_a_last_stub_shorter_than_four_days_joins_the_week_before() -> None:
    span = Period("x", pd.Timestamp("2011-09-01"), pd.Timestamp("2011-12-10"))
    labels = [(p.label, (p.end - p.start).days) for p in weeks(span)]
    assert labels[0] == ("2011-09-01", 7)
    assert labels[-1] == ("2011-12-01", 9)  # 1-9 December, not 1-7 plus a two-day stub
    assert len(labels) == 14


def test_bad_periods_are_refused_with_a_clear_error(stationary: pd.DataFrame) -> None:
    with pytest.raises(ConfigError, match="starts before the reference"):
        replay(stationary, reference=REFERENCE, current=("2011-02-01", "2011-03-31"))
    with pytest.raises(ConfigError, match=r"ends .* before it starts"):
        replay(stationary, reference=("2011-02-28", "2011-01-01"), current=CURRENT)
    with pytest.raises(ConfigError, match="no invoice lines in the current period"):
        replay(stationary, reference=REFERENCE, current=("2012-01-01", "2012-01-31"))
    with pytest.raises(ConfigError, match="period must be two days"):
        replay(stationary, reference=REFERENCE, current=("soon",))


def test_a_file_without_a_country_column_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "retail.parquet"
    synthetic_shop(None).head(10).drop(columns="Country").to_parquet(path)
    with pytest.raises(DataSchemaError, match=r"missing required column.*Country"):
        read_retail_lines(path)


@pytest.mark.shared_data
@pytest.mark.skipif(not REAL.exists(), reason="shared datasets not present")
def test_real_online_retail_september_against_the_summer() -> None:
    lines, dropped = read_retail_lines(REAL)
    quality = load_online_retail(REAL).quality
    assert quality is not None
    # Cleaned exactly as the project's loader cleans the file.
    assert (len(lines), dropped) == (quality.rows_kept, dict(quality.dropped))
    result = replay(lines, reference=("2011-07-01", "2011-08-31"), current=("2011-09-01", "2011-09-30"))
    assert [w.period.label for w in result.weeks] == [
        "2011-09-01",
        "2011-09-08",
        "2011-09-15",
        "2011-09-22",
    ]
    (september,) = result.months
    assert september.lines == int(lines["time"].between("2011-09-01", "2011-09-30 23:59").sum())
    # Most September customers never bought in July or August; the autumn catalogue is new too.
    assert september.columns["new_customer"].drift
    assert september.columns["new_item"].drift
    assert result.sustained_from_week("new_customer") == "2011-09-01"
