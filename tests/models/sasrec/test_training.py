"""Tests of recdrill.models.sasrec.training: the warm-up cosine schedule and the epoch loop of the Trainer."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from recdrill.data.dataset import Dataset
from recdrill.data.ragged import Ragged
from recdrill.data.splits import EvalFold, hold_out_last
from recdrill.models.sasrec.estimator import SASRecRecommender
from recdrill.models.sasrec.network import SASRecNet
from recdrill.models.sasrec.training import Trainer, WarmupCosine

TINY = {"dim": 16, "blocks": 1, "heads": 1, "max_len": 10, "max_epochs": 2, "batch_size": 32, "dropout": 0.0}


def ready_model(n_items: int, **params: object) -> SASRecRecommender:
    """A SASRec model as ``fit`` hands it to the Trainer: a fresh network, no side information."""
    torch.manual_seed(0)
    model = SASRecRecommender(**{**TINY, "patience": 5, "device": "cpu", **params})  # type: ignore[arg-type]
    model.n_items_ = n_items
    model.attributes_ = None
    model.price_buckets_ = None
    model.net_ = SASRecNet(n_items, dim=16, blocks=1, heads=1, max_len=10, dropout=0.0)
    return model


def trainer_for(
    model: SASRecRecommender, shop: Dataset, validate: bool = True, refit_epochs: int = 0
) -> tuple[Trainer, Ragged, EvalFold | None]:
    sequences = shop.sequences()
    rng = np.random.default_rng(0)
    train, fold = hold_out_last(shop, sequences) if validate else (sequences, None)
    return Trainer(model, shop, train, fold, rng, torch.device("cpu"), refit_epochs), sequences, fold


def weights_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_warmup_ramps_linearly_then_the_cosine_decays_to_zero_at_the_horizon() -> None:
    schedule = WarmupCosine(warmup=2, horizon=4)
    values = [schedule(step) for step in range(7)]
    expected = [
        0.5,
        0.5 * (1 + math.cos(math.pi / 4)),
        0.5,
        0.5 * (1 + math.cos(3 * math.pi / 4)),
        0.0,
        0.0,
        0.0,
    ]
    assert values == pytest.approx(expected, abs=1e-12)


def test_moving_the_horizon_stretches_the_decay() -> None:
    schedule = WarmupCosine(warmup=2, horizon=4)
    schedule.horizon = 8
    assert schedule(3) == pytest.approx(0.5 * (1 + math.cos(3 * math.pi / 8)))
    assert schedule(8) == pytest.approx(0.0, abs=1e-12)


def test_no_warmup_starts_at_the_full_rate_and_constant_skips_the_decay() -> None:
    assert WarmupCosine(warmup=0, horizon=10)(0) == 1.0
    constant = WarmupCosine(warmup=4, horizon=2, constant=True)
    assert [constant(step) for step in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]


def test_two_epochs_are_logged_and_the_best_validation_epoch_is_kept(chain_shop: Dataset) -> None:
    model = ready_model(20)
    trainer, _, _ = trainer_for(model, chain_shop)
    progress = trainer.train_epochs()
    assert [entry["epoch"] for entry in progress.log] == [1, 2]
    scores = [entry["val_ndcg10"] for entry in progress.log]
    assert all(0.0 <= s <= 1.0 for s in scores) and all(math.isfinite(e["loss"]) for e in progress.log)
    assert progress.best_epoch == 1 + int(np.argmax(scores)) and progress.best_score == max(scores)
    assert progress.epoch == 2 and progress.done
    # The best epoch's weights are put back, so validating again gives the best score.
    assert trainer.best_weights is not None
    assert weights_equal(model.net_.state_dict(), trainer.best_weights)
    assert trainer.validation_ndcg() == pytest.approx(progress.best_score)


def test_the_schedule_ends_where_training_ends(chain_shop: Dataset) -> None:
    model = ready_model(20)
    trainer, _, _ = trainer_for(model, chain_shop)
    # 60 users with 3+ items each, 32 a batch: 2 steps an epoch, so 2 epochs are 4 steps.
    assert trainer.steps_per_epoch == 2 and trainer.rate.warmup == 2 and trainer.rate.horizon == 4
    progress = trainer.train_epochs()
    assert progress.horizon_steps == 4
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)


def test_without_validation_the_last_epoch_is_the_model(chain_shop: Dataset) -> None:
    trainer, _, _ = trainer_for(ready_model(20), chain_shop, validate=False)
    progress = trainer.train_epochs()
    assert progress.best_epoch == 2 and trainer.best_weights is None
    assert all(math.isnan(entry["val_ndcg10"]) for entry in progress.log)
    assert math.isnan(trainer.validation_ndcg())


def test_patience_stops_training_after_epochs_without_a_better_score(chain_shop: Dataset) -> None:
    model = ready_model(20, max_epochs=30, patience=1, lr=0.0)  # a zero rate never improves
    progress = trainer_for(model, chain_shop)[0].train_epochs()
    assert [entry["epoch"] for entry in progress.log] == [1, 2]
    assert (progress.best_epoch, progress.stale, progress.done) == (1, 1, True)


def test_refit_trains_on_every_sequence_without_validation_and_anneals_to_zero(chain_shop: Dataset) -> None:
    model = ready_model(20)
    trainer, sequences, _ = trainer_for(model, chain_shop, refit_epochs=1)
    trainer.train_epochs()
    before = {k: v.clone() for k, v in model.net_.state_dict().items()}
    trainer.refit(sequences)
    log = trainer.progress.log
    assert [entry["epoch"] for entry in log] == [1, 2, 3] and math.isnan(log[2]["val_ndcg10"])
    assert not weights_equal(model.net_.state_dict(), before)
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)


def test_refit_without_refit_epochs_does_nothing(chain_shop: Dataset) -> None:
    trainer, sequences, _ = trainer_for(ready_model(20), chain_shop, refit_epochs=0)
    trainer.train_epochs()
    trainer.refit(sequences)
    assert len(trainer.progress.log) == 2


def test_a_run_out_of_time_stops_after_an_epoch_without_a_step(chain_shop: Dataset) -> None:
    model = ready_model(20, max_minutes=0.0, max_epochs=5)
    before = {k: v.clone() for k, v in model.net_.state_dict().items()}
    trainer, _, _ = trainer_for(model, chain_shop, validate=False)
    progress = trainer.train_epochs()
    assert len(progress.log) == 1 and math.isnan(progress.log[0]["loss"]) and progress.done
    assert weights_equal(model.net_.state_dict(), before) and trainer.out_of_time()


def test_a_checkpoint_is_written_each_epoch_resumed_and_removed_when_finished(
    chain_shop: Dataset, tmp_path: Path
) -> None:
    model = ready_model(20)
    model.checkpoint_path = tmp_path / "training-checkpoint.pt"
    first, _, _ = trainer_for(model, chain_shop)
    done = first.train_epochs()
    assert model.checkpoint_path.is_file()
    trained = {k: v.clone() for k, v in model.net_.state_dict().items()}
    # A new trainer for the same settings and data resumes the finished loop: no further epoch runs.
    second, _, _ = trainer_for(model, chain_shop)
    assert second.progress.epoch == 2 and second.progress.done
    again = second.train_epochs()
    assert again.log == done.log and again.best_epoch == done.best_epoch
    assert weights_equal(model.net_.state_dict(), trained)
    second.finish()
    assert not model.checkpoint_path.exists()
