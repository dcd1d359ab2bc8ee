"""Tests of recdrill.data.quality: the tally a loader fills and the frozen report it gives."""

from __future__ import annotations

import numpy as np
import pytest

from recdrill.data.quality import DataQualityReport, QualityTally


def test_drops_add_up_per_reason_and_keep_the_smallest_row_number() -> None:
    tally = QualityTally("shop.csv")
    tally.read(10)
    tally.drop("missing user", rows=[9, 4])
    tally.drop("missing user", rows=np.array([7, 2]))
    tally.drop("bad price", rows=[5])
    report = tally.report(kept=5)
    assert dict(report.dropped) == {"missing user": 4, "bad price": 1}
    assert dict(report.first_row) == {"missing user": 2, "bad price": 5}
    assert (report.rows_read, report.rows_kept, report.rows_dropped) == (10, 5, 5)


def test_dropping_no_rows_records_nothing() -> None:
    tally = QualityTally("shop.csv")
    tally.drop("missing user", rows=[])
    tally.drop("missing item", rows=np.array([], dtype=np.int64))
    report = tally.report(kept=0)
    assert dict(report.dropped) == {} and dict(report.first_row) == {}


def test_rows_given_as_an_iterator_are_counted() -> None:
    tally = QualityTally("shop.csv")
    tally.drop("missing item", rows=iter([12, 3, 8]))
    report = tally.report(kept=0)
    assert report.dropped["missing item"] == 3 and report.first_row["missing item"] == 3


def test_reasons_named_up_front_show_zero_counts_without_a_first_row() -> None:
    tally = QualityTally("shop.csv", reasons=("missing user", "missing item"))
    tally.read(2)
    tally.drop("missing item", rows=[3])
    report = tally.report(kept=1)
    assert dict(report.dropped) == {"missing user": 0, "missing item": 1}
    assert dict(report.first_row) == {"missing item": 3}


def test_a_report_is_a_snapshot_that_later_drops_and_callers_cannot_change() -> None:
    tally = QualityTally("shop.csv")
    tally.drop("missing user", rows=[2])
    report = tally.report(kept=0)
    tally.drop("missing user", rows=[1])
    assert report.dropped["missing user"] == 1 and report.first_row["missing user"] == 2
    with pytest.raises(TypeError):
        report.dropped["missing user"] = 5  # type: ignore[index]


def test_to_dict_gives_the_stable_json_shape() -> None:
    tally = QualityTally("shop.csv")
    tally.read(4)
    tally.drop("missing user", rows=[3, 5])
    assert tally.report(kept=2).to_dict() == {
        "source": "shop.csv",
        "rows_read": 4,
        "rows_kept": 2,
        "rows_dropped": 2,
        "dropped": {"missing user": 2},
        "first_row": {"missing user": 3},
    }


def test_format_lists_reasons_by_count_largest_first() -> None:
    tally = QualityTally("shop.csv", reasons=("unknown event type",))
    tally.read(12_345)
    tally.drop("missing user", rows=[4])
    tally.drop("missing item", rows=[5, 6, 7])
    assert tally.report(kept=12_341).format().splitlines() == [
        "data quality: shop.csv",
        "  rows read        12,345",
        "  dropped               3  missing item  (first at row 5)",
        "  dropped               1  missing user  (first at row 4)",
        "  dropped               0  unknown event type",
        "  rows kept        12,341",
    ]


def test_a_report_built_directly_has_nothing_dropped() -> None:
    report = DataQualityReport(source="shopsim(seed=0)", rows_read=3, rows_kept=3)
    assert report.rows_dropped == 0 and dict(report.dropped) == {}
