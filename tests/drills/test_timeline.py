from __future__ import annotations

import math

import numpy as np
import pytest

from recdrill.drills.replayer import RequestRecord, arrival_times
from recdrill.drills.scenario import Hypothesis
from recdrill.drills.timeline import RequestTable, first_second, per_second, window_stats


def _record(
    t: float, served_by: str = "primary", ok: bool = True, ndcg: float = 0.5, ms: float = 5.0
) -> RequestRecord:
    return RequestRecord(t, ms, 200 if ok else 503, served_by if ok else None, float(ndcg > 0), ndcg)


def test_arrivals_are_seeded_poisson() -> None:
    times = arrival_times(rate=50, duration_s=20, seed=3)
    assert np.array_equal(times, arrival_times(50, 20, 3))
    assert not np.array_equal(times, arrival_times(50, 20, 4))
    assert abs(len(times) - 1000) < 5 * math.sqrt(1000)  # Poisson count: mean 1000, sd ~32
    assert np.all(np.diff(times) > 0) and times.max() < 20


def test_window_stats_count_failures_and_fallbacks() -> None:
    records = RequestTable.from_records(
        [_record(0.1), _record(0.2, "popular", ndcg=0.0), _record(0.3, ok=False, ndcg=0.0), _record(1.5)]
    )
    stats = window_stats(records, 0.0, 1.0, "primary")
    assert stats.requests == 3
    assert stats.availability == pytest.approx(2 / 3)
    assert stats.fallback_share == 0.5  # of the two answers, one came from popularity
    assert stats.ndcg10 == pytest.approx(0.5 / 3)  # the failure scores 0
    assert stats.served_by == {"popular": 1, "primary": 1}
    assert window_stats(records, 5.0, 6.0, "primary").availability is None


def test_per_second_rows_flag_deviations_and_find_recovery() -> None:
    # Seconds 0-3 healthy, 4-5 served by popularity, 6-9 healthy again; 10 requests a second.
    records = [
        _record(t + i / 10, "popular" if 4 <= t <= 5 else "primary") for t in range(10) for i in range(10)
    ]
    hypotheses = [Hypothesis(name="primary", metric="fallback_share", max=0.2)]
    rows = per_second(
        RequestTable.from_records(records),
        10,
        hypotheses,
        window_s=1.0,
        primary_tier="primary",
        baseline_ndcg10=0.5,
    )
    assert [r["hypotheses_ok"] for r in rows] == [True] * 4 + [False] * 2 + [True] * 4
    assert rows[4]["served_by"] == {"popular": 10} and rows[4]["rps"] == 10
    assert rows[5]["deviating"] == ["primary"]
    assert first_second(rows, 3, 10, ok=False) == 4
    assert first_second(rows, 6, 10, ok=True) == 6
    assert first_second(rows, 4, 6, ok=True) is None


def test_first_try_and_after_retry_availability_are_counted_apart() -> None:
    retried_ok = RequestRecord(0.2, 9.0, 200, "primary", 1.0, 0.5, first_status=0)
    retried_failed = RequestRecord(0.3, 9.0, 503, None, 0.0, 0.0, "down", first_status=503)
    records = RequestTable.from_records([_record(0.1), retried_ok, retried_failed, _record(0.4)])
    stats = window_stats(records, 0.0, 1.0, "primary")
    assert (stats.availability, stats.availability_first_try, stats.retried) == (0.75, 0.5, 2)
    assert retried_ok.ok and not retried_ok.ok_first_try and not _record(0.1).retried
    (row,) = per_second(records, 1, [Hypothesis(name="up", metric="availability_first_try", min=0.9)],
                        window_s=1.0, primary_tier="primary", baseline_ndcg10=0.5)  # fmt: skip
    assert row["error_rate"] == 0.25 and row["error_rate_first_try"] == 0.5 and row["retried"] == 2
    assert row["deviating"] == ["up"]
