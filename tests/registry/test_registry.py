"""The Registry facade: push, show, list, promote, archive, rollback, verify and materialise, end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recdrill.data.dataset import Dataset
from recdrill.errors import (
    ConfigError,
    DigestMismatchError,
    KeyMaterialError,
    StageError,
    VersionNotFoundError,
)
from recdrill.models.itemknn import ItemKNNRecommender
from recdrill.registry import Registry, Stage
from recdrill.registry.keys import DATA_KEY_ENV, SIGNING_KEY_ENV, encode_data_key, new_signing_key_pem


@pytest.fixture
def two(registry: Registry, shop: Dataset, tmp_path: Path) -> Registry:
    """v1 and v2: two different models, both candidates."""
    for neighbours in (5, 15):
        folder = tmp_path / f"knn{neighbours}"
        ItemKNNRecommender(neighbours=neighbours).fit(shop).save(folder)
        registry.push(folder, metrics={"NDCG@10": neighbours / 100})
    return registry


def test_a_new_registry_makes_its_folders_and_catalogue(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "fresh")
    assert registry.artifacts == tmp_path / "fresh" / "artifacts" and registry.artifacts.is_dir()
    assert (tmp_path / "fresh" / "registry.db").is_file()
    assert registry.list() == [] and registry.current() == []


def test_the_home_defaults_to_recdrill_home_of_the_environment(tmp_path: Path) -> None:
    registry = Registry(environ={"RECDRILL_HOME": str(tmp_path / "from-env")})
    assert registry.home == tmp_path / "from-env"


def test_push_registers_a_candidate_that_show_and_list_return(registry: Registry, saved_model: Path) -> None:
    record = registry.push(saved_model, metrics={"NDCG@10": 1, "HR@10": 0.5}, dataset_fingerprint="fp-1")
    row = registry.show("v1")
    assert (row.version, row.stage, row.record) == ("v1", Stage.CANDIDATE, record)
    assert record.metrics == {"NDCG@10": 1.0, "HR@10": 0.5} and isinstance(record.metrics["NDCG@10"], float)
    assert record.dataset_fingerprint == "fp-1" and record.model_kind == "itemknn"
    assert [r.version for r in registry.list()] == ["v1"]
    assert registry.current(Stage.CANDIDATE) == ["v1"] and registry.current() == []
    assert registry.artifact_path("v1") == registry.artifacts / record.address
    assert registry.history("v1") == [(None, "candidate", "push")]


def test_push_with_a_parent_records_it(two: Registry, saved_model: Path) -> None:
    record = two.push(saved_model, parent="v2")
    assert (record.version, record.parent) == ("v3", "v2")


@pytest.mark.parametrize("bad", [True, "0.3", None])
def test_push_refuses_a_metric_that_is_not_a_number(
    registry: Registry, saved_model: Path, bad: object
) -> None:
    with pytest.raises(ConfigError, match=f"metric 'NDCG@10' must be a number, got {bad!r}"):
        registry.push(saved_model, metrics={"NDCG@10": bad})  # type: ignore[dict-item]
    assert registry.list() == []


def test_promote_moves_stages_with_reasons_and_keeps_one_production(two: Registry) -> None:
    assert two.promote("v1", "canary", reason="canary started").stage is Stage.CANARY
    assert two.promote("v1", Stage.PRODUCTION).stage is Stage.PRODUCTION
    assert two.promote("v2", Stage.PRODUCTION, reason="judge passed").stage is Stage.PRODUCTION
    assert two.current() == ["v2"] and two.current(Stage.ARCHIVED) == ["v1"]
    assert two.history("v1") == [
        (None, "candidate", "push"),
        ("candidate", "canary", "canary started"),
        ("canary", "production", "promote"),
        ("production", "archived", "superseded"),
    ]
    assert two.history("v2")[-1] == ("candidate", "production", "judge passed")


def test_promote_refuses_unknown_stages_forbidden_moves_and_versions(two: Registry) -> None:
    with pytest.raises(StageError, match="unknown stage 'live'; choose one of candidate, canary, production"):
        two.promote("v1", "live")
    two.promote("v1", Stage.PRODUCTION)
    with pytest.raises(StageError, match="v1 is production: it can move to archived, not canary"):
        two.promote("v1", Stage.CANARY)
    with pytest.raises(VersionNotFoundError, match="no registered version 'v9'"):
        two.promote("v9", Stage.CANARY)
    with pytest.raises(VersionNotFoundError):
        two.history("v9")
    assert two.current() == ["v1"]


def test_archive_is_idempotent_and_rollback_restores_the_previous_production(two: Registry) -> None:
    assert two.archive("v2", "judge rolled back") is True
    assert two.archive("v2", "again") is False
    assert two.history("v2")[-1] == ("candidate", "archived", "judge rolled back")
    two.promote("v1", Stage.PRODUCTION)
    with pytest.raises(StageError, match="v1 is in production: roll back instead of archiving it"):
        two.archive("v1", "oops")
    with pytest.raises(StageError, match="no previous production version to roll back to"):
        two.rollback()
    two.promote("v2", Stage.PRODUCTION)
    restored = two.rollback()
    assert (restored.version, restored.stage) == ("v1", Stage.PRODUCTION)
    assert two.show("v2").stage is Stage.ARCHIVED and two.current() == ["v1"]


def test_materialise_writes_the_pushed_files_into_a_new_or_empty_folder(
    registry: Registry, saved_model: Path, tmp_path: Path
) -> None:
    registry.push(saved_model)
    (tmp_path / "empty").mkdir()
    for dest in (tmp_path / "new" / "model", tmp_path / "empty"):
        assert registry.materialise("v1", dest) == dest
        assert {p.name: p.read_bytes() for p in dest.iterdir()} == {
            p.name: p.read_bytes() for p in saved_model.iterdir()
        }
    with pytest.raises(ConfigError, match="destination must be a new or empty folder"):
        registry.materialise("v1", tmp_path / "empty")
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(ConfigError, match="destination must be a new or empty folder"):
        registry.materialise("v1", tmp_path / "a-file")


def test_load_verified_gives_the_pushed_model(registry: Registry, saved_model: Path, shop: Dataset) -> None:
    registry.push(saved_model)
    loaded = registry.load_verified("v1")
    original = ItemKNNRecommender.load(saved_model)
    histories = [[1, 2, 3], [10, 11]]
    assert np.array_equal(loaded.recommend(histories, k=5).items, original.recommend(histories, k=5).items)


def test_verify_refuses_a_tampered_artifact_before_anything_is_decrypted(
    registry: Registry, saved_model: Path, tmp_path: Path
) -> None:
    registry.push(saved_model)
    stored = registry.artifact_path("v1") / "files" / "model.json"
    data = bytearray(stored.read_bytes())
    data[-1] ^= 0x01
    stored.write_bytes(bytes(data))
    with pytest.raises(DigestMismatchError, match=r"v1: refused \(digest mismatch\)"):
        registry.verify("v1")
    with pytest.raises(DigestMismatchError):
        registry.materialise("v1", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_keys_may_come_from_the_environment_and_their_absence_is_named(
    saved_model: Path, tmp_path: Path
) -> None:
    environ = {
        SIGNING_KEY_ENV: new_signing_key_pem().decode(),
        DATA_KEY_ENV: encode_data_key(bytes(range(32))).decode(),
    }
    registry = Registry(tmp_path / "no-key-files", environ=environ)
    assert registry.push(saved_model).version == "v1"
    assert registry.verify("v1").version == "v1"
    with pytest.raises(KeyMaterialError, match="no such key file; run 'recdrill keys init'"):
        Registry(tmp_path / "bare", environ={}).push(saved_model)
