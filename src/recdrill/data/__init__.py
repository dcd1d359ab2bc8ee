"""Shop data: the dataset type, loaders, the synthetic shop, splits and the data-quality report."""

from recdrill.data.dataset import Catalog, Dataset, EventType, Interactions, Judgements, Relevance
from recdrill.data.loading import load_dataset
from recdrill.data.online_retail import load_online_retail
from recdrill.data.quality import DataQualityReport
from recdrill.data.ragged import Ragged
from recdrill.data.sequences import load_sequences
from recdrill.data.shopsim import DriftConfig, ShopSim, ShopSimConfig
from recdrill.data.splits import EvalFold, Split, leave_one_out, time_split, time_split_by_fraction
from recdrill.data.tabular import ColumnMapping, load_interactions, parse_column_mapping

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
