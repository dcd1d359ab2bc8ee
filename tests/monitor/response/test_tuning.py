"""How a drift response makes its candidate (a refit with recent events weighted; the current model
untouched) and scores both models on the held-out slice."""

from __future__ import annotations

import numpy as np
import pytest

from recdrill.data.dataset import Catalog, Dataset, EventType, Interactions
from recdrill.eval.evaluate import evaluate
from recdrill.models.itemknn import ItemKNNRecommender
from recdrill.models.popularity import PopularityRecommender
from recdrill.monitor.response.data import RecentWindow, recent_weighted, split_recent
from recdrill.monitor.response.policy import ResponsePolicy
from recdrill.monitor.response.tuning import METRICS, active_sequences, fine_tune, heldout_metrics

USERS = [f"u{k}" for k in range(6)]
ITEMS = [f"i{k}" for k in range(12)]


def _shop(events: list[tuple[int, int, int]]) -> Dataset:
    """``(user, item, second)`` events over ``USERS`` and ``ITEMS``."""
    users, items, ts = (np.array(column, dtype=np.int64) for column in zip(*events, strict=True))
    return Dataset.create(
        "tune",
        np.array(USERS, dtype=object),
        Catalog(item_ids=np.array(ITEMS, dtype=object)),
        Interactions(users, items, ts, np.full(len(ts), EventType.CLICK)),
    )


def _window() -> tuple[Dataset, RecentWindow]:
    """Training: users 0-5 on items 1-6, item 0 the best-seller (users 4 and 5). Recent, users 0-3
    only: two events each on items 7-10 (fine-tuning), then item 0 (held out)."""
    training = [(u, 1 + u, 1) for u in range(6)] + [(u, 0, 2 + k) for u in (4, 5) for k in range(5)]
    recent = [(u, 7 + (u + k) % 4, 100 + 10 * k + u) for u in range(4) for k in range(2)]
    recent += [(u, 0, 200 + u) for u in range(4)]
    train = _shop(training)
    return train, split_recent(train, _shop(recent), now=None, window_s=1000.0, holdout_share=0.3)


def test_the_window_of_these_tests_holds_out_the_last_event_of_each_recent_user() -> None:
    _, window = _window()
    assert window.held_out.targets.tolist() == [0, 0, 0, 0]
    assert window.n_fine_tune == 8 and int(window.recent_rows.sum()) == 8


def test_a_model_that_can_only_refit_is_refitted_with_recent_events_weighted() -> None:
    train, window = _window()
    current = PopularityRecommender().fit(train)
    before = current.share_.copy()
    policy = ResponsePolicy(recent_weight=3)
    candidate = fine_tune(current, window, policy)
    assert type(candidate) is PopularityRecommender and candidate is not current
    np.testing.assert_array_equal(current.share_, before)  # the current model is left untouched
    assert current.trained_on_ == train.interactions_digest()
    weighted = recent_weighted(window.fine_tune_data, window.recent_rows, 3)
    assert candidate.trained_on_ == weighted.interactions_digest()
    counts = weighted.item_counts()
    assert counts[7:11].tolist() == [6, 6, 6, 6]  # two recent events each, counted three times
    np.testing.assert_allclose(candidate.share_, counts / counts.sum(), rtol=1e-6)


def test_a_refit_keeps_the_hyper_parameters_and_sees_nothing_from_the_split_on() -> None:
    train, window = _window()
    current = ItemKNNRecommender(neighbours=7, shrink=3.0).fit(train)
    candidate = fine_tune(current, window, ResponsePolicy(recent_weight=1))
    assert candidate.get_params() == current.get_params()
    assert candidate.trained_on_ == window.fine_tune_data.interactions_digest()
    assert int(window.fine_tune_data.interactions.timestamp.max()) < window.split_time


def test_heldout_metrics_are_ndcg_and_hit_rate_at_10_of_the_full_ranking() -> None:
    train, window = _window()
    model = PopularityRecommender().fit(train)
    metrics = heldout_metrics(model, window)
    assert tuple(metrics) == METRICS == ("NDCG@10", "HR@10")
    # Item 0 is the best-seller and in none of the held-out users' histories: ranked first.
    assert metrics == {"NDCG@10": pytest.approx(1.0), "HR@10": pytest.approx(1.0)}
    report = evaluate(model, window.held_out, model_name=model.kind, list_size=0)
    assert metrics == {name: report.metrics[name] for name in METRICS}


def test_active_sequences_are_the_whole_histories_of_the_recent_users_only() -> None:
    _, window = _window()
    active = active_sequences(window)
    inter = active.interactions
    assert sorted(set(inter.user.tolist())) == [0, 1, 2, 3]  # users 4 and 5 did nothing recently
    assert len(inter) == 4 + 8  # their training event and their recent events before the split
    assert inter.timestamp.min() == 1 and int(inter.timestamp.max()) < window.split_time
