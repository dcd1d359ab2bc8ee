"""SASRec's training loop: epochs with early stopping on validation NDCG@10 under a wall-time budget,
resumable from a checkpoint, then an optional refit on every sequence.

:class:`Trainer` holds what the loop shares across epochs (the training wrapper, optimiser,
schedule, random generator, the bookkeeping of :class:`~recdrill.models.sasrec.checkpoint.TrainingProgress`)
as fields, so each step is a short method. :class:`WarmupCosine` is the learning-rate schedule; its
``horizon`` moves once the first epoch's duration is known, so a run cut short by its time budget
still anneals to zero where it will end.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from tqdm import tqdm

from recdrill.data.augment import Augmenter
from recdrill.data.dataset import Dataset
from recdrill.data.ragged import Ragged
from recdrill.data.splits import EvalFold
from recdrill.eval.evaluate import evaluate
from recdrill.models.sasrec.batches import training_batches
from recdrill.models.sasrec.checkpoint import TrainingProgress, load_checkpoint, run_key, save_checkpoint
from recdrill.models.sasrec.distributed import agree, distribute, same_everywhere, world_size
from recdrill.models.sasrec.loss import NextItemLoss
from recdrill.models.sasrec.side_info import substitution_groups

if TYPE_CHECKING:
    from recdrill.models.sasrec.estimator import SASRecRecommender

Weights = dict[str, torch.Tensor]
CLOCK_CHECK_STEPS = 16  # how often (in steps) an epoch checks the time budget


class WarmupCosine:
    """A multiplier of the base learning rate: a linear ramp over ``warmup`` steps, then (unless
    ``constant``) a cosine decay that reaches zero at step ``horizon`` and stays there.

    Example:
        >>> schedule = WarmupCosine(warmup=2, horizon=4)
        >>> [round(schedule(step), 3) for step in range(5)]
        [0.5, 0.854, 0.5, 0.146, 0.0]
        >>> schedule.horizon = 8  # the budget allows more steps: the decay stretches
        >>> round(schedule(3), 3)
        0.691
    """

    def __init__(self, warmup: int, horizon: int, constant: bool = False) -> None:
        self.warmup = max(1, warmup)
        self.horizon = horizon
        self.constant = constant

    def __call__(self, step: int) -> float:
        ramp = min(1.0, (step + 1) / self.warmup)
        if self.constant:
            return ramp
        progress = min(step, self.horizon) / self.horizon
        return ramp * 0.5 * (1 + math.cos(math.pi * progress))


class Trainer:
    """Trains ``model.net_`` on ``train`` (validating on ``validation``, if any) for one ``fit``.

    Every rank of a data-parallel run (``torchrun``) builds the same trainer and draws the same
    shuffled batches, taking its share of them; decisions to stop are agreed across ranks.
    """

    def __init__(
        self,
        model: SASRecRecommender,
        dataset: Dataset,
        train: Ragged,
        validation: EvalFold | None,
        rng: np.random.Generator,
        device: torch.device,
        refit_epochs: int,
    ) -> None:
        self.model = model
        self.train_rows = train
        self.validation = validation
        self.rng = rng
        self.device = device
        self.refit_epochs = refit_epochs
        self.augmenter = Augmenter(
            model.crop_keep, model.mask_rate, model.reorder_span, model.category_rate, model.brand_rate
        )
        self.category, self.brand = substitution_groups(dataset.catalog)
        self.marks = model.watermark_rows(dataset.n_items)
        copies = 2 if self.augmenter.active else 1
        usable = int(np.count_nonzero(train.lengths >= 2))
        self.steps_per_epoch = max(1, math.ceil(copies * usable / model.batch_size / world_size()))
        self.module, self.rank, self.world = distribute(NextItemLoss(model.net_, model.negatives), device)
        self.optimizer = torch.optim.AdamW(
            self.module.parameters(), lr=model.lr, weight_decay=model.weight_decay
        )
        # The cosine decay ends where training will end: at max_epochs, or, once the first epoch's
        # time is known, at the last epoch the time budget allows, so a budgeted run still anneals.
        self.rate = WarmupCosine(
            int(model.warmup_epochs * self.steps_per_epoch),
            model.max_epochs * self.steps_per_epoch,
            constant=model.lr_schedule == "constant",
        )
        self.schedule: torch.optim.lr_scheduler.LRScheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, self.rate
        )
        self.progress = TrainingProgress(horizon_steps=self.rate.horizon)
        self.best_weights: Weights | None = None
        self.checkpoint = Path(model.checkpoint_path) if model.checkpoint_path is not None else None
        self.key = run_key(model.get_params(), dataset.interactions_digest())
        self._resume()
        self.started = time.monotonic() - self.progress.elapsed_s
        self.budget_s = model.max_minutes * 60

    @property
    def modules(self) -> dict[str, Any]:
        """What a checkpoint saves and restores."""
        return {"net": self.model.net_, "optimizer": self.optimizer, "schedule": self.schedule}

    def _resume(self) -> None:
        if self.checkpoint is None:
            return
        resumed = load_checkpoint(self.checkpoint, self.key, self.modules, self.rng)
        if resumed is not None:
            self.progress, self.best_weights = resumed
            self.rate.horizon = self.progress.horizon_steps

    def out_of_time(self) -> bool:
        return time.monotonic() - self.started > self.budget_s

    def run_epoch(self, rows: Ragged) -> float:
        """One pass over ``rows`` (plus an augmented copy and the watermark rows, when on); the mean loss."""
        net, model = self.model.net_, self.model
        net.train()
        losses = []
        # Every rank draws the same shuffled batches and takes its share of them.
        epoch_rows = rows
        if self.augmenter.active:
            epoch_rows = rows.concat(self.augmenter(rows, self.rng, self.category, self.brand))
        if self.marks is not None:
            epoch_rows = epoch_rows.concat(self.marks)
        batches = list(training_batches(epoch_rows, model.batch_size, model.max_len, self.rng))
        mine = batches[self.rank : len(batches) - len(batches) % self.world : self.world]
        for step, (inputs, targets) in enumerate(mine):
            # On a catalogue far larger than expected one epoch could outlast the whole budget:
            # check the clock every few steps (all ranks together) and stop mid-epoch if so.
            if step % CLOCK_CHECK_STEPS == 0 and agree(self.out_of_time()):
                break
            losses.append(self._step(inputs, targets))
        return float(np.mean(losses)) if losses else math.nan

    def _step(self, inputs: torch.Tensor, targets: torch.Tensor) -> float:
        loss = self.module(inputs.to(self.device), targets.to(self.device))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.model.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.module.parameters(), self.model.grad_clip)
        self.optimizer.step()
        self.schedule.step()
        return float(loss.detach())

    def validation_ndcg(self) -> float:
        if self.validation is None:
            return math.nan
        report = evaluate(self.model, self.validation, model_name=self.model.kind, list_size=0)
        return report.metrics["NDCG@10"]

    def train_epochs(self) -> TrainingProgress:
        """Epochs until patience runs out, the time budget would be overrun, or ``max_epochs``;
        then the best epoch's weights are put back. Saves a checkpoint after every epoch."""
        bar = tqdm(
            total=self.model.max_epochs,
            initial=self.progress.epoch,
            desc="sasrec",
            unit="epoch",
            disable=not (self.model.verbose and self.rank == 0),
            file=sys.stderr,
        )
        for epoch in range(self.progress.epoch + 1, self.model.max_epochs + 1):
            if self.progress.done:
                break
            self._epoch(epoch, bar)
        bar.close()
        if self.best_weights is not None:
            self.model.net_.load_state_dict(self.best_weights)
        return self.progress

    def _epoch(self, epoch: int, bar: tqdm[Any]) -> None:
        p, model = self.progress, self.model
        epoch_started = time.monotonic()
        mean_loss = self.run_epoch(self.train_rows)
        score = self.validation_ndcg()
        if epoch == 1:
            self._plan_horizon()
        now = time.monotonic()
        p.log.append(
            {
                "epoch": epoch,
                "loss": mean_loss,
                "val_ndcg10": score,
                "seconds": now - self.started,
                "epoch_seconds": now - epoch_started,
            }
        )
        if self.validation is None:
            p.best_epoch = epoch  # no validation: the last epoch is the model
        elif score > p.best_score:
            p.best_score, p.best_epoch, p.stale = score, epoch, 0
            self.best_weights = {k: v.detach().clone() for k, v in model.net_.state_dict().items()}
        else:
            p.stale += 1
        bar.set_postfix(
            loss=f"{mean_loss:.3f}", val_ndcg10=f"{score:.4f}", best=f"{p.best_score:.4f}@{p.best_epoch}"
        )
        bar.update()
        # Epochs slow down when the machine gets busy: plan with the slowest of the last few, and
        # never start an epoch (or leave too little for the refit) that would overrun the budget.
        slowest = max(e["epoch_seconds"] for e in p.log[-3:])
        p.reserve_s = self.refit_epochs * slowest
        p.epoch, p.elapsed_s = epoch, time.monotonic() - self.started
        out_of_time = p.elapsed_s + slowest + p.reserve_s > self.budget_s
        p.done = agree(p.stale >= model.patience or out_of_time or epoch == model.max_epochs)
        if self.checkpoint is not None and self.rank == 0:
            save_checkpoint(self.checkpoint, self.key, p, self.modules, self.rng, self.best_weights)

    def _plan_horizon(self) -> None:
        """After the first epoch: end the cosine decay at the last epoch the budget allows."""
        epoch_seconds = max(time.monotonic() - self.started, 1e-3)
        affordable = int((self.budget_s - self.refit_epochs * epoch_seconds) / epoch_seconds)
        epochs = max(2, min(self.model.max_epochs, affordable))
        horizon = int(same_everywhere(float(epochs * self.steps_per_epoch)))
        self.rate.horizon = self.progress.horizon_steps = horizon

    def refit(self, sequences: Ragged) -> None:
        """``refit_epochs`` more epochs on every sequence (the validation users' held-out items
        included), annealing from the rate the best epoch ended with (at least lr/10) to zero."""
        if not self.refit_epochs:
            return
        p = self.progress
        start_rate = max(self.rate(p.best_epoch * self.steps_per_epoch), 0.1)
        refit_steps = self.refit_epochs * self.steps_per_epoch
        self.schedule = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: start_rate * max(0.0, 1 - step / refit_steps)
        )
        for _ in range(self.refit_epochs):
            p.log.append(
                {
                    "epoch": len(p.log) + 1,
                    "loss": self.run_epoch(sequences),
                    "val_ndcg10": math.nan,  # the held-out items are now training data
                    "seconds": time.monotonic() - self.started,
                }
            )

    def finish(self) -> None:
        """The finished model is saved by the caller: the checkpoint is no longer needed."""
        if self.checkpoint is not None and self.rank == 0:
            self.checkpoint.unlink(missing_ok=True)
