"""The recommender protocol and a base class doing the parts every model shares.

A model follows scikit-learn's spirit: the constructor only stores hyper-parameters, ``fit`` learns
(learned attributes end in ``_``) and returns ``self``, ``score``/``recommend`` predict, and state is
saved and loaded explicitly. A saved model is a folder with ``model.json`` (kind, parameters,
catalogue fingerprint), ``state.npz`` (learned arrays, loaded without pickle) and ``digests.json``
(the SHA-256 of every file, :mod:`recdrill.digests`), checked before anything else is read.
"""

from __future__ import annotations

import inspect
import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, Self, runtime_checkable

import numpy as np
import scipy.sparse as sp

from recdrill.data.dataset import Dataset
from recdrill.data.ragged import Ragged
from recdrill.digests import validate_digests, write_digests
from recdrill.errors import ConfigError, ModelFileError, NotFittedError
from recdrill.eval.ranking import exclude, top_k, validate_scores

FORMAT_VERSION = 1
Histories = Ragged | Sequence[Sequence[int]]


@dataclass(frozen=True)
class Recommendations:
    """Top-k lists: ``items[i]`` are dense item ids for history ``i``, best first, with their scores."""

    items: np.ndarray  # int64 [n, k]
    scores: np.ndarray  # float32 [n, k]


@runtime_checkable
class Recommender(Protocol):
    """What every recdrill model offers."""

    kind: ClassVar[str]

    def fit(self, dataset: Dataset) -> Self: ...

    def score(self, histories: Histories) -> np.ndarray: ...

    def recommend(self, histories: Histories, k: int = 10, exclude_seen: bool = True) -> Recommendations: ...

    def save(self, path: str | Path) -> None: ...


def as_ragged(histories: Histories) -> Ragged:
    return histories if isinstance(histories, Ragged) else Ragged.from_lists(histories)


class BaseRecommender:
    """Shared ``recommend``, ``save`` and ``load``. Subclasses implement ``_fit``, ``_score``,
    ``_state`` and ``_set_state``; their hyper-parameters are their constructor's arguments, each
    stored under its own name (as in scikit-learn, read from the signature)."""

    kind: ClassVar[str] = "base"

    n_items_: int
    fingerprint_: str
    trained_on_: str  # digest of the interactions it was fitted on

    @classmethod
    def param_names(cls) -> tuple[str, ...]:
        """The hyper-parameters: the constructor's arguments, in signature order."""
        kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        signature = inspect.signature(cls.__init__)
        return tuple(name for name, p in signature.parameters.items() if name != "self" and p.kind in kinds)

    def get_params(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.param_names()}

    def fit(self, dataset: Dataset) -> Self:
        if len(dataset.interactions) == 0:
            raise ConfigError(f"cannot fit {type(self).__name__} on {dataset.name}: it has no interactions")
        self.n_items_ = dataset.n_items
        self.fingerprint_ = dataset.fingerprint()
        self.trained_on_ = dataset.interactions_digest()
        self._fit(dataset)
        return self

    def is_fitted(self) -> bool:
        return hasattr(self, "n_items_")

    def score(self, histories: Histories) -> np.ndarray:
        """Scores of every item for each history, float32 ``[n_histories, n_items]``."""
        if not self.is_fitted():
            raise NotFittedError(self)
        ragged = as_ragged(histories)
        if len(ragged.values) and (ragged.values.min() < 0 or ragged.values.max() >= self.n_items_):
            raise ConfigError(f"history item ids must lie in [0, {self.n_items_})")
        return self._score(ragged)

    def recommend(self, histories: Histories, k: int = 10, exclude_seen: bool = True) -> Recommendations:
        """The ``k`` best items per history, best first; seen items removed when ``exclude_seen``."""
        if k <= 0:
            raise ConfigError(f"k must be a positive integer, got {k}")
        ragged = as_ragged(histories)
        scores = np.array(self.score(ragged), dtype=np.float32, copy=True)
        validate_scores(scores, len(ragged), self.n_items_)
        if exclude_seen:
            exclude(scores, ragged)
        items, values = top_k(scores, k)
        return Recommendations(items, values)

    def save(self, path: str | Path) -> None:
        """Write ``model.json`` and ``state.npz`` into folder ``path`` (created if needed), then
        ``digests.json`` over every file then in the folder."""
        if not self.is_fitted():
            raise NotFittedError(self)
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        meta = {
            "format_version": FORMAT_VERSION,
            "kind": self.kind,
            "params": self.get_params(),
            "n_items": self.n_items_,
            "fingerprint": self.fingerprint_,
            "trained_on": self.trained_on_,
        }
        np.savez(folder / "state.npz", allow_pickle=False, **self._state())
        (folder / "model.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
        write_digests(folder)  # last: it lists what the files hold now

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Load a model of this class saved by :meth:`save` (use ``load_model`` for any kind)."""
        meta, state = read_saved(path)
        if meta["kind"] != cls.kind:
            raise ModelFileError(path, f"holds a {meta['kind']!r} model, not {cls.kind!r}")
        return cls.from_saved(meta, state, path)

    @classmethod
    def from_saved(cls, meta: dict[str, Any], state: dict[str, np.ndarray], path: str | Path) -> Self:
        """Rebuild a model from what :func:`read_saved` returned for ``path``."""
        try:
            model = cls(**meta["params"])
        except TypeError as exc:
            raise ModelFileError(path, f"saved parameters do not fit {cls.__name__}: {exc}") from exc
        model.n_items_ = int(meta["n_items"])
        model.fingerprint_ = str(meta["fingerprint"])
        model.trained_on_ = str(meta.get("trained_on", ""))
        try:
            model._set_state(state)
        except KeyError as exc:
            raise ModelFileError(path, f"model state lacks array {exc}") from exc
        except ValueError as exc:  # arrays that do not fit the saved parameters
            raise ModelFileError(path, f"model state is inconsistent: {exc}") from exc
        # A probe catches arrays of the wrong size or with NaN before the model serves anyone.
        try:
            probe = model.score(Ragged.from_lists([[]]))
        except (ValueError, IndexError) as exc:
            raise ModelFileError(path, f"model state is inconsistent: {exc}") from exc
        if probe.shape != (1, model.n_items_) or not np.isfinite(probe).all():
            raise ModelFileError(path, f"model state does not give finite scores for {model.n_items_} items")
        return model

    def _fit(self, dataset: Dataset) -> None:
        raise NotImplementedError

    def _score(self, histories: Ragged) -> np.ndarray:
        raise NotImplementedError

    def _state(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        raise NotImplementedError


def read_saved(path: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read a saved model folder's metadata and arrays, with clear errors for anything wrong.

    Every file is checked against ``digests.json`` first: a changed, missing or added file is refused
    (naming it) before a byte of it is parsed.
    """
    folder = Path(path)
    meta_path, state_path = folder / "model.json", folder / "state.npz"
    if not folder.is_dir():
        raise ModelFileError(folder, "no such model folder")
    for required in (meta_path, state_path):
        if not required.is_file():
            raise ModelFileError(folder, f"missing {required.name}: not a saved recdrill model")
    validate_digests(folder)
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFileError(meta_path, f"corrupt metadata: {exc}") from exc
    if not isinstance(meta, dict) or not {"kind", "params", "n_items", "fingerprint"} <= meta.keys():
        raise ModelFileError(meta_path, "metadata lacks kind, params, n_items or fingerprint")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(
            meta_path, f"format version {meta.get('format_version')} is not {FORMAT_VERSION}"
        )
    try:
        # Opened here, not by np.load, so a corrupt archive cannot leak the file handle.
        with state_path.open("rb") as handle, np.load(handle, allow_pickle=False) as npz:
            state = {name: npz[name] for name in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise ModelFileError(state_path, f"corrupt model state: {exc}") from exc
    return meta, state


def csr_to_state(name: str, matrix: sp.csr_matrix) -> dict[str, np.ndarray]:
    """A sparse matrix as plain arrays named ``name.*``, for ``state.npz``."""
    return {
        f"{name}.data": matrix.data,
        f"{name}.indices": matrix.indices,
        f"{name}.indptr": matrix.indptr,
        f"{name}.shape": np.asarray(matrix.shape),
    }


def csr_from_state(name: str, state: dict[str, np.ndarray]) -> sp.csr_matrix:
    """Inverse of :func:`csr_to_state`."""
    n_rows, n_cols = (int(x) for x in state[f"{name}.shape"])
    return sp.csr_matrix(
        (state[f"{name}.data"], state[f"{name}.indices"], state[f"{name}.indptr"]), shape=(n_rows, n_cols)
    )
