"""Evaluate a recommender on a fold: full ranking against all items, history excluded."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from recdrill.data.splits import EvalFold
from recdrill.errors import ConfigError
from recdrill.eval.metrics import DEFAULT_KS, catalog_coverage, popularity_bias, ranking_metrics
from recdrill.eval.ranking import exclude, target_ranks, top_k, validate_scores


class Scorer(Protocol):
    """Anything that scores every item for a batch of user histories."""

    def score(self, histories: Any) -> np.ndarray: ...


@dataclass(frozen=True)
class EvalReport:
    """Quality of one model on one fold (plain data; ``to_dict`` gives the stable JSON shape)."""

    dataset: str
    model: str
    fold: str
    n_users: int
    metrics: dict[str, float]
    coverage: float
    popularity_bias: float
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "model": self.model,
            "fold": self.fold,
            "n_users": self.n_users,
            "metrics": self.metrics,
            "coverage@10": self.coverage,
            "popularity_bias@10": self.popularity_bias,
            "seconds": self.seconds,
            **self.extra,
        }


def evaluate(
    model: Scorer,
    fold: EvalFold,
    *,
    model_name: str = "model",
    ks: tuple[int, ...] = DEFAULT_KS,
    exclude_seen: bool = True,
    batch_size: int = 2048,
    list_size: int = 10,
) -> EvalReport:
    """Rank each user's target against all items and summarise.

    Scores are computed ``batch_size`` users at a time (memory ``batch_size x n_items`` floats);
    items in the user's history are excluded when ``exclude_seen`` (the published protocol).
    Coverage and popularity bias describe the top ``list_size`` lists; ``list_size=0`` skips the
    lists (and reports both as 0), which is what per-epoch validation wants: ranks only.

    Raises:
        ModelError: the model returned scores of the wrong shape, or NaN/+inf scores.
    """
    if batch_size <= 0:
        raise ConfigError(f"batch_size must be positive, got {batch_size}")
    started = time.perf_counter()
    n_items = fold.fit_data.n_items
    ranks = np.empty(len(fold), dtype=np.int64)
    lists = np.empty((len(fold), min(list_size, n_items)), dtype=np.int64)
    # Users go in order of history length so sequence models pad each batch only to its longest row.
    order = np.argsort(fold.histories.lengths, kind="stable")
    for start in range(0, len(fold), batch_size):
        chunk = order[start : start + batch_size]
        histories = fold.histories.take(chunk)
        scores = np.array(model.score(histories), dtype=np.float32, copy=True)
        validate_scores(scores, len(chunk), n_items)
        if exclude_seen:
            exclude(scores, histories)
        ranks[chunk] = target_ranks(scores, fold.targets[chunk])
        if list_size > 0:
            lists[chunk] = top_k(scores, list_size)[0]
    item_counts = fold.fit_data.item_counts()
    return EvalReport(
        dataset=fold.fit_data.name,
        model=model_name,
        fold=fold.name,
        n_users=len(fold),
        metrics=ranking_metrics(ranks, ks),
        coverage=catalog_coverage(lists, n_items),
        popularity_bias=popularity_bias(lists, item_counts),
        seconds=time.perf_counter() - started,
    )


def format_table(reports: list[EvalReport]) -> str:
    """Reports as an aligned text table, one row per report."""
    if not reports:
        return ""
    keys = list(reports[0].metrics)
    header = ["dataset", "model", "fold", "users", *keys, "cov@10", "popbias", "sec"]
    rows = [
        [
            r.dataset,
            r.model,
            r.fold,
            str(r.n_users),
            *(f"{r.metrics[k]:.4f}" for k in keys),
            f"{r.coverage:.3f}",
            f"{r.popularity_bias:.3f}",
            f"{r.seconds:.1f}",
        ]
        for r in reports
    ]
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows, strict=True)]
    lines = ["  ".join(str(x).rjust(w) for x, w in zip(row, widths, strict=True)) for row in [header, *rows]]
    return "\n".join(lines)
