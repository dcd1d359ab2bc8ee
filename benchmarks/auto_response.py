"""The automatic drift response end to end on ShopSim: live-monitor trigger, warm-start fine-tuning,
held-out comparison, and the decision applied to a real (temporary) registry.

Per scenario, one seeded shop whose drift starts halfway through its 30 days:

1. the current model, a small SASRec, is trained on everything before the drift, until its
   validation NDCG@10 stops improving (or 1.5 minutes); shops that agree before the drift
   (``taste_shift`` and ``no_drift``) share it, so one model meets drift and no drift;
2. the live monitor replays the shop (``recdrill.monitor.replay.shop``: a stationary phase, then the
   9 days after the drift in time order); the trigger is the first pass at which
   ``AutoResponder.should_respond`` names a feature flagged for ``sustain_s`` (600 s, the alert's
   ``for:``), as a live loop over ``LiveMonitor.drifting_since`` sees it;
3. at the end of those 9 days, when the policy's 7-day recent window lies wholly after the drift,
   ``respond`` fine-tunes a copy (warm start) on the window before its split, and compares NDCG@10
   of current and candidate on the held-out drifted slice (every event of the window's last 20%);
   a paired bootstrap over users gives the gain's 95% interval;
4. baselines in the same run: a SASRec retrained from scratch on the same data with the first
   training's budget (is warm start worth it?), and the ItemKNN refit path of the same responder;
5. a later slice nobody trained or chose on: every event of the 36 hours after the response;
6. the decision is applied to a temporary registry whose production holds the current model.

Scenarios: ``season_change`` (tastes shift and 20% of the catalogue is new after the drift),
``taste_shift`` (tastes only), and the control ``no_drift`` (the responder runs all the same: it
should keep the current model, or gain little).

Run: ``python benchmarks/auto_response.py`` (about 8 minutes on 2 busy cores); writes
``benchmarks/results/auto_response.json``. ``--quick`` runs a small shop and short trainings (a smoke
run) into ``benchmarks/results/quick/``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

if __name__ == "__main__":  # a script's setting, never an importer's (harness.py)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import torch

from harness import QUICK_HELP, quick_path, run_main
from recdrill.data.dataset import Dataset
from recdrill.data.shopsim import ShopSim
from recdrill.data.shopsim.config import DriftConfig
from recdrill.data.splits import EvalFold
from recdrill.eval.ranking import exclude, target_ranks
from recdrill.models.base import BaseRecommender
from recdrill.models.itemknn import ItemKNNRecommender
from recdrill.models.sasrec.estimator import SASRecRecommender
from recdrill.monitor.replay.shop import ReplayResult, replay_shop
from recdrill.monitor.response.apply import apply, read_decisions
from recdrill.monitor.response.data import held_out_fold, split_recent
from recdrill.monitor.response.responder import AutoResponder, ResponseDecision, ResponsePolicy
from recdrill.registry.keys import init_keys
from recdrill.registry.registry import Registry
from recdrill.registry.stages import Stage

RESULTS = Path(__file__).parent / "results" / "auto_response.json"
SCENARIOS = {
    "season_change": DriftConfig(start=0.5, taste_shift=0.8, new_items=0.2),
    "taste_shift": DriftConfig(start=0.5, taste_shift=0.8),
    "no_drift": DriftConfig(start=0.5),
}
LIVE_SHARE = 0.3  # the replay's live phase: the first 30% of the timeline after the drift


@dataclasses.dataclass(frozen=True)
class Plan:
    """The sizes of one run: the shop, SASRec's training budget, the policy, the replay's phases."""

    shop: dict[str, Any]
    sasrec: dict[str, Any]
    policy: ResponsePolicy
    stationary_s: float
    live_s: float


SASREC: dict[str, Any] = {
    "dim": 32, "blocks": 1, "heads": 1, "max_len": 30, "batch_size": 128, "patience": 3,
    "max_epochs": 60, "max_minutes": 1.5, "device": "cpu",
}  # fmt: skip
FULL = Plan(
    shop={"n_items": 2000, "n_users": 8000, "n_events": 240_000, "days": 30, "seed": 11},
    sasrec=SASREC,
    policy=ResponsePolicy(min_recent_events=1_000, min_holdout_users=100),
    stationary_s=1200.0,
    live_s=1800.0,
)
QUICK = Plan(
    shop={"n_items": 600, "n_users": 1500, "n_events": 45_000, "days": 30, "seed": 11},
    sasrec={**SASREC, "max_epochs": 3, "max_minutes": 0.1},
    policy=ResponsePolicy(min_recent_events=500, min_holdout_users=50),
    stationary_s=600.0,
    live_s=1200.0,
)
BOOTSTRAP = 2000


def per_target_ndcg(model: BaseRecommender, fold: EvalFold, chunk: int = 1024) -> np.ndarray:
    """NDCG@10 of each target (full ranking, history excluded), as ``evaluate`` counts it."""
    out = np.empty(len(fold))
    for start in range(0, len(fold), chunk):
        rows = np.arange(start, min(start + chunk, len(fold)))
        histories = fold.histories.take(rows)
        scores = exclude(np.array(model.score(histories), dtype=np.float32), histories)
        ranks = target_ranks(scores, fold.targets[rows])
        out[rows] = np.where(ranks < 10, 1.0 / np.log2(ranks + 2.0), 0.0)
    return out


def paired_gain(
    candidate: np.ndarray, current: np.ndarray, users: np.ndarray, seed: int = 0
) -> dict[str, Any]:
    """Relative NDCG@10 gain over the same targets, with a 95% interval from a paired bootstrap that
    resamples users (a user's targets are not independent of each other)."""
    _, user = np.unique(users, return_inverse=True)
    n = int(user.max()) + 1
    cand, cur = np.bincount(user, candidate, n), np.bincount(user, current, n)
    rng = np.random.default_rng(seed)
    ratios = np.empty(BOOTSTRAP)
    for i in range(BOOTSTRAP):
        pick = np.bincount(rng.integers(0, n, n), minlength=n)  # how often each user is drawn
        ratios[i] = (pick @ cand) / max(pick @ cur, 1e-12) - 1.0
    low, high = np.quantile(ratios, [0.025, 0.975])
    return {
        "gain": float(candidate.sum() / max(current.sum(), 1e-12) - 1.0),
        "ci95": [float(low), float(high)],
        "p_not_better": float(np.mean(ratios <= 0.0)),
    }


def trigger_from_replay(result: ReplayResult, responder: AutoResponder) -> tuple[float, list[str]] | None:
    """The first pass at which ``should_respond`` names features, as a live loop would see it."""
    since: dict[str, float] = {}
    for index, now in enumerate(result.pass_times):
        for name, flags in result.flags.items():
            if index < len(flags) and flags[index]:
                since.setdefault(name, now)
            else:
                since.pop(name, None)
        features = responder.should_respond(since, now)
        if features:
            return now, features
    return None


def sasrec(plan: Plan, **overrides: Any) -> SASRecRecommender:
    return SASRecRecommender(**{**plan.sasrec, **overrides})


# Scenarios whose shops agree before the drift (a drift knob never reshuffles the rest of the shop)
# share one current model: the same model then faces drift and no drift.
TRAINED: dict[str, tuple[SASRecRecommender, float]] = {}


def run_scenario(name: str, drift: DriftConfig, work: Path, plan: Plan) -> dict[str, Any]:
    began = time.perf_counter()
    sim = ShopSim(**plan.shop, drift=drift)
    shop = sim.generate()
    span = sim.config.days * 86_400
    train_end = sim.config.drift_time
    stop = train_end + int(LIVE_SHARE * span)
    t = shop.interactions.timestamp
    train = shop.with_interactions(shop.interactions.select(t < train_end))
    digest = train.interactions_digest()
    if digest not in TRAINED:
        started = time.perf_counter()
        TRAINED[digest] = sasrec(plan).fit(train), time.perf_counter() - started
    current, train_s = TRAINED[digest]

    started = time.perf_counter()
    replay = replay_shop(
        shop,
        train_end=train_end,
        stop=stop,
        stationary_s=plan.stationary_s,
        live_s=plan.live_s,
        onset=train_end,
    )
    replay_s = time.perf_counter() - started
    responder = AutoResponder(plan.policy, work / name)
    trigger = trigger_from_replay(replay, responder)
    second, features = trigger if trigger is not None else (None, [])
    # The response runs at the end of the replayed period, when the policy's whole recent window
    # (7 days) lies after the drift; a response run at the trigger would have only the days since.
    now = stop
    recent = shop.with_interactions(shop.interactions.select((t >= train_end) & (t <= now)))
    decision = responder.respond(current, train, recent, now, triggered_by=features)
    window = split_recent(
        train, recent, now=now, window_s=plan.policy.recent_window_s, holdout_share=plan.policy.holdout_share
    )
    if decision.candidate_path is None:
        raise RuntimeError(f"{name}: no candidate was trained: {decision.reason}")
    candidate = SASRecRecommender.load(decision.candidate_path)

    # Baselines: a cold retrain on the same data, same budget as the first training.
    started = time.perf_counter()
    cold = sasrec(plan).fit(window.fine_tune_data)
    cold_s = time.perf_counter() - started
    models = {"current": current, "candidate": candidate, "cold_retrain": cold}
    held = {m: per_target_ndcg(model, window.held_out) for m, model in models.items()}
    users = window.held_out.users

    # A later slice nobody trained or chose on: every event of the 36 hours after the response.
    until = shop.with_interactions(shop.interactions.select(t < now + int(0.05 * span)))
    later = held_out_fold(until, now + 1)
    after = {m: per_target_ndcg(model, later) for m, model in models.items()}

    knn = _itemknn_path(train, recent, now, work / f"{name}-knn", plan.policy)
    registry = _apply_in_registry(current, decision, work / f"{name}-home")
    return {
        "scenario": name,
        "drift": dataclasses.asdict(drift),
        "train_events": len(train.interactions),
        "replay": {
            "alerts_after_onset_s": [
                (f, s - plan.stationary_s) for f, s in replay.alerts if s > plan.stationary_s
            ],
            "stationary_alerts": [a for a in replay.alerts if a[1] <= plan.stationary_s],
            "first_flag_after_onset_s": replay.first_flag,
            "trigger_second_after_onset": None if second is None else second - plan.stationary_s,
            "trigger_features": features,
            "trigger_shop_hours_after_drift": None
            if second is None
            else (second - plan.stationary_s) * (stop - train_end) / plan.live_s / 3600.0,
            "response_hours_after_drift": (now - train_end) / 3600.0,
            "requests": replay.requests,
            "seconds": replay_s,
        },
        "window": {
            "recent_events": decision.n_recent_events,
            "fine_tune_events": decision.n_fine_tune_events,
            "held_out_events": decision.n_held_out_events,
            "held_out_users": decision.n_held_out_users,
            "split_hours_after_drift": (decision.split_time - train_end) / 3600.0,
        },
        "sasrec": {
            "train_s": train_s,
            "train_data_digest": digest,
            # Whether the first training stopped early (patience) or ran out of epochs or time:
            # a budget-bound current model gains from any further training, drift or not.
            "current_epochs": len(current.training_log_["epochs"]),
            "current_best_epoch": current.training_log_["best_epoch"],
            "cold_retrain_epochs": len(cold.training_log_["epochs"]),
            "fine_tune_s": decision.fine_tune_seconds,
            "cold_retrain_s": cold_s,
            "fine_tune_to_cold_time_ratio": decision.fine_tune_seconds / cold_s,
            "held_out_ndcg10": {m: float(v.mean()) for m, v in held.items()},
            "held_out_hr10": {"current": decision.current["HR@10"], "candidate": decision.candidate["HR@10"]},
            "candidate_vs_current": paired_gain(held["candidate"], held["current"], users),
            "cold_retrain_vs_current": paired_gain(held["cold_retrain"], held["current"], users),
            "candidate_vs_cold_retrain": paired_gain(held["candidate"], held["cold_retrain"], users),
            "decision": decision.decision,
            "reason": decision.reason,
        },
        "later_slice": {
            "events": len(later),
            "users": len(np.unique(later.users)),
            "ndcg10": {m: float(v.mean()) for m, v in after.items()},
            "candidate_vs_current": paired_gain(after["candidate"], after["current"], later.users),
            "cold_retrain_vs_current": paired_gain(after["cold_retrain"], after["current"], later.users),
        },
        "itemknn": knn,
        "registry": registry,
        "wall_s": time.perf_counter() - began,
    }


def _itemknn_path(
    train: Dataset, recent: Dataset, now: int, work: Path, policy: ResponsePolicy
) -> dict[str, Any]:
    """The same responder with an ItemKNN primary: the refit (recent-weighted) path."""
    started = time.perf_counter()
    current = ItemKNNRecommender().fit(train)
    decision = AutoResponder(policy, work).respond(current, train, recent, now)
    return {
        "current_ndcg10": decision.current["NDCG@10"],
        "candidate_ndcg10": decision.candidate["NDCG@10"],
        "gain": decision.gain,
        "decision": decision.decision,
        "seconds": time.perf_counter() - started,
    }


def _apply_in_registry(current: BaseRecommender, decision: ResponseDecision, home: Path) -> dict[str, Any]:
    """A fresh registry (its own keys) with the current model in production, then ``apply``."""
    init_keys(home)
    registry = Registry(home)
    current.save(home.parent / f"{home.name}-current")
    base = registry.push(home.parent / f"{home.name}-current").version
    registry.promote(base, Stage.PRODUCTION, "initial deployment")
    applied = apply(dataclasses.replace(decision, current_version=base), registry)
    return {
        "current_version": base,
        "candidate_version": applied.candidate_version,
        "applied": applied.applied,
        "stages": {row.version: row.stage.value for row in registry.list()},
        "production": registry.current(Stage.PRODUCTION),
        "recorded_decisions": len(read_decisions(home)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=QUICK_HELP)
    quick = parser.parse_args().quick
    plan = QUICK if quick else FULL
    torch.set_num_threads(1)
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="recdrill-auto-response-") as scratch:
        runs = [run_scenario(name, drift, Path(scratch), plan) for name, drift in SCENARIOS.items()]
    for run in runs:
        s = run["sasrec"]
        gain = s["candidate_vs_current"]
        print(
            f"{run['scenario']:14s} trigger {run['replay']['trigger_features']} "
            f"NDCG@10 current {s['held_out_ndcg10']['current']:.4f} "
            f"candidate {s['held_out_ndcg10']['candidate']:.4f} "
            f"cold {s['held_out_ndcg10']['cold_retrain']:.4f}  gain {gain['gain']:+.1%} "
            f"[{gain['ci95'][0]:+.1%}, {gain['ci95'][1]:+.1%}] -> {s['decision']}; "
            f"registry {run['registry']['applied']}"
        )
    out = quick_path(RESULTS.name) if quick else RESULTS
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "benchmark": "auto_response",
                "quick": quick,
                "shop": plan.shop,
                "sasrec": plan.sasrec,
                "policy": dataclasses.asdict(plan.policy),
                "replay": {
                    "stationary_s": plan.stationary_s,
                    "live_s": plan.live_s,
                    "live_share": LIVE_SHARE,
                },
                "machine": platform.processor() or platform.machine(),
                "cpus": os.cpu_count(),
                "runs": runs,
                "wall_s": time.perf_counter() - began,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {out} in {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    run_main(main)
