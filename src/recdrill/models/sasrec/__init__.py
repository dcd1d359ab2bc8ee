"""The Transformer sequential recommender (SASRec family): the estimator and its parts.

``SASRecRecommender`` (``estimator``) is the model; the network, its training loss, batches, side
information, the training loop, checkpoints, data-parallel training and the item-to-item mixture
are separate modules, each tested on its own. Imported on first use (PEP 562): PyTorch loads with
the first name taken from here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from recdrill._lazy import lazy_getattr

_EXPORTS = {
    "SASRecRecommender": "estimator",
    "SASRecNet": "network",
    "CausalBlock": "network",
    "NextItemLoss": "loss",
    "Trainer": "training",
    "WarmupCosine": "training",
}

__all__ = ["CausalBlock", "NextItemLoss", "SASRecNet", "SASRecRecommender", "Trainer", "WarmupCosine"]

if TYPE_CHECKING:
    from recdrill.models.sasrec.estimator import SASRecRecommender
    from recdrill.models.sasrec.loss import NextItemLoss
    from recdrill.models.sasrec.network import CausalBlock, SASRecNet
    from recdrill.models.sasrec.training import Trainer, WarmupCosine


__getattr__ = lazy_getattr("recdrill.models.sasrec", _EXPORTS, globals())
