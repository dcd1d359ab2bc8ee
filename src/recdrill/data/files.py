"""Reading tabular files (CSV and Parquet) with errors that name the file and, where known, the line.

A CSV is read as text, so ids keep their leading zeros and each field is parsed once, by the caller.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from recdrill.errors import DataFileNotFoundError, DataFormatError


def require_file(path: str | Path) -> Path:
    """``path`` as a ``Path``, or ``DataFileNotFoundError``/``DataFormatError`` if it is not a file."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DataFileNotFoundError(path)
    if not path.is_file():
        raise DataFormatError(path, "not a file")
    return path


def read_column_names(path: Path) -> list[str]:
    """The column names of a CSV or Parquet file, without reading its rows."""
    if path.suffix.lower() == ".parquet":
        try:
            return list(pq.read_schema(path).names)
        except (pa.ArrowException, OSError) as exc:
            raise DataFormatError(path, f"cannot read Parquet file: {exc}") from exc
    return list(read_csv(path, nrows=0).columns)


def read_parquet(path: Path, columns: list[str]) -> pd.DataFrame:
    """The given columns of a Parquet file, with a fresh 0-based index; ``DataFormatError`` if corrupt."""
    try:
        frame = pd.read_parquet(path, columns=columns)
    except (pa.ArrowException, OSError) as exc:
        raise DataFormatError(path, f"cannot read Parquet file: {exc}") from exc
    return frame.reset_index(drop=True)


def read_csv(path: Path, *, nrows: int | None = None) -> pd.DataFrame:
    try:
        # Everything as text: ids keep their leading zeros and each field is parsed once, by us.
        # All columns are read: with ``usecols`` pandas would accept rows with too many fields.
        return pd.read_csv(path, dtype=str, nrows=nrows)
    except pd.errors.EmptyDataError as exc:
        raise DataFormatError(path, "file is empty") from exc
    except pd.errors.ParserError as exc:
        found = re.search(r"line (\d+)", str(exc))
        line = int(found.group(1)) if found else None
        raise DataFormatError(path, f"cannot parse CSV: {exc}", line=line) from exc
    except UnicodeDecodeError as exc:
        raise DataFormatError(path, f"not UTF-8 text: {exc}") from exc
    except OSError as exc:
        raise DataFormatError(path, f"cannot read file: {exc.strerror or exc}") from exc
