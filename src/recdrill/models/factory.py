"""Models by name: build a fresh one, load a saved one and check it fits the data, or seal a folder
saved before models carried a digest manifest."""

from __future__ import annotations

from importlib import import_module
from pathlib import Path

from recdrill.data.dataset import Dataset
from recdrill.digests import DIGESTS_FILE, has_digests, write_digests
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


def seal_model(path: str | Path) -> list[Path]:
    """Give a model folder saved without ``digests.json`` (and its ``fallback/``) one, then load it.

    For folders saved before recdrill wrote digests: it records what the files hold now, so use it
    only on folders whose files you trust. A folder that has a manifest already is checked, never
    re-sealed (that would accept whatever changed). Returns the folders it sealed.

    Raises:
        ModelFileError: a folder does not load, or its existing manifest does not match its files;
            the manifests this call wrote are removed again.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise ModelFileError(folder, "no such model folder")
    fallback = folder / "fallback"
    sealed: list[Path] = []
    try:
        for each in (folder, fallback) if fallback.is_dir() else (folder,):
            if not has_digests(each):
                write_digests(each)
                sealed.append(each)
            load_model(each)
    except ModelFileError:
        for each in sealed:
            (each / DIGESTS_FILE).unlink(missing_ok=True)
        raise
    return sealed
