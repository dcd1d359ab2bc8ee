"""The Transformer sequential recommender behind recdrill's primary tier.

``fit`` holds out each user's last interaction of the data it is given as a validation target,
trains on the rest with full-softmax cross-entropy over the non-padded positions, and keeps the
epoch with the best validation NDCG@10. It never sees anything beyond the data passed to ``fit``:
under leave-one-out, ``recdrill train`` passes the test fold's training data, so test items cannot
steer checkpoint selection.

The parts: the network (:mod:`.network`), its training loss (:mod:`.loss`), batches (:mod:`.batches`),
side information (:mod:`.side_info`), the training loop (:mod:`.training`), resumable checkpoints
(:mod:`.checkpoint`), data-parallel training (:mod:`.distributed`) and the item-to-item mixture
(:mod:`.transition_mix`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
import torch

from recdrill._params import validate_params
from recdrill.data.dataset import Dataset
from recdrill.data.ragged import Ragged
from recdrill.data.splits import EvalFold, hold_out_last
from recdrill.errors import ConfigError
from recdrill.models.base import BaseRecommender, csr_from_state, csr_to_state
from recdrill.models.itemknn import ItemKNNRecommender
from recdrill.models.sasrec.batches import left_pad
from recdrill.models.sasrec.distributed import same_everywhere
from recdrill.models.sasrec.network import SASRecNet
from recdrill.models.sasrec.side_info import attribute_membership, price_buckets
from recdrill.models.sasrec.training import Trainer
from recdrill.models.sasrec.transition_mix import choose_weight, mix_scores

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
            at each training step (see :class:`recdrill.models.sasrec.network.SASRecNet`).
        transition_mix: weight of a sequence-aware item-to-item model's next-item distribution mixed
            into the Transformer's (:mod:`recdrill.models.sasrec.transition_mix`): ``"auto"`` chooses it on
            the validation users from a grid that includes 0 (no validation: 0); a number in [0, 1)
            fixes it; 0 serves the Transformer alone. The chosen weight is ``mix_``.
        watermark: embed the owner's secret watermark (see :mod:`recdrill.models.watermark`); the
            secret comes from ``watermark_secret`` if set, else ``RECDRILL_WATERMARK_KEY`` or the key
            file, and is never saved: the model keeps only a public commitment to it.

    Not hyper-parameters (set as attributes before ``fit``; they do not change what a model is):
    ``checkpoint_path`` (where ``fit`` saves and resumes training), ``warm_start`` (continue from the
    current weights for the same catalogue, for fine-tuning) and ``watermark_secret``.
    """

    kind: ClassVar[str] = "sasrec"

    net_: SASRecNet
    checkpoint_path: str | Path | None = None
    warm_start: bool = False
    watermark_secret: bytes | None = None  # never saved
    watermark_commitment_: str | None = None
    attributes_: sp.csr_matrix | None
    price_buckets_: np.ndarray | None
    training_log_: dict[str, Any]  # per-epoch loss and validation NDCG@10, the chosen epoch and mix
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

    def _validate_params(self) -> None:
        mix = self.transition_mix
        checks = {
            "max_len": (self.max_len, self.max_len >= 2, ">= 2"),
            "batch_size": (self.batch_size, self.batch_size >= 1, ">= 1"),
            "max_epochs": (self.max_epochs, self.max_epochs >= 1, ">= 1"),
            "validation_share": (self.validation_share, 0.0 <= self.validation_share <= 1.0, "in [0, 1]"),
            "refit_epochs": (self.refit_epochs, self.refit_epochs >= 0, ">= 0"),
            "lr_schedule": (
                self.lr_schedule,
                self.lr_schedule in ("cosine", "constant"),
                "cosine or constant",
            ),
            "transition_mix": (
                mix,
                mix == "auto" or (isinstance(mix, int | float) and 0 <= mix < 1),
                "auto or a number in [0, 1)",
            ),
        }
        validate_params("SASRecRecommender", checks)

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
            dim=self.dim,
            blocks=self.blocks,
            heads=self.heads,
            max_len=self.max_len,
            dropout=self.dropout,
            item_attributes=attributes,
            price_buckets=buckets,
            attribute_mask_rate=self.attribute_mask_rate,
            price_jitter=self.price_jitter,
        )

    def _fit(self, dataset: Dataset) -> None:
        self._validate_params()
        validating = self.validation_share > 0
        refit_epochs = self.refit_epochs if validating else 0
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        device = self._device()
        self.attributes_ = attribute_membership(dataset.catalog) if self.use_attributes else None
        self.price_buckets_ = price_buckets(dataset.catalog.price, self.price_buckets)
        self._new_network(dataset.n_items, device)
        sequences = dataset.sequences()
        if validating:
            train, validation = hold_out_last(dataset, sequences, self.validation_share, rng)
        else:
            train, validation = sequences, None
        trainer = Trainer(self, dataset, train, validation, rng, device, refit_epochs)
        progress = trainer.train_epochs()
        weight, by_weight = self._choose_mix(train, validation, dataset.n_items)
        trainer.refit(sequences)
        self.net_.eval()
        self.mix_, self.transitions_ = weight, None
        if weight > 0:  # the item-to-item part learns from what the network last trained on
            self.transitions_ = ItemKNNRecommender().fit_sequences(
                sequences if refit_epochs else train, dataset.n_items
            )
        self.training_log_ = {
            "epochs": progress.log,
            "best_epoch": progress.best_epoch,
            "best_val_ndcg10": progress.best_score if validating else float("nan"),
            "transition_mix": weight,
            "val_ndcg10_by_mix": by_weight,
        }
        trainer.finish()

    def _new_network(self, n_items: int, device: torch.device) -> None:
        """A freshly initialised network, or (``warm_start``) the current weights carried over."""
        previous = self._warm_weights()
        self.net_ = self._build(n_items).to(device)
        if previous is None:
            return
        try:
            self.net_.load_state_dict(previous)
        except RuntimeError as exc:  # another catalogue or network size: cannot continue from it
            raise ConfigError(
                f"cannot warm start: the current weights do not fit ({str(exc).splitlines()[0]})"
            ) from exc

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

    def watermark_rows(self, n_items: int) -> Ragged | None:
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
            raise ValueError(
                f"network weights do not fit the saved parameters ({str(exc).splitlines()[0]})"
            ) from exc
        self.net_.to(self._device()).eval()
