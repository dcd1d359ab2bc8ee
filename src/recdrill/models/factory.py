"""Models by name: build a fresh one, or load a saved one and check it fits the data."""

from __future__ import annotations

from importlib import import_module
from pathlib import Path

from recdrill.data.dataset import Dataset
from recdrill.errors import ConfigError, ModelFileError
from recdrill.models.base import BaseRecommender, read_saved

# Kind -> "module:class". Imported on first use: the Transformer pulls in PyTorch, which commands
# that never touch it (serving a baseline, reading data) should not pay for.
MODEL_KINDS: dict[str, str] = {
    "pop": "recdrill.models.popularity:PopularityRecommender",
    "catpop": "recdrill.models.popularity:CategoryPopularityRecommender",
    "itemknn": "recdrill.models.itemknn:ItemKNNRecommender",
    "sasrec": "recdrill.models.sasrec.estimator:SASRecRecommender",
}


def model_class(kind: str) -> type[BaseRecommender]:
    """The class behind a model kind."""
    if kind not in MODEL_KINDS:
        raise ConfigError(f"unknown model {kind!r}; choose one of {', '.join(sorted(MODEL_KINDS))}")
    module, _, name = MODEL_KINDS[kind].partition(":")
    cls: type[BaseRecommender] = getattr(import_module(module), name)
    return cls


def make_model(kind: str) -> BaseRecommender:
    """A new, unfitted model of the named kind with default hyper-parameters."""
    return model_class(kind)()


def load_model(path: str | Path, dataset: Dataset | None = None) -> BaseRecommender:
    """Load a saved model; with ``dataset``, refuse one trained on another catalogue."""
    meta, state = read_saved(path)
    if str(meta["kind"]) not in MODEL_KINDS:
        raise ModelFileError(path, f"unknown model kind {meta['kind']!r}")
    cls = model_class(str(meta["kind"]))
    model = cls.from_saved(meta, state, path)
    if dataset is not None and model.fingerprint_ != dataset.fingerprint():
        raise ModelFileError(
            path,
            f"model was trained on a different catalogue (fingerprint {model.fingerprint_}, "
            f"data {dataset.name} has {dataset.fingerprint()})",
        )
    return model
