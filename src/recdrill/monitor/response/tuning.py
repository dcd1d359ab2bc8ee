"""How a drift response makes its candidate and scores both models on the held-out recent slice."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from recdrill.data.dataset import Dataset
from recdrill.eval.evaluate import evaluate
from recdrill.models.base import BaseRecommender
from recdrill.monitor.response.data import RecentWindow, recent_weighted
from recdrill.monitor.response.policy import ResponsePolicy

METRICS = ("NDCG@10", "HR@10")


def fine_tune(current: BaseRecommender, window: RecentWindow, policy: ResponsePolicy) -> BaseRecommender:
    """A new model for the recent data; ``current`` is left untouched.

    A model that can warm start (SASRec's ``warm_start``) continues from a copy of its weights on
    the sequences of the users active in the recent window (:func:`active_sequences`) for
    ``fine_tune_epochs`` at ``fine_tune_lr_scale`` times its learning rate, keeping its best epoch
    on its own validation users (drawn from that data, so before the split). Any other model is
    refitted with the same hyper-parameters on all of ``window.fine_tune_data``, its recent events
    counted ``recent_weight`` times. Nothing at or after the split time is in either.
    """
    if hasattr(current, "warm_start"):
        candidate = copy.deepcopy(current)
        overrides: dict[str, Any] = {
            "lr": float(current.get_params()["lr"]) * policy.fine_tune_lr_scale,
            "max_epochs": policy.fine_tune_epochs,
            "max_minutes": policy.fine_tune_minutes,
            "patience": policy.fine_tune_epochs,
            "warmup_epochs": 0.0,
            "verbose": False,
            "warm_start": True,
            "checkpoint_path": None,
        }
        for name, value in overrides.items():
            setattr(candidate, name, value)
        candidate.fit(active_sequences(window))
        setattr(candidate, "warm_start", False)  # noqa: B010  (the copy's next fit starts afresh)
        return candidate
    fresh = type(current)(**current.get_params())
    return fresh.fit(recent_weighted(window.fine_tune_data, window.recent_rows, policy.recent_weight))


def heldout_metrics(model: BaseRecommender, window: RecentWindow) -> dict[str, float]:
    """NDCG@10 and HR@10 of ``model`` on the held-out slice: full ranking, history excluded."""
    report = evaluate(model, window.held_out, model_name=model.kind, list_size=0)
    return {name: report.metrics[name] for name in METRICS}


def active_sequences(window: RecentWindow) -> Dataset:
    """The fine-tuning data of the users active in the recent window, each with their whole history.

    Warm-start fine-tuning trains on these: their targets are the recent behaviour, and the older
    items stay in each sequence as the context the model reads them in.
    """
    data = window.fine_tune_data
    active = np.unique(data.interactions.user[window.recent_rows])
    return data.with_interactions(data.interactions.select(np.isin(data.interactions.user, active)))
