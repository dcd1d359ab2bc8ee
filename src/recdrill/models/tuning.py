"""Hyper-parameter search with Optuna, on the validation fold only, within a wall-time budget.

Each trial fits on the validation fold's training data and is scored by NDCG@10 on the validation
targets; test targets are never read. The study is seeded (TPE sampler), so the same budget on the
same machine proposes the same first trials.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna

from recdrill.data.splits import EvalFold
from recdrill.errors import ConfigError
from recdrill.eval.evaluate import evaluate
from recdrill.models.factory import model_class

SearchSpace = Callable[[optuna.Trial], dict[str, Any]]


def _sasrec_space(trial: optuna.Trial) -> dict[str, Any]:
    return {
        "dim": trial.suggest_categorical("dim", [32, 64, 128]),
        "blocks": trial.suggest_int("blocks", 1, 3),
        "dropout": trial.suggest_float("dropout", 0.1, 0.6),
        "lr": trial.suggest_float("lr", 3e-4, 3e-3, log=True),
        "weight_decay": trial.suggest_float("weight_decay", 1e-3, 0.3, log=True),
        "negatives": trial.suggest_categorical("negatives", [0, 1024]),
        "use_attributes": trial.suggest_categorical("use_attributes", [True, False]),
        "mask_rate": trial.suggest_categorical("mask_rate", [0.0, 0.1, 0.2]),
        "category_rate": trial.suggest_categorical("category_rate", [0.0, 0.1]),
        "attribute_mask_rate": trial.suggest_categorical("attribute_mask_rate", [0.0, 0.2]),
    }


def _itemknn_space(trial: optuna.Trial) -> dict[str, Any]:
    return {
        "neighbours": trial.suggest_int("neighbours", 20, 400, log=True),
        "window": trial.suggest_int("window", 1, 8),
        "backward_weight": trial.suggest_float("backward_weight", 0.0, 1.0),
        "alpha": trial.suggest_float("alpha", 0.3, 0.9),
        "shrink": trial.suggest_float("shrink", 0.0, 200.0),
        "history_length": trial.suggest_int("history_length", 1, 20),
        "recency_decay": trial.suggest_float("recency_decay", 0.2, 1.0),
    }


SEARCH_SPACES: dict[str, SearchSpace] = {"sasrec": _sasrec_space, "itemknn": _itemknn_space}


@dataclass(frozen=True)
class TuneResult:
    """The best trial's parameters and validation NDCG@10, and every trial as plain data."""

    model: str
    best_params: dict[str, Any]
    best_value: float
    trials: list[dict[str, Any]]
    seconds: float


def tune(
    kind: str,
    validation: EvalFold,
    *,
    budget_minutes: float,
    max_trials: int | None = None,
    seed: int = 0,
    fixed: dict[str, Any] | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> TuneResult:
    """Search ``kind``'s hyper-parameters; stop when the budget or ``max_trials`` is spent.

    ``fixed`` parameters are passed to every trial (for example a shorter per-fit time limit).
    """
    if kind not in SEARCH_SPACES:
        raise ConfigError(f"no search space for {kind!r}; tunable models: {', '.join(sorted(SEARCH_SPACES))}")
    if not budget_minutes > 0:
        raise ConfigError(f"budget_minutes must be positive, got {budget_minutes}")
    cls = model_class(kind)
    deadline = time.monotonic() + budget_minutes * 60
    started = time.monotonic()

    def objective(trial: optuna.Trial) -> float:
        params = {**SEARCH_SPACES[kind](trial), **(fixed or {})}
        if "max_minutes" in cls.param_names():
            # A trial never outlives the study's budget.
            left = max(0.5, (deadline - time.monotonic()) / 60)
            params["max_minutes"] = min(float(params.get("max_minutes", left)), left)
        model = cls(**params).fit(validation.fit_data)
        score = evaluate(model, validation, model_name=kind).metrics["NDCG@10"]
        progress(f"trial {trial.number}: NDCG@10 {score:.4f} with {trial.params}")
        return score

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    timeout = max(1.0, deadline - time.monotonic())
    study.optimize(objective, n_trials=max_trials, timeout=timeout)
    trials = [
        {
            "number": t.number,
            "params": t.params,
            "value": t.value,
            "state": t.state.name,
            "seconds": (t.duration.total_seconds() if t.duration else None),
        }
        for t in study.trials
    ]
    completed = [t for t in study.trials if t.value is not None]
    if not completed:
        raise ConfigError(f"no trial finished within {budget_minutes} minutes: give the search more time")
    return TuneResult(
        kind, dict(study.best_params), float(study.best_value), trials, time.monotonic() - started
    )
