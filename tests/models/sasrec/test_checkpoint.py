"""Tests of recdrill.models.sasrec.checkpoint: resumable training state, its key and its errors."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from recdrill.errors import ModelFileError
from recdrill.models.sasrec.checkpoint import TrainingProgress, load_checkpoint, run_key, save_checkpoint
from recdrill.models.sasrec.network import SASRecNet


def trained_parts(seed: int) -> tuple[SASRecNet, torch.optim.Optimizer]:
    """A tiny network and an optimiser that has taken one step (so it has state to save)."""
    torch.manual_seed(seed)
    net = SASRecNet(6, dim=8, blocks=1, heads=1, max_len=4, dropout=0.0)
    optimizer = torch.optim.AdamW(net.parameters(), lr=0.01)
    net(torch.tensor([[0, 1, 2, 3]])).sum().backward()
    optimizer.step()
    return net, optimizer


def test_run_key_ignores_verbosity_device_and_order_but_not_settings_or_data() -> None:
    key = run_key({"dim": 8, "lr": 0.1, "verbose": True, "device": "cpu"}, "abc")
    assert key == run_key({"lr": 0.1, "dim": 8}, "abc")
    assert key == run_key({"dim": 8, "lr": 0.1, "verbose": False, "device": "cuda"}, "abc")
    assert key != run_key({"dim": 16, "lr": 0.1}, "abc")
    assert key != run_key({"dim": 8, "lr": 0.1}, "abd")
    assert len(key) == 64


def test_a_fresh_progress_has_no_epochs_and_no_best_score() -> None:
    progress = TrainingProgress()
    assert (progress.epoch, progress.best_score, progress.best_epoch, progress.stale, progress.done) == (
        0, -1.0, 0, 0, False,
    )  # fmt: skip
    assert progress.log == [] and TrainingProgress().log is not progress.log


def test_save_then_load_restores_weights_optimiser_generators_and_progress(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "checkpoint.pt"
    net, optimizer = trained_parts(seed=1)
    rng = np.random.default_rng(5)
    rng.random(3)
    progress = TrainingProgress(
        epoch=3, best_score=0.4, best_epoch=2, stale=1, log=[{"epoch": 1.0, "loss": 2.5}]
    )
    best = {k: v.clone() for k, v in net.state_dict().items()}
    torch.manual_seed(11)
    save_checkpoint(path, "key", progress, {"net": net, "optimizer": optimizer}, rng, best)
    assert path.is_file() and not path.with_name("checkpoint.pt.partial").exists()
    expected_numpy, expected_torch = rng.random(4), torch.rand(4)

    other_net, other_optimizer = trained_parts(seed=2)
    other_rng = np.random.default_rng(99)
    torch.manual_seed(0)
    resumed = load_checkpoint(path, "key", {"net": other_net, "optimizer": other_optimizer}, other_rng)
    assert resumed is not None
    loaded_progress, loaded_best = resumed
    assert loaded_progress == progress
    for name, tensor in net.state_dict().items():
        assert torch.equal(other_net.state_dict()[name], tensor), name
    assert loaded_best is not None and torch.equal(loaded_best["items.weight"], best["items.weight"])
    state, other_state = optimizer.state_dict()["state"], other_optimizer.state_dict()["state"]
    assert torch.equal(state[0]["exp_avg"], other_state[0]["exp_avg"])
    np.testing.assert_array_equal(other_rng.random(4), expected_numpy)
    assert torch.equal(torch.rand(4), expected_torch)


def test_a_checkpoint_without_best_weights_resumes_with_none(tmp_path: Path) -> None:
    net, _ = trained_parts(seed=1)
    save_checkpoint(
        tmp_path / "c.pt", "k", TrainingProgress(epoch=1), {"net": net}, np.random.default_rng(), None
    )
    resumed = load_checkpoint(tmp_path / "c.pt", "k", {"net": net}, np.random.default_rng())
    assert resumed is not None and resumed[1] is None and resumed[0].epoch == 1


def test_nothing_to_resume_without_a_file(tmp_path: Path) -> None:
    net, _ = trained_parts(seed=1)
    assert load_checkpoint(tmp_path / "none.pt", "k", {"net": net}, np.random.default_rng()) is None


def test_a_checkpoint_for_another_key_is_ignored_with_a_warning_and_changes_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "c.pt"
    net, _ = trained_parts(seed=1)
    save_checkpoint(
        path, "old settings", TrainingProgress(epoch=4), {"net": net}, np.random.default_rng(), None
    )
    fresh, _ = trained_parts(seed=2)
    before = {k: v.clone() for k, v in fresh.state_dict().items()}
    rng = np.random.default_rng(3)
    with caplog.at_level(logging.WARNING, logger="recdrill.models.sasrec.checkpoint"):
        assert load_checkpoint(path, "new settings", {"net": fresh}, rng) is None
    assert "written for other settings or data: training starts afresh" in caplog.text
    assert all(torch.equal(fresh.state_dict()[k], v) for k, v in before.items())
    np.testing.assert_array_equal(rng.random(2), np.random.default_rng(3).random(2))


def test_a_corrupt_checkpoint_is_a_model_file_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "training-checkpoint.pt"
    path.write_bytes(b"PK\x03\x04 not really a checkpoint")
    net, _ = trained_parts(seed=1)
    with pytest.raises(
        ModelFileError, match=r"training-checkpoint\.pt: cannot resume from this training checkpoint"
    ):
        load_checkpoint(path, "k", {"net": net}, np.random.default_rng())


def test_a_checkpoint_lacking_a_module_or_of_another_shape_is_a_model_file_error(tmp_path: Path) -> None:
    path = tmp_path / "c.pt"
    net, optimizer = trained_parts(seed=1)
    save_checkpoint(path, "k", TrainingProgress(), {"net": net}, np.random.default_rng(), None)
    with pytest.raises(ModelFileError, match="cannot resume from this training checkpoint"):
        load_checkpoint(path, "k", {"net": net, "optimizer": optimizer}, np.random.default_rng())
    wider = SASRecNet(6, dim=16, blocks=1, heads=1, max_len=4)
    with pytest.raises(ModelFileError, match="cannot resume from this training checkpoint"):
        load_checkpoint(path, "k", {"net": wider}, np.random.default_rng())
