"""Shared fixtures: small hand-built shops whose right answers are known."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from recdrill.data.dataset import Catalog, Dataset, EventType, Interactions

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATASETS = REPO_ROOT.parent / "shared" / "datasets"


@pytest.fixture(autouse=True, scope="session")
def private_recdrill_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Point RECDRILL_HOME at an empty folder for the whole run: a real ``~/.recdrill/keys.db`` would
    switch key checking on in every test server, and tests must never touch a user's registry."""
    home = tmp_path_factory.mktemp("recdrill-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RECDRILL_HOME", str(home))
        # No data key here: test servers keep pseudonyms only (tests/serving/test_feedback_encryption
        # lifts this and seals user ids under a key of its own).
        patch.setenv("RECDRILL_FEEDBACK_PSEUDONYMS_ONLY", "1")
        for name in ("RECDRILL_KEY_STORE", "RECDRILL_SIGNING_KEY", "RECDRILL_DATA_KEY", "RECDRILL_ADMIN_KEY"):
            patch.delenv(name, raising=False)
        yield home


def make_shop(sequences: list[list[int]], n_items: int, categories: list[int] | None = None) -> Dataset:
    """A dataset whose user ``u`` interacted with ``sequences[u]`` in order (timestamps 0, 1, ...)."""
    users = np.repeat(np.arange(len(sequences)), [len(s) for s in sequences])
    items = np.concatenate([np.asarray(s, dtype=np.int64) for s in sequences])
    times = np.concatenate([np.arange(len(s)) for s in sequences])
    catalog = Catalog(
        item_ids=np.array([f"i{i}" for i in range(n_items)], dtype=object),
        category=None if categories is None else np.asarray(categories),
        category_names=() if categories is None else tuple(f"c{c}" for c in range(max(categories) + 1)),
    )
    return Dataset.create(
        "toy",
        np.array([f"u{u}" for u in range(len(sequences))], dtype=object),
        catalog,
        Interactions(users, items, times, np.full(len(users), EventType.PURCHASE)),
        has_time=False,
    )


@pytest.fixture
def chain_shop() -> Dataset:
    """20 items in two categories (even/odd); users walk a chain i -> i+1, so the next item is learnable."""
    rng = np.random.default_rng(7)
    sequences = []
    for _ in range(60):
        start = int(rng.integers(0, 14))
        sequences.append(list(range(start, start + int(rng.integers(4, 7)))))
    return make_shop(sequences, n_items=20, categories=[i % 2 for i in range(20)])


def write_sequences_with_last(path: Path, last_items: list[int]) -> Path:
    """A SASRec-format file: user u walks 5 consecutive items, then ends on ``last_items[u]``."""
    rng = np.random.default_rng(11)
    lines = []
    for user, last in enumerate(last_items):
        start = int(rng.integers(1, 12))
        lines.append(" ".join(map(str, [user + 1, *range(start, start + 5), last])))
    path.write_text("\n".join(lines) + "\n")
    return path
