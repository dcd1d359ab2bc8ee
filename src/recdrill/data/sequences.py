"""Sequence files of the SASRec/S3-Rec papers: one user per line, ``user_id item_1 item_2 ...``.

Items are in time order but the files carry no time, so each interaction's timestamp is its position
in the user's sequence (``Dataset.has_time`` is False). Ids are integers; they are kept as their
decimal strings (``"007"`` becomes ``"7"``). Row numbers in the quality report are line numbers.

Example:
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "Shop.txt"
    >>> _ = path.write_text("1 10 2\\n2 2 3\\n")
    >>> shop = load_sequences(path)
    >>> shop.catalog.item_ids.tolist(), shop.sequences().to_lists()
    (['2', '3', '10'], [[2, 0], [0, 1]])
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from recdrill.data.dataset import Catalog, Dataset, EventType, Interactions
from recdrill.data.files import require_file
from recdrill.data.quality import QualityTally
from recdrill.data.ragged import Ragged
from recdrill.errors import DataFormatError

_WHITESPACE = np.frombuffer(b" \t\n\r\x0b\x0c", dtype=np.uint8)  # exactly what bytes.split() splits on
_MAX_DIGITS = 19  # an int64 has at most 19 digits (plus a sign)


def load_sequences(path: str | Path, attributes_path: str | Path | None = None) -> Dataset:
    """Load a sequence file, and item attributes from ``<stem>_item2attributes.json`` if present.

    Items are indexed in numeric order of their ids and users in file order, so the same file
    always gives the same dataset. A line with a user but no items and a blank line are skipped
    and counted in ``dataset.quality`` ("user without items", "blank line").

    Args:
        path: the ``.txt`` sequence file.
        attributes_path: a JSON file ``{"item_id": [attribute_id, ...]}``; by default the one beside
            ``path``, if any. Items it does not list get no attributes.

    Raises:
        DataFileNotFoundError: ``path`` or a given ``attributes_path`` does not exist.
        DataFormatError: the file is empty, an id is not an integer, a user appears on two lines,
            or the attribute file is not valid.

    Example:
        >>> # load_sequences("../shared/datasets/amazon/Beauty.txt").summary()
        >>> # 'Beauty: 22,363 users, 12,101 items, 198,502 interactions, mean history 8.9'
    """
    path = require_file(path)
    data = _read_bytes(path)
    if not data.strip():
        raise DataFormatError(path, "file is empty")
    tokens, token_line, n_lines = _tokenise(data)
    values = _to_integers(path, tokens, token_line)

    first_in_line = np.ones(len(values), dtype=bool)
    first_in_line[1:] = token_line[1:] != token_line[:-1]
    line_user, user_line = values[first_in_line], token_line[first_in_line]
    _check_unique_users(path, line_user, user_line)
    owner = np.cumsum(first_in_line) - 1  # the line (among non-blank lines) each token is on
    item_owner, item_values = owner[~first_in_line], values[~first_in_line]
    n_per_line = np.bincount(item_owner, minlength=len(line_user))

    tally = QualityTally(str(path))
    tally.read(n_lines)
    tally.drop("blank line", np.setdiff1d(np.arange(1, n_lines + 1), user_line))
    has_items = n_per_line > 0
    tally.drop("user without items", user_line[~has_items])
    if not has_items.any():
        raise DataFormatError(path, "no usable rows: no line has a user and items")

    new_user = np.cumsum(has_items) - 1
    item_ints, item = np.unique(item_values, return_inverse=True)
    line_start = np.cumsum(n_per_line) - n_per_line
    position = np.arange(len(item_values)) - line_start[item_owner]
    item_ids = _id_strings(item_ints)
    attributes = _load_attributes(path, attributes_path, item_ints)
    interactions = Interactions(
        user=new_user[item_owner],
        item=item,
        timestamp=position,
        event=np.full(len(item_values), EventType.PURCHASE, dtype=np.int8),
    )
    return Dataset.create(
        path.stem,
        _id_strings(line_user[has_items]),
        Catalog(item_ids=item_ids, attributes=attributes),
        interactions,
        has_time=False,
        quality=tally.report(kept=int(has_items.sum())),
    )


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DataFormatError(path, f"cannot read file: {exc.strerror or exc}") from exc


def _tokenise(data: bytes) -> tuple[list[bytes], np.ndarray, int]:
    """All tokens, the 1-based line of each, and the number of lines, without a per-line loop."""
    raw = np.frombuffer(data, dtype=np.uint8)
    space = np.isin(raw, _WHITESPACE)
    starts = ~space
    starts[1:] &= space[:-1]
    line_of_byte = np.cumsum(raw == ord("\n"))
    token_line = line_of_byte[starts] + 1
    n_lines = int(line_of_byte[-1]) + (0 if data.endswith(b"\n") else 1)
    return data.split(), token_line, n_lines


def _to_integers(path: Path, tokens: list[bytes], token_line: np.ndarray) -> np.ndarray:
    longest = max(len(token) for token in tokens)
    if longest <= _MAX_DIGITS + 1:
        try:
            return np.array(tokens).astype(np.int64)
        except (ValueError, OverflowError):
            pass
    # Error path: convert one by one to name the first offending token and its line.
    values = np.empty(len(tokens), dtype=np.int64)
    for index, token in enumerate(tokens):
        try:
            values[index] = int(token)
        except (ValueError, OverflowError) as exc:
            first = index == 0 or token_line[index] != token_line[index - 1]
            kind = "user" if first else "item"
            text = token.decode("utf-8", errors="replace")
            problem = "is too large" if isinstance(exc, OverflowError) else "is not an integer"
            raise DataFormatError(path, f"{kind} id {text!r} {problem}", line=int(token_line[index])) from exc
    return values


def _check_unique_users(path: Path, users: np.ndarray, lines: np.ndarray) -> None:
    order = np.argsort(users, kind="stable")
    repeated = users[order][1:] == users[order][:-1]
    if not repeated.any():
        return
    second = int(order[1:][repeated].min())  # the earliest line that repeats an earlier user
    first = int(np.flatnonzero(users == users[second])[0])
    raise DataFormatError(
        path,
        f"user id '{users[second]}' appears twice (first on line {lines[first]})",
        line=int(lines[second]),
    )


def _id_strings(ids: np.ndarray) -> np.ndarray:
    return ids.astype(str).astype(object)


def _load_attributes(path: Path, attributes_path: str | Path | None, item_ints: np.ndarray) -> Ragged | None:
    """Attribute ids per item (rows in item order), or ``None`` when there is no attribute file."""
    if attributes_path is None:
        default = path.with_name(f"{path.stem}_item2attributes.json")
        if not default.is_file():
            return None
        json_path = default
    else:
        json_path = require_file(attributes_path)
    try:
        content = json.loads(_read_bytes(json_path))
    except json.JSONDecodeError as exc:
        raise DataFormatError(json_path, f"invalid JSON: {exc.msg}", line=exc.lineno) from exc
    except UnicodeDecodeError as exc:
        raise DataFormatError(json_path, f"not UTF-8 text: {exc}") from exc
    if not isinstance(content, dict):
        raise DataFormatError(json_path, "expected an object mapping item ids to lists of attribute ids")
    by_item: dict[int, list[int]] = {}
    for key, attributes in content.items():
        try:
            item_id = int(key)
        except ValueError as exc:
            raise DataFormatError(json_path, f"item id {key!r} is not an integer") from exc
        if not isinstance(attributes, list) or not all(
            isinstance(a, int) and not isinstance(a, bool) for a in attributes
        ):
            raise DataFormatError(json_path, f"attributes of item {key!r} must be a list of integers")
        by_item[item_id] = attributes
    return Ragged.from_lists(by_item.get(int(item_id), []) for item_id in item_ints)
