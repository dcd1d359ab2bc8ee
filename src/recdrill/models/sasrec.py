"""The Transformer sequential recommender behind recdrill's primary tier.

``fit`` holds out each user's last interaction of the data it is given as a validation target,
trains on the rest with full-softmax cross-entropy over the non-padded positions, and keeps the
epoch with the best validation NDCG@10. It never sees anything beyond the data passed to ``fit``:
under leave-one-out, ``recdrill train`` passes the test fold's training data, so test items cannot
steer checkpoint selection.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
import torch
from tqdm import tqdm

from recdrill.data.augment import Augmenter
from recdrill.data.dataset import Dataset
from recdrill.data.ragged import Ragged
from recdrill.data.splits import EvalFold
from recdrill.errors import ConfigError
from recdrill.eval.evaluate import evaluate
from recdrill.models.base import BaseRecommender, csr_from_state, csr_to_state
from recdrill.models.distributed import agree, distribute, same_everywhere, world_size
from recdrill.models.itemknn import ItemKNNRecommender
from recdrill.models.next_item_loss import NextItemLoss
from recdrill.models.sequence_batches import left_pad, training_batches
from recdrill.models.training_checkpoint import TrainingProgress, load_checkpoint, run_key, save_checkpoint
from recdrill.models.transformer import SASRecNet
from recdrill.models.transition_mix import choose_weight, mix_scores

SCORE_BATCH = 1024


class SASRecRecommender(BaseRecommender):
    """Self-attentive sequential recommendation (SASRec), trained with full-softmax cross-entropy.

    Parameters:
        dim, blocks, heads, max_len, dropout: network sizes.
        use_attributes: add attribute (brand/category) embeddings to item vectors when the catalogue has them.
        price_buckets: add a price-level embedding (this many quantile buckets of the catalogue's prices)
            when the catalogue has prices; 0 = off.
        negatives: 0 for full-softmax cross-entropy over all items; N > 0 for a sampled softmax against
            N uniformly drawn items shared by the batch (accidental hits removed), about 20x cheaper per step.
        lr, weight_decay, warmup_epochs, grad_clip: AdamW with linear warm-up, then ``lr_schedule``
            (``"cosine"`` decay to zero where training will end, or ``"constant"``); gradients are
            clipped to norm ``grad_clip`` (0 = no clipping).
        batch_size: sequences per step.
        max_epochs, patience: stop after ``patience`` epochs without a better validation NDCG@10.
        max_minutes: wall-time budget for ``fit`` (refit included); the best epoch so far is kept.
        validation_share: share of users (with 3+ items) whose last item is held out for validation;
            the rest train on their whole history, so the most recent transitions are not all lost
            to validation. 0 = no validation and no early stopping: train on everything for
            ``max_epochs`` (or until ``max_minutes``) and keep the last weights.
        refit_epochs: after early stopping, this many epochs on every sequence including the held-out
            items (learning rate annealed from where training stopped, at least a tenth of ``lr``);
            skipped without validation.
        seed: makes training repeatable (same data, same seed, same weights on the same machine).
        device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
        verbose: show a progress bar with live loss and validation metrics on stderr.
        crop_keep, mask_rate, reorder_span, category_rate, brand_rate: augmentations (0 = off); when any
            is on, each epoch trains on the sequences plus one freshly augmented copy of them
            (see :class:`recdrill.data.augment.Augmenter`). Category groups are the catalogue's leaf
            categories, or each item's rarest attribute where there are none (Amazon's attributes mix
            brands and categories); brand groups need ``Catalog.brand``.
        attribute_mask_rate, price_jitter: side-information augmentations applied to the item table
            at each training step (see :class:`recdrill.models.transformer.SASRecNet`).
        transition_mix: weight of a sequence-aware item-to-item model's next-item distribution mixed
            into the Transformer's (:mod:`recdrill.models.transition_mix`): ``"auto"`` chooses it on
            the validation users from a grid that includes 0 (no validation: 0); a number in [0, 1)
            fixes it; 0 serves the Transformer alone. The chosen weight is ``mix_``.
        watermark: embed the owner's secret watermark (see :mod:`recdrill.models.watermark`); the
            secret comes from ``watermark_secret`` if set, else ``RECDRILL_WATERMARK_KEY`` or the key
            file, and is never saved: the model keeps only a public commitment to it.
    """

    kind: ClassVar[str] = "sasrec"
    params: ClassVar[tuple[str, ...]] = (
        "dim",
        "blocks",
        "heads",
        "max_len",
        "dropout",
        "use_attributes",
        "price_buckets",
        "negatives",
        "lr",
        "weight_decay",
        "warmup_epochs",
        "lr_schedule",
        "grad_clip",
        "batch_size",
        "max_epochs",
        "patience",
        "max_minutes",
        "validation_share",
        "refit_epochs",
        "seed",
        "device",
        "verbose",
        "crop_keep",
        "mask_rate",
        "reorder_span",
        "category_rate",
        "brand_rate",
        "attribute_mask_rate",
        "price_jitter",
        "transition_mix",
        "watermark",
    )

    net_: SASRecNet
    checkpoint_path: str | Path | None = None  # where fit saves and resumes training (not a hyper-parameter)
    # Fine-tuning (not a hyper-parameter): when True and the model already has weights for the same
    # catalogue, ``fit`` starts from them instead of a random initialisation.
    warm_start: bool = False
    watermark_secret: bytes | None = None  # the watermark's secret for fit (never saved)
    watermark_commitment_: str | None = None
    attributes_: sp.csr_matrix | None
    price_buckets_: np.ndarray | None
    history_: dict[str, Any]
    mix_: float = 0.0
    transitions_: ItemKNNRecommender | None = None

    def __init__(
        self,
        dim: int = 64,
        blocks: int = 2,
        heads: int = 2,
        max_len: int = 50,
        dropout: float = 0.3,
        use_attributes: bool = True,
        price_buckets: int = 10,
        negatives: int = 0,
        lr: float = 1e-3,
        weight_decay: float = 0.05,
        warmup_epochs: float = 1.0,
        lr_schedule: str = "cosine",
        grad_clip: float = 1.0,
        batch_size: int = 256,
        max_epochs: int = 200,
        patience: int = 8,
        max_minutes: float = 18.0,
        validation_share: float = 0.2,
        refit_epochs: int = 1,
        seed: int = 0,
        device: str = "auto",
        verbose: bool = False,
        crop_keep: float = 0.0,
        mask_rate: float = 0.0,
        reorder_span: float = 0.0,
        category_rate: float = 0.0,
        brand_rate: float = 0.0,
        attribute_mask_rate: float = 0.0,
        price_jitter: float = 0.0,
        transition_mix: float | str = "auto",
        watermark: bool = False,
    ) -> None:
        self.dim = dim
        self.blocks = blocks
        self.heads = heads
        self.max_len = max_len
        self.dropout = dropout
        self.use_attributes = use_attributes
        self.price_buckets = price_buckets
        self.negatives = negatives
        self.lr = lr
        self.weight_decay = weight_decay
        self.warmup_epochs = warmup_epochs
        self.lr_schedule = lr_schedule
        self.grad_clip = grad_clip
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.max_minutes = max_minutes
        self.validation_share = validation_share
        self.refit_epochs = refit_epochs
        self.seed = seed
        self.device = device
        self.verbose = verbose
        self.crop_keep = crop_keep
        self.mask_rate = mask_rate
        self.reorder_span = reorder_span
        self.category_rate = category_rate
        self.brand_rate = brand_rate
        self.attribute_mask_rate = attribute_mask_rate
        self.price_jitter = price_jitter
        self.transition_mix = transition_mix
        self.watermark = watermark

    # -- fitting -----------------------------------------------------------------------------------

    def _device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if self.device not in ("cpu", "cuda"):
            raise ConfigError(
                f"The 'device' parameter of SASRecRecommender must be auto, cpu or cuda, got {self.device!r}"
            )
        return torch.device(self.device)

    def _build(self, n_items: int) -> SASRecNet:
        attributes = None
        if self.attributes_ is not None:
            csr = self.attributes_
            attributes = (
                torch.from_numpy(csr.indices.astype(np.int64)),
                torch.from_numpy(csr.indptr[:-1].astype(np.int64)),
            )
        buckets = None if self.price_buckets_ is None else torch.from_numpy(self.price_buckets_)
        return SASRecNet(
            n_items,
            self.dim,
            self.blocks,
            self.heads,
            self.max_len,
            self.dropout,
            attributes,
            buckets,
            self.attribute_mask_rate,
            self.price_jitter,
        )

    def _fit(self, dataset: Dataset) -> None:
        if self.max_len < 2 or self.batch_size < 1 or self.max_epochs < 1:
            raise ConfigError("SASRecRecommender needs max_len >= 2, batch_size >= 1 and max_epochs >= 1")
        if not 0.0 <= self.validation_share <= 1.0 or self.refit_epochs < 0:
            raise ConfigError("SASRecRecommender needs 0 <= validation_share <= 1 and refit_epochs >= 0")
        if self.lr_schedule not in ("cosine", "constant"):
            raise ConfigError(
                "The 'lr_schedule' parameter of SASRecRecommender must be cosine or constant, "
                f"got {self.lr_schedule!r}"
            )
        if self.transition_mix != "auto" and not (
            isinstance(self.transition_mix, (int, float)) and 0 <= self.transition_mix < 1
        ):
            raise ConfigError(
                "The 'transition_mix' parameter of SASRecRecommender must be auto or a number in [0, 1), "
                f"got {self.transition_mix!r}"
            )
        validating = self.validation_share > 0
        refit_epochs = self.refit_epochs if validating else 0
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        device = self._device()
        groups = dataset.catalog.item_groups() if self.use_attributes else None
        self.attributes_ = None
        if groups is not None and len(groups.values):
            membership = groups.to_csr(int(groups.values.max()) + 1)
            membership.data[:] = 1.0
            self.attributes_ = membership
        self.price_buckets_ = _price_buckets(dataset.catalog.price, self.price_buckets)
        previous = self._warm_weights()
        self.net_ = self._build(dataset.n_items).to(device)
        if previous is not None:
            try:
                self.net_.load_state_dict(previous)
            except RuntimeError as exc:  # another catalogue or network size: cannot continue from it
                raise ConfigError(
                    f"cannot warm start: the current weights do not fit ({str(exc).splitlines()[0]})"
                ) from exc

        sequences = dataset.sequences()
        if validating:
            train, validation = _hold_out_last(dataset, sequences, self.validation_share, rng)
        else:
            train, validation = sequences, None
        augmenter = Augmenter(
            self.crop_keep, self.mask_rate, self.reorder_span, self.category_rate, self.brand_rate
        )
        category, brand = _substitution_groups(dataset)
        marks = self._watermark_rows(dataset.n_items)
        copies = 2 if augmenter.active else 1
        steps_per_epoch = max(
            1, math.ceil(copies * int(np.count_nonzero(train.lengths >= 2)) / self.batch_size / world_size())
        )
        trainer, rank, world = distribute(NextItemLoss(self.net_, self.negatives), device)
        optimizer = torch.optim.AdamW(trainer.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        warmup = max(1, int(self.warmup_epochs * steps_per_epoch))
        # The cosine decay ends where training will end: at max_epochs, or, once the first epoch's
        # time is known, at the last epoch the time budget allows, so a budgeted run still anneals.
        horizon = [self.max_epochs * steps_per_epoch]

        def learning_rate(step: int) -> float:
            ramp = min(1.0, (step + 1) / warmup)
            if self.lr_schedule == "constant":
                return ramp
            progress = min(step, horizon[0]) / horizon[0]
            return ramp * 0.5 * (1 + math.cos(math.pi * progress))

        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, learning_rate)
        progress = TrainingProgress(horizon_steps=horizon[0])
        best_state: dict[str, torch.Tensor] | None = None
        checkpoint = Path(self.checkpoint_path) if self.checkpoint_path is not None else None
        key = run_key(self.get_params(), dataset.interactions_digest())
        modules = {"net": self.net_, "optimizer": optimizer, "schedule": schedule}
        resumed = load_checkpoint(checkpoint, key, modules, rng) if checkpoint is not None else None
        if resumed is not None:
            progress, best_state = resumed
            horizon[0] = progress.horizon_steps
        started = time.monotonic() - progress.elapsed_s
        bar = tqdm(
            total=self.max_epochs,
            initial=progress.epoch,
            desc="sasrec",
            unit="epoch",
            disable=not (self.verbose and rank == 0),
            file=sys.stderr,
        )

        def run_epoch(rows: Ragged) -> float:
            self.net_.train()
            losses = []
            # Every rank draws the same shuffled batches and takes its share of them.
            epoch_rows = rows.concat(augmenter(rows, rng, category, brand)) if augmenter.active else rows
            epoch_rows = epoch_rows.concat(marks) if marks is not None else epoch_rows
            batches = list(training_batches(epoch_rows, self.batch_size, self.max_len, rng))
            for step, (inputs, targets) in enumerate(
                batches[rank : len(batches) - len(batches) % world : world]
            ):
                # On a catalogue far larger than expected one epoch could outlast the whole budget:
                # check the clock every few steps (all ranks together) and stop mid-epoch if so.
                if step % 16 == 0 and agree(time.monotonic() - started > self.max_minutes * 60):
                    break
                loss = trainer(inputs.to(device), targets.to(device))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if self.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(trainer.parameters(), self.grad_clip)
                optimizer.step()
                schedule.step()
                losses.append(float(loss.detach()))
            return float(np.mean(losses)) if losses else math.nan

        p = progress
        budget_s = self.max_minutes * 60
        for epoch in range(p.epoch + 1, self.max_epochs + 1):
            if p.done:
                break
            epoch_started = time.monotonic()
            mean_loss = run_epoch(train)
            score = (
                evaluate(self, validation, model_name=self.kind, list_size=0).metrics["NDCG@10"]
                if validation is not None
                else math.nan
            )
            if epoch == 1:
                epoch_seconds = max(time.monotonic() - started, 1e-3)
                affordable = int((budget_s - refit_epochs * epoch_seconds) / epoch_seconds)
                horizon[0] = p.horizon_steps = int(
                    same_everywhere(float(max(2, min(self.max_epochs, affordable)) * steps_per_epoch))
                )
            p.log.append(
                {
                    "epoch": epoch,
                    "loss": mean_loss,
                    "val_ndcg10": score,
                    "seconds": time.monotonic() - started,
                    "epoch_seconds": time.monotonic() - epoch_started,
                }
            )
            if validation is None:
                p.best_epoch = epoch  # no validation: the last epoch is the model
            elif score > p.best_score:
                p.best_score, p.best_epoch, p.stale = score, epoch, 0
                best_state = {k: v.detach().clone() for k, v in self.net_.state_dict().items()}
            else:
                p.stale += 1
            bar.set_postfix(
                loss=f"{mean_loss:.3f}",
                val_ndcg10=f"{score:.4f}",
                best=f"{p.best_score:.4f}@{p.best_epoch}",
            )
            bar.update()
            # Epochs slow down when the machine gets busy: plan with the slowest of the last few, and
            # never start an epoch (or leave too little for the refit) that would overrun the budget.
            slowest = max(e["epoch_seconds"] for e in p.log[-3:])
            p.reserve_s = refit_epochs * slowest
            p.epoch, p.elapsed_s = epoch, time.monotonic() - started
            out_of_time = p.elapsed_s + slowest + p.reserve_s > budget_s
            p.done = agree(p.stale >= self.patience or out_of_time or epoch == self.max_epochs)
            if checkpoint is not None and rank == 0:
                save_checkpoint(checkpoint, key, p, modules, rng, best_state)
        bar.close()
        if best_state is not None:
            self.net_.load_state_dict(best_state)
        weight, by_weight = self._choose_mix(train, validation, dataset.n_items)
        if refit_epochs:
            # Anneal from the rate the best epoch ended with (at least lr/10) to zero.
            start_rate = max(learning_rate(p.best_epoch * steps_per_epoch), 0.1)
            refit_steps = refit_epochs * steps_per_epoch
            schedule = torch.optim.lr_scheduler.LambdaLR(
                optimizer, lambda step: start_rate * max(0.0, 1 - step / refit_steps)
            )
            for _ in range(refit_epochs):
                p.log.append(
                    {
                        "epoch": len(p.log) + 1,
                        "loss": run_epoch(sequences),
                        "val_ndcg10": math.nan,  # the held-out items are now training data
                        "seconds": time.monotonic() - started,
                    }
                )
        self.net_.eval()
        self.mix_, self.transitions_ = weight, None
        if weight > 0:  # the item-to-item part learns from what the network last trained on
            self.transitions_ = ItemKNNRecommender().fit_sequences(
                sequences if refit_epochs else train, dataset.n_items
            )
        best_val = p.best_score if validating else math.nan
        self.history_ = {
            "epochs": p.log,
            "best_epoch": p.best_epoch,
            "best_val_ndcg10": best_val,
            "transition_mix": weight,
            "val_ndcg10_by_mix": by_weight,
        }
        if checkpoint is not None and rank == 0:
            checkpoint.unlink(missing_ok=True)  # the finished model is saved by the caller

    def _choose_mix(
        self, train: Ragged, validation: EvalFold | None, n_items: int
    ) -> tuple[float, dict[float, float]]:
        """The item-to-item weight: as given, or (``"auto"``) the best on the validation users, with
        both parts knowing only the training rows (the held-out items are the validation targets)."""
        if self.transition_mix != "auto":
            return float(self.transition_mix), {}
        if validation is None:
            return 0.0, {}
        transitions = ItemKNNRecommender().fit_sequences(train, n_items)
        weight, by_weight = choose_weight(self._network_scores, transitions.score, validation)
        return same_everywhere(weight), by_weight

    def _warm_weights(self) -> dict[str, torch.Tensor] | None:
        """A copy of the current weights when ``warm_start`` asks to continue from them.

        This is how a deployed model is fine-tuned on recent data (``recdrill.monitor.response``):
        set ``warm_start`` and a small ``max_epochs`` (``lr`` as needed), then ``fit`` on the new data.
        """
        if not self.warm_start or not hasattr(self, "net_"):
            return None
        return {k: v.detach().clone() for k, v in self.net_.state_dict().items()}

    def _watermark_rows(self, n_items: int) -> Ragged | None:
        """The secret rows each epoch adds when ``watermark`` is on; records the public commitment."""
        self.watermark_commitment_ = None
        if not self.watermark:
            return None
        from recdrill.models.watermark import Watermark, load_watermark_secret

        secret = self.watermark_secret if self.watermark_secret is not None else load_watermark_secret()
        mark = Watermark.from_secret(secret, n_items)
        self.watermark_commitment_ = mark.commitment
        return mark.training_rows()

    # -- predicting --------------------------------------------------------------------------------

    def _score(self, histories: Ragged) -> np.ndarray:
        logits = self._network_scores(histories)
        if self.mix_ <= 0 or self.transitions_ is None:
            return logits
        return mix_scores(logits, self.transitions_.score(histories), self.mix_)

    def _network_scores(self, histories: Ragged) -> np.ndarray:
        """The Transformer's logits alone, ``[n_histories, n_items]``."""
        device = next(self.net_.parameters()).device
        out = np.empty((len(histories), self.n_items_), dtype=np.float32)
        # Score rows in length order so each batch pads only to its own longest history.
        order = np.argsort(np.minimum(histories.lengths, self.max_len), kind="stable")
        self.net_.eval()
        with torch.inference_mode():
            table = self.net_.item_table()
            for start in range(0, len(order), SCORE_BATCH):
                chunk = order[start : start + SCORE_BATCH]
                rows = histories.take(chunk)
                longest = int(max(1, min(int(rows.lengths.max(initial=0)), self.max_len)))
                batch = torch.from_numpy(left_pad(rows, longest)).to(device)
                out[chunk] = self.net_.score_last(batch, table).float().cpu().numpy()
        return out

    # -- state -------------------------------------------------------------------------------------

    def _state(self) -> dict[str, np.ndarray]:
        state = {f"net.{k}": v.detach().cpu().numpy() for k, v in self.net_.state_dict().items()}
        if self.attributes_ is not None:
            state.update(csr_to_state("attributes", self.attributes_))
        if self.price_buckets_ is not None:
            state["price_buckets"] = self.price_buckets_
        if self.watermark_commitment_ is not None:
            state["watermark_commitment"] = np.array(self.watermark_commitment_)
        if self.transitions_ is not None and self.mix_ > 0:
            state["transition_mix"] = np.array(self.mix_)
            state.update({f"transitions.{k}": v for k, v in self.transitions_._state().items()})
        return state

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.attributes_ = csr_from_state("attributes", state) if "attributes.shape" in state else None
        self.price_buckets_ = state["price_buckets"].astype(np.int64) if "price_buckets" in state else None
        commitment = state.get("watermark_commitment")
        self.watermark_commitment_ = None if commitment is None else str(commitment)
        self.mix_, self.transitions_ = 0.0, None
        if "transition_mix" in state:
            transitions = ItemKNNRecommender()
            transitions.n_items_ = self.n_items_
            transitions._set_state(
                {k.removeprefix("transitions."): v for k, v in state.items() if k.startswith("transitions.")}
            )
            self.mix_, self.transitions_ = float(state["transition_mix"]), transitions
        self.net_ = self._build(self.n_items_)
        weights = {
            k.removeprefix("net."): torch.from_numpy(v) for k, v in state.items() if k.startswith("net.")
        }
        try:
            self.net_.load_state_dict(weights)
        except RuntimeError as exc:  # wrong shapes or missing tensors: a corrupt or foreign checkpoint
            raise KeyError(
                f"network weights do not fit the saved parameters ({str(exc).splitlines()[0]})"
            ) from exc
        self.net_.to(self._device()).eval()


def _hold_out_last(
    dataset: Dataset, sequences: Ragged, share: float = 1.0, rng: np.random.Generator | None = None
) -> tuple[Ragged, EvalFold]:
    """Training rows without the validation users' last items, and a fold predicting those items.

    Validation users are a random ``share`` of the users with at least 3 items (all when 1).
    """
    users = np.flatnonzero(sequences.lengths >= 3)
    if share < 1.0:
        generator = rng if rng is not None else np.random.default_rng(0)
        count = max(1, round(share * len(users)))
        users = np.sort(generator.choice(users, size=min(count, len(users)), replace=False))
    keep = np.ones(len(sequences.values), dtype=bool)
    keep[sequences.indptr[users + 1] - 1] = False
    train = Ragged.from_groups(sequences.row_ids[keep], sequences.values[keep], len(sequences))
    fold = EvalFold(
        "validation",
        dataset,
        users.astype(np.int64),
        train.take(users),
        sequences.values[sequences.indptr[users + 1] - 1],
    )
    return train, fold


def _price_buckets(prices: np.ndarray | None, n_buckets: int) -> np.ndarray | None:
    """Each item's price quantile bucket in ``0..n_buckets-1`` (-1 = unknown), or None without prices.

    Example:
        >>> _price_buckets(np.array([1.0, 2.0, np.nan, 3.0, 4.0]), 2).tolist()
        [0, 0, -1, 1, 1]
    """
    if prices is None or n_buckets <= 0:
        return None
    known = np.isfinite(prices)
    if not known.any():
        return None
    # Interior quantile edges; repeated edges (many equal prices) collapse into one bucket.
    edges = np.unique(np.quantile(prices[known], np.linspace(0, 1, n_buckets + 1)[1:-1]))
    buckets = np.full(len(prices), -1, dtype=np.int64)
    buckets[known] = np.searchsorted(edges, prices[known], side="right")
    return buckets


def _substitution_groups(dataset: Dataset) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Per item: its category (or rarest attribute) and its brand, -1 where unknown."""
    catalog = dataset.catalog
    category = catalog.category
    if category is None and catalog.attributes is not None and len(catalog.attributes.values):
        attributes = catalog.attributes
        frequency = np.bincount(attributes.values)
        rows = attributes.row_ids
        # The rarest attribute of each item: sort by (item, frequency) and take each item's first.
        order = np.lexsort((frequency[attributes.values], rows))
        first = np.unique(rows[order], return_index=True)[1]
        category = np.full(catalog.n_items, -1, dtype=np.int64)
        category[rows[order][first]] = attributes.values[order][first]
    return category, catalog.brand
