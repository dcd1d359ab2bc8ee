"""The Transformer recommender: it learns, it is repeatable, and test data cannot steer it."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from recdrill.cli import main
from recdrill.data.dataset import Dataset
from recdrill.data.ragged import Ragged
from recdrill.data.splits import hold_out_last
from recdrill.digests import write_digests
from recdrill.errors import ConfigError, ModelFileError
from recdrill.models.factory import load_model
from recdrill.models.sasrec.batches import left_pad, training_batches
from recdrill.models.sasrec.checkpoint import TrainingProgress, load_checkpoint, run_key, save_checkpoint
from recdrill.models.sasrec.estimator import SASRecRecommender
from recdrill.models.sasrec.network import SASRecNet
from tests.conftest import make_shop, write_sequences_with_last

FAST = {"dim": 32, "blocks": 1, "heads": 2, "max_len": 8, "dropout": 0.0, "lr": 3e-3, "batch_size": 32}


def test_training_batches_pair_each_position_with_the_next_item() -> None:
    sequences = Ragged.from_lists([[1, 2, 3], [4], [5, 6], [7, 8, 9, 10]])
    batches = list(training_batches(sequences, batch_size=2, max_len=2, rng=np.random.default_rng(0)))
    pairs = {
        tuple(map(tuple, (i.tolist(), t.tolist())))
        for inputs, targets in batches
        for i, t in zip(inputs, targets, strict=True)
    }
    # Shifted by one (0 = padding); the single-item user has nothing to learn from; max_len keeps the tail.
    assert pairs == {((2, 3), (3, 4)), ((0, 6), (6, 7)), ((9, 10), (10, 11))}


def test_it_learns_a_deterministic_next_item(chain_shop: Dataset) -> None:
    model = SASRecRecommender(**FAST, max_epochs=60, patience=60, seed=1).fit(chain_shop)
    recs = model.recommend([[2, 3, 4], [10, 11], [0, 1, 2, 3, 4, 5]], k=1)
    assert recs.items[:, 0].tolist() == [5, 12, 6]
    assert model.training_log_["best_val_ndcg10"] > 0.8


def test_same_seed_same_weights_other_seed_other_weights(chain_shop: Dataset) -> None:
    def weights(seed: int) -> np.ndarray:
        model = SASRecRecommender(**FAST, max_epochs=3, patience=3, seed=seed).fit(chain_shop)
        return torch.cat([p.detach().flatten() for p in model.net_.parameters()]).numpy()

    assert np.array_equal(weights(5), weights(5))
    assert not np.array_equal(weights(5), weights(6))


def test_empty_histories_get_finite_scores(chain_shop: Dataset) -> None:
    model = SASRecRecommender(**FAST, max_epochs=2, patience=2).fit(chain_shop)
    assert np.isfinite(model.score([[], [3]])).all()


def test_test_items_cannot_change_the_trained_model(tmp_path: Path) -> None:
    # Two shops that differ only in every user's last (test) item must train to identical models.
    users = 40
    first = write_sequences_with_last(tmp_path / "a.txt", [2] * users)
    second = write_sequences_with_last(tmp_path / "b.txt", [3 + u % 5 for u in range(users)])
    saved = []  # same catalogue in both (the last items also occur earlier), only the targets differ
    # Few epochs: the cosine horizon shortens when the first epoch is slow enough for the time budget
    # to bind, so on a starved machine the two runs could differ by timing alone (seen under load).
    params = tmp_path / "params.json"
    # A fixed item-to-item mix (auto picks 0 on this data), so its table is compared too.
    params.write_text(json.dumps({"max_epochs": 10, "transition_mix": 0.3}))
    for data in (first, second):
        out = tmp_path / f"model-{data.stem}"
        command = ["train", "--data", str(data), "--model", "sasrec", "--out", str(out)]
        assert main([*command, "--params", str(params)]) == 0
        saved.append(np.load(out / "state.npz"))
    assert saved[0].files == saved[1].files
    assert "transitions.similarity.data" in saved[0].files
    for name in saved[0].files:
        np.testing.assert_array_equal(saved[0][name], saved[1][name], err_msg=name)


def test_a_checkpoint_with_foreign_weights_is_refused(chain_shop: Dataset, tmp_path: Path) -> None:
    SASRecRecommender(**FAST, max_epochs=1).fit(chain_shop).save(tmp_path / "m")
    state = dict(np.load(tmp_path / "m" / "state.npz"))
    state["net.items.weight"] = state["net.items.weight"][:, :5]
    np.savez(tmp_path / "m" / "state.npz", **state)
    write_digests(tmp_path / "m")  # a manifest rewritten too: the weights check behind it still holds
    with pytest.raises(ModelFileError, match="network weights do not fit"):
        load_model(tmp_path / "m")


def test_left_pad_keeps_the_most_recent_items() -> None:
    assert left_pad(Ragged.from_lists([[1, 2, 3, 4], [], [9]]), 3).tolist() == [
        [3, 4, 5],
        [0, 0, 0],
        [0, 0, 10],
    ]


def test_a_validation_share_holds_out_only_that_share_of_users(chain_shop: Dataset) -> None:
    sequences = chain_shop.sequences()
    train, fold = hold_out_last(chain_shop, sequences, 0.25, np.random.default_rng(0))
    assert len(fold) == 15  # a quarter of the 60 users (all have 3+ items)
    held_out = np.zeros(len(sequences), dtype=bool)
    held_out[fold.users] = True
    # Validation users lose exactly their last item; everyone else keeps the whole history.
    np.testing.assert_array_equal(train.lengths, sequences.lengths - held_out)
    np.testing.assert_array_equal(fold.targets, sequences.values[sequences.indptr[fold.users + 1] - 1])


def test_refit_epochs_train_on_the_held_out_items_too(chain_shop: Dataset) -> None:
    plain = SASRecRecommender(**FAST, max_epochs=3, patience=3, seed=2).fit(chain_shop)
    refit = SASRecRecommender(**FAST, max_epochs=3, patience=3, seed=2, refit_epochs=2).fit(chain_shop)
    epochs = refit.training_log_["epochs"]
    assert len(epochs) == 5 and all(np.isnan(e["val_ndcg10"]) for e in epochs[3:])
    assert refit.training_log_["best_val_ndcg10"] == plain.training_log_["best_val_ndcg10"]
    assert not np.allclose(refit.score([[2, 3]]), plain.score([[2, 3]]))


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"validation_share": -0.1}, "validation_share"),
        ({"validation_share": 1.5}, "validation_share"),
        ({"refit_epochs": -1}, "refit_epochs"),
        ({"lr_schedule": "linear"}, "lr_schedule"),
    ],
)
def test_bad_training_settings_are_refused(
    chain_shop: Dataset, params: dict[str, object], named: str
) -> None:
    with pytest.raises(ConfigError, match=named):
        SASRecRecommender(**FAST, max_epochs=1, **params).fit(chain_shop)


def test_without_validation_it_trains_every_epoch_on_everything_and_keeps_the_last() -> None:
    # The plain baseline's recipe: no hold-out, no early stopping, constant rate, no clipping.
    plain = {"validation_share": 0.0, "lr_schedule": "constant", "grad_clip": 0.0, "warmup_epochs": 0.0}
    # Item 19 only ever comes last, after 8: only a model that trains on last items can learn 8 -> 19.
    rng = np.random.default_rng(4)
    shop = make_shop([[*rng.integers(0, 8, size=3).tolist(), 8, 19] for _ in range(80)], n_items=20)
    model = SASRecRecommender(**FAST, max_epochs=25, patience=1, refit_epochs=1, seed=3, **plain).fit(shop)
    epochs = model.training_log_["epochs"]
    # patience=1 cannot stop it and refit is skipped: exactly max_epochs epochs, the last one kept.
    assert [e["epoch"] for e in epochs] == list(range(1, 26)) and model.training_log_["best_epoch"] == 25
    assert all(np.isnan(e["val_ndcg10"]) for e in epochs) and np.isnan(model.training_log_["best_val_ndcg10"])
    assert model.recommend([[1, 2, 8]], k=1).items[0, 0] == 19
    validated = {"validation_share": 1.0, "refit_epochs": 0}
    held_out = SASRecRecommender(**FAST, max_epochs=25, patience=25, seed=3, **validated).fit(shop)
    assert held_out.recommend([[1, 2, 8]], k=1).items[0, 0] != 19


RESUME_PARAMS = {**FAST, "max_len": 10, "max_epochs": 4, "patience": 4, "batch_size": 64}
RESUME_DATA = "shopsim:n_items=300,n_users=1500,n_events=20000"


def _train(out: Path, params: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "recdrill", "train", "--data", RESUME_DATA, "--model", "sasrec"]
    return subprocess.Popen(
        [*command, "--out", str(out), "--params", str(params)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def test_a_killed_training_resumes_to_the_same_weights(tmp_path: Path) -> None:
    params = tmp_path / "params.json"
    params.write_text(json.dumps(RESUME_PARAMS))
    straight = _train(tmp_path / "straight", params)
    straight.communicate(timeout=300)
    assert straight.returncode == 0

    out = tmp_path / "killed"
    checkpoint = out / "training-checkpoint.pt"
    run = _train(out, params)
    deadline = time.monotonic() + 300
    while not checkpoint.exists() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert run.poll() is None, "training finished before it could be interrupted"
    run.send_signal(signal.SIGKILL)
    run.communicate(timeout=30)
    assert not (out / "state.npz").exists() and checkpoint.exists()
    assert torch.load(checkpoint, weights_only=True)["progress"]["epoch"] < RESUME_PARAMS["max_epochs"]

    resumed = _train(out, params)
    resumed.communicate(timeout=300)
    assert resumed.returncode == 0
    assert not checkpoint.exists()  # removed once the model is saved
    first, second = np.load(tmp_path / "straight" / "state.npz"), np.load(out / "state.npz")
    for name in first.files:
        np.testing.assert_array_equal(first[name], second[name], err_msg=name)


def test_a_corrupt_training_checkpoint_is_an_error_naming_it(tmp_path: Path) -> None:
    params = tmp_path / "params.json"
    params.write_text(json.dumps(RESUME_PARAMS))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "training-checkpoint.pt").write_bytes(b"PK\x03\x04 not really a checkpoint")
    run = _train(tmp_path / "out", params)
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == 5
    assert "training-checkpoint.pt: cannot resume" in stderr.decode().strip().splitlines()[-1]


def test_a_checkpoint_for_other_settings_is_not_resumed(chain_shop: Dataset, tmp_path: Path) -> None:
    path = tmp_path / "c.pt"
    model = SASRecRecommender(**FAST, max_epochs=2, patience=2)
    model.checkpoint_path = path
    model.fit(chain_shop)  # leaves no checkpoint behind once finished
    assert not path.exists()
    net = SASRecRecommender(**FAST, max_epochs=1).fit(chain_shop).net_
    save_checkpoint(
        path,
        run_key({"dim": 1}, "data"),
        TrainingProgress(epoch=1),
        {"net": net},
        np.random.default_rng(),
        None,
    )
    assert load_checkpoint(path, run_key({"dim": 2}, "data"), {"net": net}, np.random.default_rng()) is None
    assert (
        load_checkpoint(path, run_key({"dim": 1}, "other data"), {"net": net}, np.random.default_rng())
        is None
    )
    assert (
        load_checkpoint(path, run_key({"dim": 1}, "data"), {"net": net}, np.random.default_rng()) is not None
    )


def _priced(shop: Dataset) -> Dataset:
    prices = np.linspace(1.0, 50.0, shop.n_items)
    prices[3] = np.nan  # one item without a price
    return dataclasses.replace(shop, catalog=dataclasses.replace(shop.catalog, price=prices))


def test_price_levels_are_learned_saved_and_loaded(chain_shop: Dataset, tmp_path: Path) -> None:
    shop = _priced(chain_shop)
    model = SASRecRecommender(**FAST, max_epochs=2, price_buckets=4).fit(shop)
    assert model.net_.prices is not None
    assert model.price_buckets_ is not None and model.price_buckets_[3] == -1
    assert sorted(set(model.price_buckets_.tolist())) == [-1, 0, 1, 2, 3]
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    histories = [[1, 2], [5], [7, 8, 9]]
    np.testing.assert_array_equal(model.score(histories), loaded.score(histories))
    assert SASRecRecommender(**FAST, max_epochs=1, price_buckets=0).fit(shop).net_.prices is None
    assert SASRecRecommender(**FAST, max_epochs=1).fit(chain_shop).net_.prices is None  # no prices


def test_side_information_augmentations_act_only_while_training() -> None:
    torch.manual_seed(0)
    values, offsets = torch.tensor([0, 1, 0, 1]), torch.tensor([0, 1, 2, 3])
    net = SASRecNet(4, 8, 1, 2, 5, 0.0, (values, offsets), torch.tensor([-1, 0, 1, 2]), 0.5, 1.0)
    net.train()
    tables = [net.item_table().detach() for _ in range(8)]
    assert any(not torch.equal(tables[0], t) for t in tables[1:])
    net.eval()
    assert torch.equal(net.item_table(), net.item_table())
    quiet = SASRecNet(4, 8, 1, 2, 5, 0.0, (values, offsets), torch.tensor([-1, 0, 1, 2]))
    quiet.train()
    assert torch.equal(quiet.item_table(), quiet.item_table())


def test_price_jitter_moves_only_known_prices() -> None:
    torch.manual_seed(0)
    net = SASRecNet(3, 8, 1, 2, 5, 0.0, None, torch.tensor([-1, 1, 1]), price_jitter=1.0)
    net.train()
    tables = torch.stack([net.item_table().detach() for _ in range(12)])
    assert torch.equal(tables[:, 1], tables[0, 1].expand_as(tables[:, 1]))  # item 0: unknown price
    assert not torch.equal(tables[:, 2], tables[0, 2].expand_as(tables[:, 2]))
