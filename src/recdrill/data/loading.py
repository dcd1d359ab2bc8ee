"""One entry point for every data source: the synthetic shop or a file, chosen by its name and columns.

Example:
    >>> load_dataset("no/such/file.csv")
    Traceback (most recent call last):
        ...
    recdrill.errors.DataFileNotFoundError: no/such/file.csv: no such file
"""

from __future__ import annotations

from typing import Any

from recdrill.data.columns import ColumnMapping, parse_column_mapping
from recdrill.data.dataset import Dataset
from recdrill.data.files import read_column_names, require_file
from recdrill.data.online_retail import REQUIRED_COLUMNS, load_online_retail
from recdrill.data.sequences import load_sequences
from recdrill.data.tabular import load_interactions
from recdrill.errors import ConfigError, DataFormatError

SYNTHETIC = "shopsim"


def load_dataset(spec: str, *, columns: ColumnMapping | str | None = None, seed: int = 0) -> Dataset:
    """Load the dataset that ``spec`` names.

    ``"shopsim"`` is the synthetic shop (default settings, with ``seed``), and
    ``"shopsim:n_items=2000,n_users=1000,n_events=30000"`` one with integer settings changed;
    a ``.txt`` file is read as user sequences; a ``.parquet`` file with the Online Retail columns as
    Online Retail; any other
    ``.csv``/``.parquet`` file as an interaction table with ``columns`` (default column names if
    ``None``). A given ``columns`` mapping always selects the interaction-table loader; as text it
    is parsed by :func:`parse_column_mapping` (the CLI's ``--columns``). ``seed`` is ignored for files.

    Raises:
        DataFileNotFoundError: the file does not exist.
        DataFormatError: the extension is not one of ``.txt``, ``.csv``, ``.parquet``, or the
            loader finds the file malformed.
        DataSchemaError: a needed column is missing.
        ConfigError: ``columns`` was given for a source that has no columns.

    Example:
        >>> # load_dataset("../shared/datasets/amazon/Beauty.txt").n_users
        >>> # 22363
    """
    if spec == SYNTHETIC or spec.startswith(SYNTHETIC + ":"):
        if columns is not None:
            raise ConfigError(f"a column mapping does not apply to {SYNTHETIC!r}")
        # Imported here: the generator is only needed for this source.
        from recdrill.data.shopsim import ShopSim

        overrides: dict[str, Any] = {"seed": seed, **_shopsim_overrides(spec)}
        return ShopSim(**overrides).generate()
    if isinstance(columns, str):
        columns = parse_column_mapping(columns)
    path = require_file(spec)
    suffix = path.suffix.lower()
    if suffix == ".txt":
        if columns is not None:
            raise ConfigError(f"a column mapping does not apply to sequence file {path}")
        return load_sequences(path)
    if suffix == ".parquet" and columns is None and set(REQUIRED_COLUMNS) <= set(read_column_names(path)):
        return load_online_retail(path)
    if suffix in (".csv", ".parquet"):
        return load_interactions(path, columns)
    kind = repr(path.suffix) if path.suffix else "without extension"
    raise DataFormatError(
        path, f"unsupported file type {kind}: expected .txt, .csv, .parquet or {SYNTHETIC!r}"
    )


def _shopsim_overrides(spec: str) -> dict[str, int]:
    """Integer settings from ``shopsim:key=value,...`` (the config itself validates names and ranges)."""
    _, _, text = spec.partition(":")
    overrides: dict[str, int] = {}
    for pair in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{SYNTHETIC} setting {pair!r} must look like name=value")
        try:
            overrides[key.strip()] = int(value)
        except ValueError:
            raise ConfigError(
                f"{SYNTHETIC} setting {key.strip()!r} must be an integer, got {value!r}"
            ) from None
    return overrides
