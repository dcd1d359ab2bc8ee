"""Which test a column gets: Evidently's documented default rule, and the methods by name.

The rule (Evidently, "Data drift algorithm", tabular data; https://docs-old.evidentlyai.com/reference/
data-drift-algorithm):

* reference with <= 1000 rows: numeric columns with more than 5 distinct values get the two-sample
  Kolmogorov-Smirnov test; categorical columns (and numeric ones with <= 5 distinct values) get the
  chi-square test; both flag drift at p < 0.05;
* reference with > 1000 rows: numeric (more than 5 distinct values) get the normed Wasserstein
  distance, categorical the Jensen-Shannon distance; both flag drift at a distance >= 0.1.

Evidently gives binary categories a Z-test for proportions; here they get chi-square (on a 2 x 2
table it is the square of that Z statistic, the same test). PSI and KL (threshold 0.1) are there to
be chosen by name; MMD serves embedding vectors, and is the default for a 2-D reference.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from recdrill.errors import ConfigError
from recdrill.monitor.drift.bins import ColumnKind, infer_kind
from recdrill.monitor.drift.chi2 import Chi2Detector
from recdrill.monitor.drift.detector import Detector, DriftResult
from recdrill.monitor.drift.histogram import BinnedDetector
from recdrill.monitor.drift.js import JSDetector
from recdrill.monitor.drift.kl import KLDetector
from recdrill.monitor.drift.ks import KSDetector
from recdrill.monitor.drift.mmd import MMDDetector
from recdrill.monitor.drift.psi import PSIDetector
from recdrill.monitor.drift.wasserstein import WassersteinDetector

METHODS: dict[str, type[Detector]] = {
    "chi2": Chi2Detector,
    "js": JSDetector,
    "kl": KLDetector,
    "ks": KSDetector,
    "mmd": MMDDetector,
    "psi": PSIDetector,
    "wasserstein": WassersteinDetector,
}
SMALL_REFERENCE = 1000  # rows; at most this many is "small data" in Evidently's rule
FEW_VALUES = 5  # numeric columns with at most this many distinct values are tested as categories


def effective_kind(reference: ArrayLike, kind: ColumnKind | None = None) -> ColumnKind:
    """``categorical`` for non-numbers and for numbers with at most 5 distinct values, else ``numeric``.

    Example:
        >>> effective_kind([1, 2, 2, 3]), effective_kind(np.arange(10.0)), effective_kind(["a", "b"])
        ('categorical', 'numeric', 'categorical')
    """
    ref = np.asarray(reference).ravel()
    kind = kind or infer_kind(ref)
    if kind == "numeric" and len(np.unique(ref)) <= FEW_VALUES:
        return "categorical"
    return kind


def default_method(reference: ArrayLike, kind: ColumnKind | None = None) -> str:
    """The method Evidently's rule picks for this reference (see the module doc).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> default_method(rng.normal(size=500)), default_method(rng.normal(size=5000))
        ('ks', 'wasserstein')
        >>> default_method(["a", "b"] * 250), default_method(["a", "b"] * 2500)
        ('chi2', 'js')
    """
    if np.ndim(reference) == 2:
        return "mmd"  # rows of vectors: embeddings
    ref = np.asarray(reference).ravel()
    small = len(ref) <= SMALL_REFERENCE
    if effective_kind(ref, kind) == "numeric":
        return "ks" if small else "wasserstein"
    return "chi2" if small else "js"


def method_class(method: str) -> type[Detector]:
    """The detector class named ``method``; a ConfigError lists the names when there is none."""
    try:
        return METHODS[method]
    except KeyError:
        raise ConfigError(f"unknown drift method {method!r}; choose one of {', '.join(METHODS)}") from None


def _params(cls: type[Detector], reference: ArrayLike, kind: ColumnKind | None) -> dict[str, Any]:
    """Histogram methods learn categories, not quantile bins, for what the rule calls categorical."""
    if issubclass(cls, BinnedDetector) and effective_kind(reference, kind) == "categorical":
        return {"kind": "categorical"}
    return {}


def default_detector(
    reference: ArrayLike, *, kind: ColumnKind | None = None, window: int = 1000, **params: Any
) -> Detector:
    """A streaming detector for one feature, chosen and thresholded by Evidently's default rule.

    Parameters:
        reference: the feature's values in the reference period (1-D).
        kind: ``numeric`` or ``categorical``; None infers it from the dtype.
        window: the current window's length.
        params: passed on to the detector (``threshold``, ``min_current``).

    Example:
        >>> default_detector(np.arange(2000.0), window=500).method
        'wasserstein'
    """
    cls = METHODS[default_method(reference, kind)]
    return cls(reference, window=window, **_params(cls, reference, kind), **params)


def compare(
    reference: ArrayLike,
    current: ArrayLike,
    method: str | None = None,
    threshold: float | None = None,
    *,
    kind: ColumnKind | None = None,
) -> DriftResult:
    """Batch drift test of ``current`` against ``reference``: the named method, or the default rule.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> result = compare(rng.normal(size=500), rng.normal(1.0, size=500))
        >>> result.method, result.drift
        ('ks', True)
    """
    cls = method_class(method or default_method(reference, kind))
    return cls.compare(reference, current, threshold, **_params(cls, reference, kind))
