"""The canary judge: from each arm's online statistics, wait, promote, or roll back the candidate.

Pure (no clock, no I/O), so its decisions are unit-tested exactly; the server calls it about once a
second (``canary.py``). It lives in ``serving`` rather than ``monitor`` because the server itself
acts on it (dependencies point serving -> monitor, never back).

Quality is a non-inferiority test on NDCG@10 with a relative margin. With ``delta`` =
``max_ndcg_drop``, the candidate is acceptable while its mean NDCG@10 is at least ``(1 - delta)``
times the primary's. The statistic is ``d = mean_c - (1 - delta) * mean_p`` with the Welch standard
error ``se = sqrt(var_c / n_c + (1 - delta)^2 * var_p / n_p)``:

- ``d + z * se < 0``: confidently worse than the margin allows: **rollback**;
- ``d - z * se > 0``: confidently within the margin (and latency is fine): **promote**;
- otherwise **wait** for more labels.

Why a one-sided test with a margin, not "the mean is lower": NDCG per request is mostly 0 with a
few hits, so two equally good models differ by chance for hundreds of labels; a bare comparison
would roll back a good candidate half the time. A relative margin carries across catalogues whose
absolute NDCG differs tenfold. The judge looks again every second, and each look is another chance
of a false alarm (the sequential-testing problem), so ``z`` defaults to 2.326 (one-sided 99%)
rather than 1.645, and nothing is decided before ``min_samples`` labels per arm.

Latency: the candidate is rolled back when its p99 exceeds ``max_p99_ratio`` times the primary's
plus ``p99_slack_ms`` (a ratio of two sub-millisecond p99s is noise; the slack keeps it from
deciding alone), once each arm has ``min_latency_samples`` answers: a p99 of fewer than about a
hundred answers is little more than their maximum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from recdrill._params import validate_params

Decision = Literal["wait", "promote", "rollback"]
Z_ONE_SIDED_99 = 2.326


@dataclass(frozen=True)
class ArmStats:
    """What one arm has seen: ``labels`` scored feedback events with the sum and the sum of squares
    of their NDCG@10, ``answers`` served, and the p99 of recent answer latencies (None: none yet)."""

    labels: int = 0
    ndcg_sum: float = 0.0
    ndcg_sq_sum: float = 0.0
    answers: int = 0
    p99_ms: float | None = None

    @property
    def ndcg_mean(self) -> float:
        return self.ndcg_sum / self.labels if self.labels else 0.0

    @property
    def ndcg_var(self) -> float:
        """Sample variance (n - 1); 0 below two labels."""
        if self.labels < 2:
            return 0.0
        mean = self.ndcg_mean
        return max(0.0, (self.ndcg_sq_sum - self.labels * mean * mean) / (self.labels - 1))


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    reason: str


@dataclass(frozen=True)
class CanaryJudge:
    """Decides from two :class:`ArmStats`; see the module docstring for the test.

    Example:
        >>> judge = CanaryJudge(min_samples=10, max_ndcg_drop=0.1, max_p99_ratio=2.0)
        >>> good = ArmStats(labels=100, ndcg_sum=25.0, ndcg_sq_sum=20.0, answers=100, p99_ms=5.0)
        >>> bad = ArmStats(labels=100, ndcg_sum=2.0, ndcg_sq_sum=1.0, answers=100, p99_ms=5.0)
        >>> judge.decide(good, bad).decision
        'rollback'
    """

    min_samples: int = 100
    max_ndcg_drop: float = 0.1
    max_p99_ratio: float = 1.5
    z: float = Z_ONE_SIDED_99
    p99_slack_ms: float = 5.0
    min_latency_samples: int = 100

    def __post_init__(self) -> None:
        checks = {
            "min_samples": (self.min_samples, self.min_samples >= 2, "an int >= 2"),
            "max_ndcg_drop": (self.max_ndcg_drop, 0.0 <= self.max_ndcg_drop < 1.0, "in [0, 1)"),
            "max_p99_ratio": (self.max_p99_ratio, self.max_p99_ratio >= 1.0, ">= 1"),
            "z": (self.z, self.z > 0, "positive"),
            "p99_slack_ms": (self.p99_slack_ms, self.p99_slack_ms >= 0, ">= 0"),
            "min_latency_samples": (self.min_latency_samples, self.min_latency_samples >= 1, ">= 1"),
        }
        validate_params("CanaryJudge", checks)

    def decide(self, primary: ArmStats, candidate: ArmStats) -> Verdict:
        """``wait``, ``promote`` or ``rollback``, with a one-line reason naming the figures."""
        slow = self._latency_regression(primary, candidate)
        if slow is not None:
            return Verdict("rollback", slow)
        if min(primary.labels, candidate.labels) < self.min_samples:
            return Verdict(
                "wait",
                f"labels {primary.labels} primary / {candidate.labels} candidate, "
                f"need {self.min_samples} each",
            )
        keep = 1.0 - self.max_ndcg_drop
        bound = keep * primary.ndcg_mean
        difference = candidate.ndcg_mean - bound
        se = math.sqrt(
            candidate.ndcg_var / candidate.labels + keep * keep * primary.ndcg_var / primary.labels
        )
        figures = (
            f"ndcg@10 {candidate.ndcg_mean:.4f} candidate vs {primary.ndcg_mean:.4f} primary "
            f"(floor {bound:.4f}, z*se {self.z * se:.4f}, n {candidate.labels}/{primary.labels})"
        )
        if difference + self.z * se < 0:
            return Verdict("rollback", f"{figures}: worse beyond the {self.max_ndcg_drop:.0%} margin")
        if difference - self.z * se > 0 and self._latency_known(primary, candidate):
            return Verdict("promote", f"{figures}: no regression")
        return Verdict("wait", f"{figures}: not yet decided")

    def _latency_known(self, primary: ArmStats, candidate: ArmStats) -> bool:
        return (
            min(primary.answers, candidate.answers) >= self.min_latency_samples
            and primary.p99_ms is not None
            and candidate.p99_ms is not None
        )

    def _latency_regression(self, primary: ArmStats, candidate: ArmStats) -> str | None:
        if not self._latency_known(primary, candidate):
            return None
        assert primary.p99_ms is not None and candidate.p99_ms is not None  # _latency_known said so
        limit = self.max_p99_ratio * primary.p99_ms + self.p99_slack_ms
        if candidate.p99_ms <= limit:
            return None
        return (
            f"p99 {candidate.p99_ms:.1f} ms candidate vs {primary.p99_ms:.1f} ms primary "
            f"(limit {limit:.1f} ms = {self.max_p99_ratio:g} x + {self.p99_slack_ms:g} ms)"
        )
