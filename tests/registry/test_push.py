"""Pushing: content-addressed folders, the manifest's fields, ids in push order, refusals at the door."""

from __future__ import annotations

import json
import shutil
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from datetime import datetime
from pathlib import Path

import pytest

from recdrill.data.dataset import Dataset
from recdrill.digests import write_digests
from recdrill.errors import ConfigError, ModelFileError, VersionNotFoundError
from recdrill.models.itemknn import ItemKNNRecommender
from recdrill.registry import Registry, Stage
from recdrill.registry.manifest import MANIFEST_NAME, SIGNATURE_NAME, content_address, sha256_hex


def test_push_stores_a_signed_content_addressed_artifact(registry: Registry, saved_model: Path) -> None:
    record = registry.push(saved_model, metrics={"NDCG@10": 0.25})
    plain = {p.name: sha256_hex(p.read_bytes()) for p in saved_model.iterdir()}
    assert record.version == "v1"
    assert record.address == content_address(plain)
    folder = registry.artifacts / record.address
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == [
        "files/digests.json",  # the folder's own digests travel with it, and are checked on every load
        "files/model.json",
        "files/state.npz",
        MANIFEST_NAME,
        SIGNATURE_NAME,
    ]
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    saved = json.loads((saved_model / "model.json").read_text())
    assert manifest["version"] == "v1" and manifest["parent"] is None
    assert manifest["model_kind"] == "itemknn"
    assert manifest["hyperparameters"] == saved["params"]
    assert manifest["dataset_fingerprint"] == saved["trained_on"]
    assert manifest["metrics"] == {"NDCG@10": 0.25}
    assert datetime.fromisoformat(manifest["created_at"]).tzinfo is not None
    for entry in manifest["files"]:
        stored = (folder / "files" / entry["path"]).read_bytes()
        assert entry["sha256"] == sha256_hex(stored) and entry["size"] == len(stored)
        assert entry["plain_sha256"] == plain[entry["path"]]
    assert registry.show("v1").stage is Stage.CANDIDATE


def test_versions_follow_push_order_and_same_content_is_not_stored_twice(
    registry: Registry, saved_model: Path, shop: Dataset, tmp_path: Path
) -> None:
    other = tmp_path / "knn10"
    ItemKNNRecommender(neighbours=10).fit(shop).save(other)
    first = registry.push(saved_model)
    second = registry.push(other, parent="v1", dataset_fingerprint="shop-2026-11")
    again = registry.push(saved_model, metrics={"HR@10": 1.0})
    assert (first.version, second.version, again.version) == ("v1", "v2", "v1")
    assert again == first  # an identical model is the version already stored, unchanged
    assert second.parent == "v1" and second.dataset_fingerprint == "shop-2026-11"
    assert second.hyperparameters["neighbours"] == 10
    assert [row.version for row in registry.list()] == ["v1", "v2"]
    assert len([p for p in registry.artifacts.iterdir() if not p.name.startswith(".")]) == 2


def test_push_refuses_an_unknown_parent_and_stores_nothing(registry: Registry, saved_model: Path) -> None:
    with pytest.raises(VersionNotFoundError, match="'v9'"):
        registry.push(saved_model, parent="v9")
    assert registry.list() == [] and list(registry.artifacts.iterdir()) == []


def test_push_refuses_a_folder_that_is_not_a_model(registry: Registry, tmp_path: Path) -> None:
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "weights.bin").write_bytes(b"\0" * 10)
    with pytest.raises(ModelFileError, match=r"missing model\.json"):
        registry.push(junk)
    with pytest.raises(ModelFileError, match="no such model folder"):
        registry.push(tmp_path / "absent")


def test_push_refuses_non_numeric_metrics(registry: Registry, saved_model: Path) -> None:
    with pytest.raises(ConfigError, match="'NDCG@10' must be a number"):
        registry.push(saved_model, metrics={"NDCG@10": "high"})  # type: ignore[dict-item]


def test_metadata_lives_in_sqlite_in_wal_mode(registry: Registry, saved_model: Path) -> None:
    registry.push(saved_model)
    with closing(sqlite3.connect(registry.home / "registry.db")) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert db.execute("SELECT version, stage FROM versions").fetchall() == [("v1", "candidate")]


def test_unknown_version_is_a_clear_error(registry: Registry) -> None:
    with pytest.raises(VersionNotFoundError, match="no registered version 'v1'"):
        registry.show("v1")
    with pytest.raises(VersionNotFoundError):
        registry.verify("v1")


def test_concurrent_pushes_get_distinct_versions(home: Path, saved_model: Path, tmp_path: Path) -> None:
    folders = []
    for neighbours in range(1, 7):  # six different models: same arrays, another parameter each
        folder = tmp_path / f"m{neighbours}"
        shutil.copytree(saved_model, folder)
        meta = json.loads((folder / "model.json").read_text())
        meta["params"]["neighbours"] = neighbours
        (folder / "model.json").write_text(json.dumps(meta))
        write_digests(folder)  # saved as such: its digests list the new parameter
        folders.append(folder)
    with ThreadPoolExecutor(max_workers=6) as pool:  # one Registry (own SQLite connections) per push
        records = list(pool.map(lambda folder: Registry(home).push(folder), folders))
    assert sorted(int(r.version[1:]) for r in records) == [1, 2, 3, 4, 5, 6]
    registry = Registry(home)
    for record in records:
        assert registry.verify(record.version).hyperparameters == record.hyperparameters
