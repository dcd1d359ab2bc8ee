"""Replaying a shop through the live monitor on a simulated clock: the request and pass counts, the
onset mapping, alerts as flags held for ``sustain_s``, the models, and a shop too small to replay."""

from __future__ import annotations

import numpy as np
import pytest

from recdrill.data.dataset import Dataset
from recdrill.data.shopsim import ShopSim
from recdrill.errors import ConfigError
from recdrill.models.itemknn import ItemKNNRecommender
from recdrill.models.popularity import PopularityRecommender
from recdrill.monitor.replay.shop import ReplayResult, replay_shop, train_models

STATIONARY_S, LIVE_S, PASS_S, SUSTAIN_S, RATE = 200.0, 100.0, 5.0, 15.0, 8.0


@pytest.fixture(scope="module")
def shop() -> Dataset:
    return ShopSim(n_items=150, n_users=500, n_events=16_000, seed=3).generate()


def _cut(shop: Dataset) -> tuple[int, int]:
    t = shop.interactions.timestamp
    train_end = int(t.min() + 0.8 * (t.max() - t.min()))
    return train_end, train_end + (int(t.max()) - train_end) // 4


@pytest.fixture(scope="module")
def replayed(shop: Dataset) -> ReplayResult:
    train_end, stop = _cut(shop)
    return replay_shop(
        shop,
        train_end=train_end,
        stop=stop,
        stationary_s=STATIONARY_S,
        live_s=LIVE_S,
        rate_per_s=RATE,
        onset=train_end + (stop - train_end) // 2,
        pass_s=PASS_S,
        sustain_s=SUSTAIN_S,
        window=400,
        min_current=50,
        seed=1,
    )


def test_every_event_of_both_phases_is_replayed_once(shop: Dataset, replayed: ReplayResult) -> None:
    train_end, stop = _cut(shop)
    t = shop.interactions.timestamp
    n_live = int(((t >= train_end) & (t < stop)).sum())
    assert replayed.requests == int(RATE * STATIONARY_S) + n_live
    assert replayed.stationary_s == STATIONARY_S


def test_passes_run_every_pass_s_of_simulated_time(replayed: ReplayResult) -> None:
    n = int((STATIONARY_S + LIVE_S) / PASS_S)
    assert replayed.passes == n == len(replayed.pass_times) == len(replayed.requests_at)
    assert replayed.pass_times == [PASS_S * (i + 1) for i in range(n)]
    assert np.all(np.diff(replayed.requests_at) >= 0) and replayed.requests_at[-1] == replayed.requests
    assert all(len(flags) == n for flags in replayed.flags.values())
    assert {"history_length", "history_category", "user_kind", "top_score"} <= set(replayed.flags)


def test_the_onset_is_mapped_onto_the_live_phases_clock(replayed: ReplayResult) -> None:
    assert replayed.onset_s == pytest.approx(STATIONARY_S + LIVE_S / 2, abs=0.01)


def test_an_alert_is_each_run_of_a_flag_held_for_sustain_s(replayed: ReplayResult) -> None:
    assert replayed.alerts  # tiny windows on a tiny shop: some features are held long enough
    k = int(SUSTAIN_S / PASS_S)  # passes after a run's first before it alerts
    expected = []
    for name, held in replayed.flags.items():
        run = 0
        for i, flag in enumerate(held):
            run = run + 1 if flag else 0
            if run == k + 1:
                expected.append((name, replayed.pass_times[i]))
    assert sorted(replayed.alerts) == sorted(expected)


def test_first_flag_is_the_first_flagged_pass_from_the_onset_on(replayed: ReplayResult) -> None:
    onset = replayed.onset_s
    assert onset is not None
    expected = {}
    for name, held in replayed.flags.items():
        after = [t for t, flag in zip(replayed.pass_times, held, strict=True) if flag and t >= onset]
        if after:
            expected[name] = after[0] - onset
    assert replayed.first_flag == pytest.approx(expected)


def test_requests_until_reads_the_pass_at_or_after_a_second() -> None:
    result = ReplayResult(pass_times=[5.0, 10.0, 15.0], requests_at=[3, 7, 9])
    assert [result.requests_until(s) for s in (0.0, 5.0, 10.0, 12.0, 15.0, 100.0)] == [3, 3, 7, 9, 9, 9]


def test_the_models_are_trained_on_the_events_before_train_end(shop: Dataset) -> None:
    train_end, _ = _cut(shop)
    train, primary, fallback = train_models(shop, train_end)
    assert int(train.interactions.timestamp.max()) < train_end
    assert len(train.interactions) == int((shop.interactions.timestamp < train_end).sum())
    assert isinstance(primary, ItemKNNRecommender) and isinstance(fallback, PopularityRecommender)
    assert primary.trained_on_ == fallback.trained_on_ == train.interactions_digest()


def test_a_shop_whose_reference_period_holds_too_few_events_cannot_be_replayed() -> None:
    small = ShopSim(n_items=60, n_users=100, n_events=2000, seed=1).generate()
    t = small.interactions.timestamp
    train_end = int(t.min() + 0.8 * (t.max() - t.min()))
    with pytest.raises(
        ConfigError, match="holds no events beyond the 2000 of the reference: replay a larger shop"
    ):
        replay_shop(small, train_end=train_end, stop=int(t.max()))
