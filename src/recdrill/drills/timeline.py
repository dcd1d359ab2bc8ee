"""Judging a drill from its request records: per-second rows, windowed metrics and hypotheses."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from recdrill.drills.replayer import RequestRecord
from recdrill.drills.scenario import Hypothesis, Metric


@dataclass(frozen=True)
class RequestTable:
    """Request records as columns, sorted by scheduled send time."""

    scheduled_s: np.ndarray
    latency_ms: np.ndarray
    ok: np.ndarray  # 2xx after at most one retry
    ok_first_try: np.ndarray  # 2xx without a retry
    retried: np.ndarray
    served_by: np.ndarray  # object: tier name or None
    ndcg10: np.ndarray

    @classmethod
    def from_records(cls, records: list[RequestRecord]) -> RequestTable:
        ordered = sorted(records, key=lambda r: r.scheduled_s)
        return cls(
            scheduled_s=np.array([r.scheduled_s for r in ordered], dtype=np.float64),
            latency_ms=np.array([r.latency_ms for r in ordered], dtype=np.float64),
            ok=np.array([r.ok for r in ordered], dtype=bool),
            ok_first_try=np.array([r.ok_first_try for r in ordered], dtype=bool),
            retried=np.array([r.retried for r in ordered], dtype=bool),
            served_by=np.array([r.served_by for r in ordered], dtype=object),
            ndcg10=np.array([r.ndcg10 for r in ordered], dtype=np.float64),
        )

    def between(self, start: float, end: float) -> slice:
        lo, hi = np.searchsorted(self.scheduled_s, [start, end])
        return slice(int(lo), int(hi))


@dataclass(frozen=True)
class WindowStats:
    """What the requests scheduled in one window experienced. Failed requests score NDCG 0: the
    user got no recommendation. ``availability`` counts answers after at most one retry,
    ``availability_first_try`` those the first attempt got."""

    requests: int
    seconds: float
    availability: float | None
    availability_first_try: float | None
    retried: int
    p50_ms: float | None
    p99_ms: float | None
    ndcg10: float | None
    fallback_share: float | None
    served_by: dict[str, int]

    def metric(self, name: Metric, baseline_ndcg10: float | None) -> float | None:
        if name == "ndcg_ratio":
            if self.ndcg10 is None or not baseline_ndcg10:
                return None
            return self.ndcg10 / baseline_ndcg10
        value: float | None = getattr(self, name)
        return value


def window_stats(records: RequestTable, start: float, end: float, primary_tier: str) -> WindowStats:
    part = records.between(start, end)
    n = part.stop - part.start
    if n == 0:
        return WindowStats(0, end - start, None, None, 0, None, None, None, None, {})
    ok = records.ok[part]
    latency = records.latency_ms[part]
    tiers = records.served_by[part][ok]
    served = Counter(str(t) for t in tiers)
    answered = int(ok.sum())
    return WindowStats(
        requests=n,
        seconds=end - start,
        availability=float(ok.mean()),
        availability_first_try=float(records.ok_first_try[part].mean()),
        retried=int(records.retried[part].sum()),
        p50_ms=float(np.percentile(latency, 50)),
        p99_ms=float(np.percentile(latency, 99)),
        ndcg10=float(records.ndcg10[part].mean()),
        fallback_share=(answered - served.get(primary_tier, 0)) / answered if answered else None,
        served_by=dict(sorted(served.items())),
    )


def judge_hypotheses(
    hypotheses: list[Hypothesis], stats: WindowStats, baseline_ndcg10: float | None
) -> list[dict[str, Any]]:
    """Each hypothesis with its value over the window and whether it held."""
    results = []
    for hypothesis in hypotheses:
        value = stats.metric(hypothesis.metric, baseline_ndcg10)
        results.append(
            {
                "name": hypothesis.name,
                "metric": hypothesis.metric,
                "min": hypothesis.min,
                "max": hypothesis.max,
                "value": value,
                "ok": hypothesis.holds(value),
            }
        )
    return results


def per_second(
    records: RequestTable,
    duration_s: float,
    hypotheses: list[Hypothesis],
    window_s: float,
    primary_tier: str,
    baseline_ndcg10: float | None,
) -> list[dict[str, Any]]:
    """One row per second: that second's traffic, plus the hypotheses over the window ending with it.

    The first rows, before a full window exists, check what there is so far.
    """
    rows = []
    for t in range(math.ceil(duration_s)):
        second = window_stats(records, t, t + 1, primary_tier)
        window = window_stats(records, max(0.0, t + 1 - window_s), t + 1, primary_tier)
        results = judge_hypotheses(hypotheses, window, baseline_ndcg10)
        rows.append(
            {
                "t": t,
                "requests": second.requests,
                "rps": second.requests / second.seconds,
                "p50_ms": second.p50_ms,
                "p99_ms": second.p99_ms,
                "error_rate": None if second.availability is None else 1.0 - second.availability,
                "error_rate_first_try": (
                    None if second.availability_first_try is None else 1.0 - second.availability_first_try
                ),
                "retried": second.retried,
                "served_by": second.served_by,
                "ndcg10": second.ndcg10,
                "window_ndcg10": window.ndcg10,
                "hypotheses_ok": all(r["ok"] for r in results),
                "deviating": [r["name"] for r in results if not r["ok"]],
            }
        )
    return rows


def first_second(rows: list[dict[str, Any]], start: float, end: float, ok: bool) -> int | None:
    """The first row ``t`` in ``[start, end)`` whose hypotheses all hold (``ok``) or not (``not ok``)."""
    for row in rows:
        if start <= row["t"] < end and row["hypotheses_ok"] == ok:
            return int(row["t"])
    return None
