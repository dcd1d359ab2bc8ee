"""Serving a registry version: verified, decrypted once into the state folder, re-checked when found."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from recdrill._home import HOME_ENV
from recdrill.errors import (
    ConfigError,
    DigestMismatchError,
    KeyMaterialError,
    ManifestEditedError,
    VersionNotFoundError,
)
from recdrill.models.itemknn import ItemKNNRecommender
from recdrill.registry import Registry, init_keys
from recdrill.serving.registry_source import MODELS_DIR, materialise_version
from tests.conftest import make_shop


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("model") / "itemknn"
    shop = make_shop([[0, 1, 2, 3], [1, 2, 3, 4], [2, 3, 4, 5], [0, 2, 4, 5]], n_items=6)
    ItemKNNRecommender(neighbours=3).fit(shop).save(folder)
    return folder


@pytest.fixture(scope="module")
def pushed_home(tmp_path_factory: pytest.TempPathFactory, saved_model: Path) -> Path:
    home = tmp_path_factory.mktemp("registry") / "home"
    init_keys(home)
    Registry(home).push(saved_model)
    return home


@pytest.fixture
def environ(tmp_path: Path, pushed_home: Path) -> dict[str, str]:
    """A copy of a registry home with keys and v1 pushed, named by the environment a worker would have."""
    home = tmp_path / "home"
    shutil.copytree(pushed_home, home)  # modes kept: the key files stay 0600
    return {HOME_ENV: str(home)}


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("bad", ["", "../v1", "a/b", "v1/..", "a..b", "-v1", ".v1", "v" * 65, "v 1"])
def test_a_name_that_is_not_a_version_is_refused_before_the_registry_is_opened(
    bad: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match="is not a registry version name"):
        materialise_version(bad, tmp_path / "state", {HOME_ENV: str(tmp_path / "no-home")})
    assert not (tmp_path / "no-home").exists() and not (tmp_path / "state").exists()


def test_a_version_is_decrypted_into_a_private_models_folder(
    environ: dict[str, str], saved_model: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    target = materialise_version("v1", state, environ)
    assert target == state / MODELS_DIR / "v1"
    assert files_of(target) == files_of(saved_model)
    assert stat.S_IMODE((state / MODELS_DIR).stat().st_mode) == 0o700
    assert sorted(os.listdir(state / MODELS_DIR)) == ["v1"]  # no staging folder left behind


def test_a_folder_already_in_place_and_intact_is_reused(environ: dict[str, str], tmp_path: Path) -> None:
    target = materialise_version("v1", tmp_path / "state", environ)
    inode = (target / "model.json").stat().st_ino
    assert materialise_version("v1", tmp_path / "state", environ) == target
    assert (target / "model.json").stat().st_ino == inode  # not written again


@pytest.mark.parametrize("change", ["edit", "extra file", "missing file"])
def test_a_folder_altered_on_disk_is_replaced_by_the_verified_files(
    environ: dict[str, str], saved_model: Path, tmp_path: Path, change: str
) -> None:
    target = materialise_version("v1", tmp_path / "state", environ)
    if change == "edit":
        (target / "model.json").write_text('{"kind": "something else"}')
    elif change == "extra file":
        (target / "planted.py").write_text("print('hi')")
    else:
        (target / "state.npz").unlink()
    assert materialise_version("v1", tmp_path / "state", environ) == target
    assert files_of(target) == files_of(saved_model)
    assert sorted(os.listdir(tmp_path / "state" / MODELS_DIR)) == ["v1"]  # the retired copy is gone


def test_a_tampered_artifact_is_refused_and_nothing_is_written(
    environ: dict[str, str], tmp_path: Path
) -> None:
    registry = Registry(environ=environ)
    stored = registry.artifact_path("v1") / "files" / "state.npz"
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0x01
    stored.write_bytes(bytes(data))
    with pytest.raises(DigestMismatchError, match=r"v1: refused \(digest mismatch\)"):
        materialise_version("v1", tmp_path / "state", environ)
    assert not (tmp_path / "state").exists()


def test_a_tampered_artifact_is_refused_even_with_a_good_folder_in_place(
    environ: dict[str, str], tmp_path: Path
) -> None:
    materialise_version("v1", tmp_path / "state", environ)
    (Registry(environ=environ).artifact_path("v1") / "manifest.json").write_text("{}")
    with pytest.raises(ManifestEditedError, match=r"v1: refused \(manifest edited\)"):
        materialise_version("v1", tmp_path / "state", environ)


def test_an_unknown_version_or_a_home_without_keys_is_refused(
    environ: dict[str, str], tmp_path: Path
) -> None:
    with pytest.raises(VersionNotFoundError, match="no registered version 'v2'"):
        materialise_version("v2", tmp_path / "state", environ)
    (Path(environ[HOME_ENV]) / "keys" / "signing.pem").unlink()
    (Path(environ[HOME_ENV]) / "keys" / "signing.pub.pem").unlink()
    with pytest.raises(KeyMaterialError, match="no signing or verification key"):
        materialise_version("v1", tmp_path / "state", environ)
