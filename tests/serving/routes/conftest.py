"""One server for every route test: a small item-to-item model of a chain shop, with an admin key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from recdrill.data.dataset import Dataset
from recdrill.data.snapshot import ShopSnapshot
from recdrill.models.itemknn import ItemKNNRecommender
from recdrill.serving.runtime.local_process import ServerProcess
from tests.conftest import make_shop

ADMIN_KEY = "routes-admin-key"
ADMIN = {"X-API-Key": ADMIN_KEY}


def chain_dataset() -> Dataset:
    """As the ``chain_shop`` fixture: 20 items in two categories (c0 even, c1 odd), users u0..u59
    walking a chain i -> i+1."""
    rng = np.random.default_rng(7)
    sequences = []
    for _ in range(60):
        start = int(rng.integers(0, 14))
        sequences.append(list(range(start, start + int(rng.integers(4, 7)))))
    return make_shop(sequences, n_items=20, categories=[i % 2 for i in range(20)])


def save_model(folder: Path, dataset: Dataset) -> Path:
    ItemKNNRecommender(neighbours=10).fit(dataset).save(folder)
    ShopSnapshot.from_dataset(dataset).save(folder)
    return folder


def serve_with_env(root: Path, env: dict[str, str], **options: Any) -> Iterator[ServerProcess]:
    """A started server on a small chain-shop model under ``root`` whose workers see ``env``, without
    the live monitors; stopped when the generator is closed (the body of a module fixture)."""
    model = save_model(root / "itemknn", chain_dataset())
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        server = ServerProcess(model, root / "state", extra_args=["--no-monitor"], **options)
        server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="package")
def routes_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_model(tmp_path_factory.mktemp("routes-model") / "itemknn", chain_dataset())


@pytest.fixture(scope="package")
def routes_server(
    routes_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    # A deadline no busy machine misses: these tests are about each route's contract, not fallbacks.
    state = tmp_path_factory.mktemp("routes-state")
    server = ServerProcess(
        routes_model_dir, state, admin_key=ADMIN_KEY, deadline_ms=10_000, extra_args=["--no-monitor"]
    )
    with server:
        yield server


def clear_faults(client: httpx.Client) -> None:
    listed = client.get("/admin/faults", headers=ADMIN)
    listed.raise_for_status()
    for fault in listed.json():
        client.delete(f"/admin/faults/{fault['id']}", headers=ADMIN).raise_for_status()


@pytest.fixture
def api(routes_server: ServerProcess) -> Iterator[httpx.Client]:
    """A client of the shared server, with no fault active before or after the test."""
    with httpx.Client(base_url=routes_server.url, timeout=30.0) as client:
        clear_faults(client)
        yield client
        clear_faults(client)
