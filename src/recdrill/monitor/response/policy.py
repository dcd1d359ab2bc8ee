"""The settings of the automatic drift response, each default with its reason."""

from __future__ import annotations

import math
from dataclasses import dataclass

from recdrill._params import validate_params


@dataclass(frozen=True)
class ResponsePolicy:
    """When to respond to drift and what a candidate must show to replace the current model.

    Attributes:
        sustain_s: a feature must be flagged this long before a response: 600 s, the
            ``RecdrillFeatureDrift`` alert's ``for:``, so the response and the page agree.
        recent_window_s: recent events newer than ``now - recent_window_s`` form the window the
            candidate learns from and is judged on: 7 days, one whole weekly rhythm.
        min_recent_events: fewer events in the window and the model is kept without training:
            1,000; below that the held-out slice is too small to tell a few percent apart.
        holdout_share: the last share of the window's events (by time) held out for the
            comparison: 0.2, the usual test share, leaving 80% of the new behaviour to learn from.
        min_holdout_users: fewer evaluated users and the model is kept: 100, for the same reason.
        min_gain: the candidate's NDCG@10 must beat the current model's by this relative margin
            (0.02 = 2%), so noise and the cost of a switch are not paid for nothing.
        fine_tune_epochs, fine_tune_minutes: SASRec's fine-tuning budget (10 epochs, 10 minutes):
            continuing from trained weights needs few epochs, and the response should be quick.
        fine_tune_lr_scale: fine-tuning peak learning rate as a share of the model's own (1.0). The
            first training's cosine schedule ended near zero, so this is a warm restart, and its
            schedule decays again within the fine-tuning epochs. On ShopSim with new items after the
            drift, 1.0 gained about +12% NDCG@10 on the held-out slice where 0.5 gained 0 to +2%
            (two seeds; ``benchmarks/auto_response.py``).
        recent_weight: models that can only refit (ItemKNN, popularity) count recent events this
            many times (2), leaning toward the shop's current behaviour without forgetting the rest.
        canary_percent: share of users the candidate serves as a canary on a server (10%).
        auto_promote: let the server's canary judge make a passing canary production (True): the
            offline comparison decides whether to try, the online judge whether to keep.
    """

    sustain_s: float = 600.0
    recent_window_s: float = 7 * 86_400.0
    min_recent_events: int = 1_000
    holdout_share: float = 0.2
    min_holdout_users: int = 100
    min_gain: float = 0.02
    fine_tune_epochs: int = 10
    fine_tune_minutes: float = 10.0
    fine_tune_lr_scale: float = 1.0
    recent_weight: int = 2
    canary_percent: float = 10.0
    auto_promote: bool = True

    def __post_init__(self) -> None:
        checks = {
            "sustain_s": (self.sustain_s, self.sustain_s >= 0, ">= 0"),
            "recent_window_s": (self.recent_window_s, self.recent_window_s > 0, "> 0"),
            "min_recent_events": (self.min_recent_events, self.min_recent_events >= 1, "an int >= 1"),
            "holdout_share": (self.holdout_share, 0.0 < self.holdout_share < 1.0, "in (0, 1)"),
            "min_holdout_users": (self.min_holdout_users, self.min_holdout_users >= 1, "an int >= 1"),
            "min_gain": (self.min_gain, math.isfinite(self.min_gain), "a finite number"),
            "fine_tune_epochs": (self.fine_tune_epochs, self.fine_tune_epochs >= 1, "an int >= 1"),
            "fine_tune_minutes": (self.fine_tune_minutes, self.fine_tune_minutes > 0, "> 0"),
            "fine_tune_lr_scale": (self.fine_tune_lr_scale, self.fine_tune_lr_scale > 0, "> 0"),
            "recent_weight": (self.recent_weight, self.recent_weight >= 1, "an int >= 1"),
            "canary_percent": (self.canary_percent, 0.0 < self.canary_percent <= 100.0, "in (0, 100]"),
        }
        validate_params("ResponsePolicy", checks)
