"""ArmTracker: each arm's last served list per user, scored once against the user's next label."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recdrill.data.pseudonymise import Pseudonymiser
from recdrill.serving.canary.judge import ArmStats
from recdrill.serving.canary.stats import LABEL_EVENTS, TOP, ArmTracker

ITEMS = [f"SKU-{i}" for i in range(15)]


@pytest.fixture
def tracker() -> ArmTracker:
    return ArmTracker(Pseudonymiser(b"s" * 32))


def test_a_label_scores_the_items_ndcg_in_the_remembered_list(tracker: ArmTracker) -> None:
    tracker.served("primary", "U-1", ITEMS)
    assert tracker.labelled("U-1", "SKU-1", "click") == [("primary", 1.0 / math.log2(3))]
    stats = tracker.stats("primary")
    assert (stats.labels, stats.ndcg_sum, stats.ndcg_sq_sum) == (
        1,
        pytest.approx(0.6309298),
        pytest.approx(0.3980723),
    )


def test_one_answer_yields_at_most_one_label(tracker: ArmTracker) -> None:
    tracker.served("primary", "U-1", ITEMS)
    assert tracker.labelled("U-1", "SKU-0", "cart") == [("primary", 1.0)]
    assert tracker.labelled("U-1", "SKU-0", "purchase") == []  # the list was forgotten
    assert tracker.unmatched == 1 and tracker.stats("primary").labels == 1


def test_views_are_not_labels_and_keep_the_list(tracker: ArmTracker) -> None:
    assert {"click", "cart", "purchase"} == LABEL_EVENTS
    tracker.served("candidate", "U-1", ITEMS)
    assert tracker.labelled("U-1", "SKU-0", "view") == []
    assert tracker.unmatched == 0
    assert tracker.labelled("U-1", "SKU-2", "purchase") == [("candidate", 0.5)]


def test_each_arm_that_served_the_user_is_scored(tracker: ArmTracker) -> None:
    tracker.served("primary", "U-1", ITEMS)
    tracker.served("candidate", "U-1", list(reversed(ITEMS)))
    scored = dict(tracker.labelled("U-1", "SKU-14", "click"))
    # Only the top ten count: SKU-14 is 15th for the primary, first for the candidate.
    assert scored == {"primary": 0.0, "candidate": 1.0}
    assert tracker.stats("primary").labels == tracker.stats("candidate").labels == 1
    assert tracker.stats("primary").ndcg_mean == 0.0 and tracker.stats("candidate").ndcg_mean == 1.0


def test_a_new_list_replaces_the_arms_previous_one(tracker: ArmTracker) -> None:
    tracker.served("primary", "U-1", ITEMS)
    tracker.served("primary", "U-1", ["SKU-9", "SKU-0"])
    assert tracker.labelled("U-1", "SKU-9", "click") == [("primary", 1.0)]
    assert TOP == 10


def test_a_label_for_an_unknown_user_is_unmatched(tracker: ArmTracker) -> None:
    tracker.served("primary", "U-1", ITEMS)
    assert tracker.labelled("U-2", "SKU-0", "click") == []
    assert tracker.unmatched == 1 and tracker.stats("primary").labels == 0


def test_the_oldest_users_lists_are_forgotten_beyond_max_users() -> None:
    tracker = ArmTracker(Pseudonymiser(b"s" * 32), max_users=2)
    for user in ("U-1", "U-2", "U-3"):
        tracker.served("primary", user, ITEMS)
    assert tracker.labelled("U-1", "SKU-0", "click") == []
    assert tracker.labelled("U-3", "SKU-0", "click") == [("primary", 1.0)]
    assert tracker.unmatched == 1


def test_answers_count_and_the_p99_is_taken_over_their_latencies(tracker: ArmTracker) -> None:
    assert tracker.stats("primary") == ArmStats() and tracker.stats("primary").p99_ms is None
    latencies_ms = np.arange(1, 101, dtype=float)
    for latency in latencies_ms:
        tracker.answered("primary", latency / 1000.0)
    stats = tracker.stats("primary")
    assert stats.answers == 100
    assert stats.p99_ms == pytest.approx(float(np.percentile(latencies_ms, 99)))
    assert stats.labels == 0


def test_reset_forgets_every_list_and_statistic(tracker: ArmTracker) -> None:
    tracker.served("primary", "U-1", ITEMS)
    tracker.answered("primary", 0.01)
    tracker.labelled("U-9", "SKU-0", "click")
    tracker.reset()
    assert tracker.stats("primary") == ArmStats() and tracker.unmatched == 0
    assert tracker.labelled("U-1", "SKU-0", "click") == []
