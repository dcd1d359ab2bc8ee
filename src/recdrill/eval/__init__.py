"""Recommendation quality under the published protocol: full ranking, history excluded."""

from recdrill.eval.evaluate import EvalReport, evaluate, format_table
from recdrill.eval.metrics import catalog_coverage, popularity_bias, ranking_metrics
from recdrill.eval.ranking import target_ranks, top_k

__all__ = [
    "EvalReport",
    "catalog_coverage",
    "evaluate",
    "format_table",
    "popularity_bias",
    "ranking_metrics",
    "target_ranks",
    "top_k",
]
