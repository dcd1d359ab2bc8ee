"""The drift detector protocol every method follows (River style): ``update(batch)``, then read.

A detector holds a fixed **reference** sample (from training) and a sliding **current** window of
the last ``window`` values. Each ``update`` appends a batch, evicts what falls out of the window and
recomputes ``score``; ``drift_detected`` compares it with ``threshold``:

* p-value tests (``ks``, ``chi2``; ``higher_is_drift`` False) flag drift when ``score < threshold``;
* distances (``psi``, ``kl``, ``js``, ``wasserstein``, ``mmd``; ``higher_is_drift`` True) flag
  drift when ``score >= threshold``, as Evidently does.

Below ``min_current`` values in the window the score is neutral (p-value 1, distance 0) and
``drift_detected`` is False, so a fresh or restarted monitor never alarms on a handful of values.
It is 30 for p-value tests (a p-value accounts for the sample size) and 500 for distances, which
are biased upward on small samples (see each method); a window shorter than that lowers it to the
window's length.
:meth:`Detector.compare` is the batch form: one reference, one current sample, one
:class:`DriftResult`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np
from numpy.typing import ArrayLike

from recdrill.errors import ConfigError, DataError

Kind = str  # "numeric" or "categorical"


@dataclass(frozen=True)
class DriftResult:
    """One comparison of a current sample with the reference."""

    method: str
    score: float
    threshold: float
    drift: bool


class Detector(ABC):
    """Base of every drift detector; subclasses fill in ``_fit``, ``_push`` and ``_compute``.

    Parameters:
        reference: the fixed sample the current window is compared with (1-D; 2-D for MMD).
        threshold: the decision threshold; None takes the method's documented default.
        window: how many of the latest values the current window keeps.
        min_current: fewest values in the window before the detector may score and alarm.

    Raises:
        ConfigError: a parameter is out of range.
        DataError: the reference is empty or holds non-finite numbers.
    """

    method: ClassVar[str]
    higher_is_drift: ClassVar[bool]
    default_threshold: ClassVar[float]
    # Which column kinds the method fits when `recdrill drift check --method` forces it.
    kinds: ClassVar[frozenset[Kind]]
    min_current: int = 30

    def __init__(
        self,
        reference: ArrayLike,
        *,
        threshold: float | None = None,
        window: int = 1000,
        min_current: int | None = None,
    ) -> None:
        name = type(self).__name__
        if not isinstance(window, int | np.integer) or window < 1:
            raise ConfigError(
                f"The 'window' parameter of {name} must be an int >= 1, got {window!r} instead."
            )
        chosen = self.default_threshold if threshold is None else float(threshold)
        if not np.isfinite(chosen) or chosen < 0 or (not self.higher_is_drift and chosen > 1):
            bound = "in [0, 1]" if not self.higher_is_drift else ">= 0"
            raise ConfigError(
                f"The 'threshold' parameter of {name} must be a number {bound}, got {threshold!r} instead."
            )
        if min_current is not None:
            if min_current < 1:
                raise ConfigError(
                    f"The 'min_current' parameter of {name} must be >= 1, got {min_current!r} instead."
                )
            self.min_current = min_current
        self.min_current = min(self.min_current, int(window))
        self._threshold = chosen
        self._window = int(window)
        self._n_seen = 0
        self._score = self._neutral
        ref = np.asarray(reference)
        if ref.size == 0:
            raise DataError(f"{name}: the reference sample is empty")
        self._fit(ref)

    # --- the protocol ------------------------------------------------------------------------

    def update(self, batch: ArrayLike) -> Self:
        """Append ``batch`` to the current window (keeping its last ``window`` values), rescore."""
        values = self._coerce(np.asarray(batch))
        if len(values) == 0:
            return self
        values = values[-self._window :]
        self._push(values)
        self._n_seen = min(self._window, self._n_seen + len(values))
        self._score = self._compute() if self._n_seen >= self.min_current else self._neutral
        return self

    @property
    def score(self) -> float:
        """The p-value (``higher_is_drift`` False) or distance of the current window."""
        return self._score

    @property
    def threshold(self) -> float:
        return self._threshold

    @property
    def drift_detected(self) -> bool:
        if self._n_seen < self.min_current:
            return False
        if self.higher_is_drift:
            return self._score >= self._threshold
        return self._score < self._threshold

    @property
    def n_seen(self) -> int:
        """How many values the current window holds now (at most ``window``)."""
        return self._n_seen

    @property
    def window(self) -> int:
        return self._window

    @classmethod
    def compare(
        cls, reference: ArrayLike, current: ArrayLike, threshold: float | None = None, **params: Any
    ) -> DriftResult:
        """Batch use: the whole of ``current`` against ``reference`` (no ``min_current`` floor).

        Raises:
            DataError: ``current`` is empty.
        """
        cur = np.asarray(current)
        if cur.size == 0:
            raise DataError(f"{cls.__name__}: the current sample is empty")
        detector = cls(reference, threshold=threshold, window=len(cur), min_current=1, **params)
        detector.update(cur)
        return DriftResult(detector.method, detector.score, detector.threshold, detector.drift_detected)

    # --- what each method supplies ---------------------------------------------------------------

    @property
    def _neutral(self) -> float:
        return 0.0 if self.higher_is_drift else 1.0

    def _coerce(self, batch: np.ndarray) -> np.ndarray:
        """``batch`` as a 1-D array of values; numeric methods override to check finiteness."""
        if batch.ndim == 0:
            return batch.reshape(1)
        if batch.ndim != 1:
            raise DataError(f"{type(self).__name__}: expected a 1-D batch, got shape {batch.shape}")
        return batch

    @abstractmethod
    def _fit(self, reference: np.ndarray) -> None:
        """Learn what the method needs from the reference (sorted values, bins, kernel)."""

    @abstractmethod
    def _push(self, values: np.ndarray) -> None:
        """Add ``values`` (at most ``window`` of them) to the current window's state."""

    @abstractmethod
    def _compute(self) -> float:
        """The score of the current window (called with at least ``min_current`` values)."""


def finite_numbers(values: np.ndarray, who: str) -> np.ndarray:
    """``values`` as float64, or a DataError naming ``who`` when they are not all finite numbers."""
    try:
        out = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{who}: expected numbers, got {values.dtype} values") from exc
    if not np.isfinite(out).all():
        raise DataError(f"{who}: values must be finite numbers (drop NaN and infinities first)")
    return out
