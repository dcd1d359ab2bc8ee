"""The canary judge's decisions, exactly, and the per-arm label statistics it reads."""

from __future__ import annotations

import pytest

from recdrill.data.pseudonymise import Pseudonymiser
from recdrill.errors import ConfigError
from recdrill.eval.metrics import ndcg_of_item
from recdrill.serving.canary.judge import ArmStats, CanaryJudge
from recdrill.serving.canary.stats import ArmTracker


def arm(labels: int, hits: int, answers: int = 0, p99_ms: float | None = None) -> ArmStats:
    """``labels`` NDCG samples, ``hits`` of them 1.0 and the rest 0 (mean hits / labels)."""
    return ArmStats(labels, float(hits), float(hits), answers, p99_ms)


JUDGE = CanaryJudge(
    min_samples=50, max_ndcg_drop=0.1, max_p99_ratio=2.0, p99_slack_ms=5.0, min_latency_samples=100
)


def test_too_few_labels_waits_whatever_the_means() -> None:
    verdict = JUDGE.decide(arm(49, 40), arm(200, 0))
    assert verdict.decision == "wait" and "need 50 each" in verdict.reason


def test_a_clearly_worse_candidate_is_rolled_back_with_the_figures() -> None:
    # primary mean 0.30, candidate 0.05: d = 0.05 - 0.27 = -0.22; se ~ 0.07; d + 2.326 se < 0
    verdict = JUDGE.decide(arm(60, 18), arm(60, 3))
    assert verdict.decision == "rollback"
    assert "ndcg@10 0.0500 candidate vs 0.3000 primary" in verdict.reason and "10% margin" in verdict.reason


def test_a_slightly_worse_candidate_within_the_margin_is_not_rolled_back() -> None:
    # candidate 0.29 vs primary 0.30: the floor is 0.27, so it is inside the margin
    verdict = JUDGE.decide(arm(20000, 6000, 200, 10.0), arm(20000, 5800, 200, 10.0))
    assert verdict.decision == "promote"
    # the same means on few labels: undecided either way
    assert JUDGE.decide(arm(100, 30, 200, 10.0), arm(100, 29, 200, 10.0)).decision == "wait"


def test_worse_beyond_the_margin_needs_enough_evidence() -> None:
    # candidate 0.20 vs primary 0.30 (floor 0.27): with 50 labels the noise covers it ...
    assert JUDGE.decide(arm(50, 15), arm(50, 10)).decision == "wait"
    # ... with 2000 it does not
    assert JUDGE.decide(arm(2000, 600), arm(2000, 400)).decision == "rollback"


def test_an_equal_candidate_is_promoted_only_when_latency_is_known_and_fine() -> None:
    primary, candidate = arm(3000, 900), arm(3000, 900)
    assert JUDGE.decide(primary, candidate).decision == "wait"  # no latency samples yet
    fast = JUDGE.decide(arm(3000, 900, 200, 10.0), arm(3000, 900, 200, 24.0))
    assert fast.decision == "promote" and "no regression" in fast.reason


def test_a_slow_candidate_is_rolled_back_on_p99_even_without_labels() -> None:
    # limit = 2.0 * 10 + 5 = 25 ms
    assert JUDGE.decide(arm(0, 0, 100, 10.0), arm(0, 0, 100, 25.0)).decision == "wait"
    slow = JUDGE.decide(arm(0, 0, 100, 10.0), arm(0, 0, 100, 25.5))
    assert slow.decision == "rollback" and "p99 25.5 ms candidate vs 10.0 ms primary" in slow.reason
    # too few answers for a p99: not judged on it
    assert JUDGE.decide(arm(0, 0, 99, 10.0), arm(0, 0, 99, 500.0)).decision == "wait"


def test_zero_variance_arms_are_decided_by_their_means() -> None:
    assert JUDGE.decide(arm(50, 50), arm(50, 0)).decision == "rollback"
    assert JUDGE.decide(arm(50, 0), arm(50, 0)).decision == "wait"  # nothing to tell them apart


@pytest.mark.parametrize(
    "knobs",
    [{"min_samples": 1}, {"max_ndcg_drop": 1.0}, {"max_ndcg_drop": -0.1}, {"max_p99_ratio": 0.9}],
)
def test_bad_knobs_are_refused(knobs: dict[str, float]) -> None:
    with pytest.raises(ConfigError, match="parameter of CanaryJudge must be"):
        CanaryJudge(**knobs)  # type: ignore[arg-type]


def test_the_tracker_scores_each_served_list_once_per_label() -> None:
    tracker = ArmTracker(Pseudonymiser(b"k" * 32), max_users=2)
    tracker.served("primary", "U-1", ["a", "b", "c"])
    tracker.served("candidate", "U-1", ["c", "a"])
    assert tracker.labelled("U-1", "a", "view") == []  # a view is not a label
    assert tracker.labelled("U-1", "a", "click") == [
        ("primary", 1.0),
        ("candidate", ndcg_of_item(["c", "a"], "a")),
    ]
    assert tracker.labelled("U-1", "a", "click") == []  # the lists were used up
    assert tracker.unmatched == 1
    for user in ("U-2", "U-3", "U-4"):  # bounded: U-2 falls out
        tracker.served("primary", user, ["x"])
    assert tracker.labelled("U-2", "x", "purchase") == [] and tracker.labelled("U-4", "x", "cart") == [
        ("primary", 1.0)
    ]
    stats = tracker.stats("primary")
    assert (stats.labels, stats.ndcg_sum, stats.answers) == (2, 2.0, 0)
    tracker.answered("primary", 0.010)
    assert tracker.stats("primary").p99_ms == pytest.approx(10.0)
