"""Models by name: build a fresh one, or load a saved one and check it fits the data."""

from __future__ import annotations

from pathlib import Path

from recdrill.data.dataset import Dataset
from recdrill.errors import ConfigError, ModelFileError
from recdrill.models.base import BaseRecommender, read_saved
from recdrill.models.itemknn import ItemKNNRecommender
from recdrill.models.popularity import CategoryPopularityRecommender, PopularityRecommender

MODEL_KINDS: dict[str, type[BaseRecommender]] = {
    model.kind: model for model in (PopularityRecommender, CategoryPopularityRecommender, ItemKNNRecommender)
}


def make_model(kind: str) -> BaseRecommender:
    """A new, unfitted model of the named kind with default hyper-parameters."""
    try:
        return MODEL_KINDS[kind]()
    except KeyError:
        raise ConfigError(f"unknown model {kind!r}; choose one of {', '.join(sorted(MODEL_KINDS))}") from None


def load_model(path: str | Path, dataset: Dataset | None = None) -> BaseRecommender:
    """Load a saved model; with ``dataset``, refuse one trained on another catalogue."""
    meta, state = read_saved(path)
    cls = MODEL_KINDS.get(str(meta["kind"]))
    if cls is None:
        raise ModelFileError(path, f"unknown model kind {meta['kind']!r}")
    model = cls.from_saved(meta, state, path)
    if dataset is not None and model.fingerprint_ != dataset.fingerprint():
        raise ModelFileError(
            path,
            f"model was trained on a different catalogue (fingerprint {model.fingerprint_}, "
            f"data {dataset.name} has {dataset.fingerprint()})",
        )
    return model
