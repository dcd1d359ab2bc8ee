"""A registry home with fresh keys, and a small trained ItemKNN model saved to a folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from recdrill._home import HOME_ENV
from recdrill.data.dataset import Dataset
from recdrill.data.shopsim import ShopSim
from recdrill.models.itemknn import ItemKNNRecommender
from recdrill.registry import Registry, init_keys
from recdrill.registry.keys import DATA_KEY_ENV, NEW_DATA_KEY_ENV, SIGNING_KEY_ENV


@pytest.fixture(scope="session")
def shop() -> Dataset:
    return ShopSim(n_items=200, n_users=150, n_events=4000, seed=3).generate()


@pytest.fixture(scope="session")
def saved_model(shop: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("models") / "itemknn"
    ItemKNNRecommender().fit(shop).save(folder)
    return folder


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``RECDRILL_HOME`` pointing at a new folder with keys made by ``init_keys``; no key variables."""
    root = tmp_path / "home"
    monkeypatch.setenv(HOME_ENV, str(root))
    for name in (SIGNING_KEY_ENV, DATA_KEY_ENV, NEW_DATA_KEY_ENV):
        monkeypatch.delenv(name, raising=False)
    init_keys(root)
    return root


@pytest.fixture
def registry(home: Path) -> Registry:
    return Registry(home)
