"""``recdrill drift check``: every shared column of two tables tested for drift, Evidently style.

Each column is tested with the default rule of :mod:`recdrill.monitor.drift.defaults` (KS or normed
Wasserstein for numbers, chi-square or Jensen-Shannon for categories, by reference size), or with
the method named by ``method`` where that method fits the column's kind: KS and Wasserstein fit
numeric columns, chi-square categorical ones, PSI, KL and JS both. A column the forced method does
not fit keeps its default test, and its entry says so (``"forced": false``). A column is numeric
when pandas reads it as numbers (booleans are categories). Missing values are dropped per column
before testing, as Evidently does. The dataset drifts when at least half of its columns drift
(Evidently's default share).

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> ref = pd.DataFrame({"price": rng.normal(10, 2, 500), "cat": rng.choice(["a", "b"], 500)})
    >>> cur = pd.DataFrame({"price": rng.normal(12, 2, 500), "cat": rng.choice(["a", "b"], 500)})
    >>> check = check_frames(ref, cur)
    >>> [(c.name, c.method, c.drift) for c in check.columns.values()], check.dataset_drift
    ([('price', 'ks', True), ('cat', 'chi2', False)], True)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from recdrill.data.files import read_column_names, read_parquet, require_file
from recdrill.errors import ConfigError, DataError, DataFormatError, DataSchemaError
from recdrill.monitor.drift.bins import ColumnKind
from recdrill.monitor.drift.defaults import compare, method_class
from recdrill.monitor.drift.detector import DriftResult

__all__ = [
    "ColumnDrift",
    "DriftCheck",
    "DriftResult",
    "check_files",
    "check_frames",
    "compare",
    "read_table",
    "same_columns",
]

DATASET_DRIFT_SHARE = 0.5  # Evidently's default: the dataset drifts when half its columns do
COLUMN_METHODS = ("chi2", "js", "kl", "ks", "psi", "wasserstein")  # MMD compares vectors, not columns


@dataclass(frozen=True)
class ColumnDrift:
    """One column's test: what ran, its score against its threshold, and whether ``method`` was forced."""

    name: str
    kind: ColumnKind
    method: str
    score: float
    threshold: float
    drift: bool
    forced: bool | None = None  # None: no method was forced; False: it did not fit this column

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "method": self.method,
            "score": self.score,
            "threshold": self.threshold,
            "drift": self.drift,
            "kind": self.kind,
        }
        if self.forced is not None:
            out["forced"] = self.forced
        return out


@dataclass(frozen=True)
class DriftCheck:
    """The whole check: per column, and the dataset verdict."""

    columns: dict[str, ColumnDrift]

    @property
    def n_drifted(self) -> int:
        return sum(c.drift for c in self.columns.values())

    @property
    def dataset_drift(self) -> bool:
        return self.n_drifted >= DATASET_DRIFT_SHARE * len(self.columns)

    def to_dict(self) -> dict[str, Any]:
        """The stable JSON shape: ``{"columns": {NAME: {...}}, "dataset_drift": bool}``."""
        return {
            "columns": {name: c.to_dict() for name, c in self.columns.items()},
            "dataset_drift": self.dataset_drift,
        }

    def format_table(self) -> str:
        """A short text table, one line per column, then the dataset verdict."""
        width = max(6, *(len(name) for name in self.columns))
        lines = [f"{'column':<{width}}  {'kind':<11}  {'method':<11}  {'score':>10}  {'threshold':>9}  drift"]
        for c in self.columns.values():
            lines.append(
                f"{c.name:<{width}}  {c.kind:<11}  {c.method:<11}  {c.score:>10.4g}  {c.threshold:>9.4g}  "
                f"{'DRIFT' if c.drift else 'no'}"
            )
        verdict = "DRIFT" if self.dataset_drift else "no drift"
        lines.append(f"dataset: {verdict} ({self.n_drifted} of {len(self.columns)} columns drifted)")
        return "\n".join(lines)


def column_kind(values: pd.Series[Any]) -> ColumnKind:
    """``numeric`` for int and float columns, ``categorical`` for the rest (text, booleans)."""
    dtype = values.dtype
    is_number = pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
    return "numeric" if is_number else "categorical"


def read_table(path: str | Path) -> pd.DataFrame:
    """A CSV (types inferred by pandas) or Parquet file with at least one row.

    Raises:
        DataFileNotFoundError: no such file.
        DataFormatError: another extension, an unreadable file, or no rows.
    """
    path = require_file(path)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        frame = read_parquet(path, read_column_names(path))
    elif suffix == ".csv":
        try:
            frame = pd.read_csv(path)
        except pd.errors.EmptyDataError as exc:
            raise DataFormatError(path, "file is empty") from exc
        except (pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
            raise DataFormatError(path, f"cannot read CSV: {exc}".splitlines()[0]) from exc
    else:
        raise DataFormatError(path, f"unsupported file type {path.suffix!r}: expected .csv or .parquet")
    if frame.empty:
        raise DataFormatError(path, "no rows")
    return frame


def check_files(
    reference: str | Path, current: str | Path, method: str | None = None, columns: list[str] | None = None
) -> DriftCheck:
    """:func:`check_frames` on two CSV or Parquet files; errors name the file at fault."""
    ref, cur = read_table(reference), read_table(current)
    same_columns(ref, cur, current)
    return check_frames(ref, cur, method, columns)


def same_columns(reference: pd.DataFrame, current: pd.DataFrame, current_path: str | Path) -> None:
    """A DataSchemaError naming ``current_path`` unless both tables have the same columns."""
    missing = [str(c) for c in reference.columns if c not in current.columns]
    extra = [str(c) for c in current.columns if c not in reference.columns]
    if missing or extra:
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + (
            [f"not in the reference: {', '.join(extra)}"] if extra else []
        )
        raise DataSchemaError(current_path, "columns differ from the reference: " + "; ".join(parts))


def check_frames(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    method: str | None = None,
    columns: list[str] | None = None,
) -> DriftCheck:
    """Test ``columns`` (default: all of the reference's) of ``current`` against ``reference``.

    Raises:
        ConfigError: an unknown method, or a column named that the tables do not have.
        DataError: a column with no values (all missing) in either table.
    """
    if method is not None and method not in COLUMN_METHODS:
        method_class(method)  # an unknown name: its ConfigError lists the methods
        raise ConfigError(
            f"{method!r} compares embedding vectors; for columns choose one of {', '.join(COLUMN_METHODS)}"
        )
    names = list(reference.columns) if columns is None else columns
    for name in names:
        if name not in reference.columns or name not in current.columns:
            raise ConfigError(
                f"column {name!r} is not in both tables; they have: {', '.join(map(str, reference.columns))}"
            )
    return DriftCheck(
        {str(name): _check_column(str(name), reference[name], current[name], method) for name in names}
    )


def _check_column(
    name: str, reference: pd.Series[Any], current: pd.Series[Any], method: str | None
) -> ColumnDrift:
    kind = column_kind(reference)
    if kind == "numeric" and column_kind(current) != "numeric":
        raise DataError(f"column {name!r}: numbers in the reference but not in the current table")
    # Numbers as float64 (nullable Int64 columns too); categories as they are.
    dtype = float if kind == "numeric" else None
    ref, cur = reference.dropna().to_numpy(dtype=dtype), current.dropna().to_numpy(dtype=dtype)
    for sample, which in ((ref, "reference"), (cur, "current")):
        if len(sample) == 0:
            raise DataError(f"column {name!r} has no values in the {which} table")
    fits = method is not None and kind in method_class(method).kinds
    result = compare(ref, cur, method if fits else None, kind=kind)
    forced = None if method is None else fits
    return ColumnDrift(name, kind, result.method, result.score, result.threshold, bool(result.drift), forced)
