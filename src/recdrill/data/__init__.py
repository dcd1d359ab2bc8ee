"""Shop data: the dataset type, loaders, the synthetic shop, splits and the data-quality report.

The names below are imported on first use (PEP 562), so a serving worker that needs only
``recdrill.data.ragged`` does not pay for pandas and the loaders when it starts (or restarts).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from recdrill._lazy import lazy_getattr

_EXPORTS = {
    "Catalog": "dataset",
    "Dataset": "dataset",
    "EventType": "dataset",
    "Interactions": "dataset",
    "Judgements": "dataset",
    "Relevance": "dataset",
    "load_dataset": "loading",
    "load_online_retail": "online_retail",
    "DataQualityReport": "quality",
    "Ragged": "ragged",
    "load_sequences": "sequences",
    "DriftConfig": "shopsim",
    "ShopSim": "shopsim",
    "ShopSimConfig": "shopsim",
    "EvalFold": "splits",
    "Split": "splits",
    "leave_one_out": "splits",
    "time_split": "splits",
    "time_split_by_fraction": "splits",
    "ColumnMapping": "columns",
    "load_interactions": "tabular",
    "parse_column_mapping": "columns",
}

__all__ = [
    "Catalog",
    "ColumnMapping",
    "DataQualityReport",
    "Dataset",
    "DriftConfig",
    "EvalFold",
    "EventType",
    "Interactions",
    "Judgements",
    "Ragged",
    "Relevance",
    "ShopSim",
    "ShopSimConfig",
    "Split",
    "leave_one_out",
    "load_dataset",
    "load_interactions",
    "load_online_retail",
    "load_sequences",
    "parse_column_mapping",
    "time_split",
    "time_split_by_fraction",
]

if TYPE_CHECKING:
    from recdrill.data.columns import ColumnMapping, parse_column_mapping
    from recdrill.data.dataset import Catalog, Dataset, EventType, Interactions, Judgements, Relevance
    from recdrill.data.loading import load_dataset
    from recdrill.data.online_retail import load_online_retail
    from recdrill.data.quality import DataQualityReport
    from recdrill.data.ragged import Ragged
    from recdrill.data.sequences import load_sequences
    from recdrill.data.shopsim import DriftConfig, ShopSim, ShopSimConfig
    from recdrill.data.splits import EvalFold, Split, leave_one_out, time_split, time_split_by_fraction
    from recdrill.data.tabular import load_interactions


__getattr__ = lazy_getattr("recdrill.data", _EXPORTS, globals())
