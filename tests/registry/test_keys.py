"""Keys: created 0600 outside the repo, read from the environment first, rotated without downtime."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from recdrill.data.dataset import Dataset
from recdrill.errors import DigestMismatchError, ForeignSignatureError, KeyMaterialError
from recdrill.models.factory import load_model
from recdrill.models.itemknn import ItemKNNRecommender
from recdrill.models.popularity import PopularityRecommender
from recdrill.registry import Registry, init_keys
from recdrill.registry.keys import (
    DATA_KEY_ENV,
    NEW_DATA_KEY_ENV,
    SIGNING_KEY_ENV,
    KeyFiles,
    encode_data_key,
    key_id,
    load_data_keyring,
    new_data_key,
    new_signing_key_pem,
    public_key_pem,
)
from recdrill.registry.store import RETIRED_PREFIX
from tests.registry.test_encryption import stored_bytes


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_creates_private_key_files_once(tmp_path: Path) -> None:
    files = KeyFiles(tmp_path / "home")
    assert init_keys(files.home) == [files.signing, files.signing_public, files.data, files.watermark]
    assert mode(files.folder) == 0o700 and mode(files.signing) == 0o600 and mode(files.data) == 0o600
    assert mode(files.watermark) == 0o600
    assert b"PUBLIC KEY" in files.signing_public.read_bytes()
    before = (files.signing.read_bytes(), files.data.read_bytes())
    assert init_keys(files.home) == []  # existing keys are never overwritten
    assert (files.signing.read_bytes(), files.data.read_bytes()) == before


def test_a_host_with_only_the_public_key_verifies_and_loads_but_cannot_push(
    registry: Registry, home: Path, saved_model: Path
) -> None:
    registry.push(saved_model)
    KeyFiles(home).signing.unlink()  # a serving host: verification key and data key only
    assert registry.verify("v1").version == "v1"
    registry.load_verified("v1")
    with pytest.raises(KeyMaterialError, match="no such key file"):
        registry.push(saved_model)
    KeyFiles(home).signing_public.write_bytes(new_public_pem())
    with pytest.raises(ForeignSignatureError):
        registry.verify("v1")


def new_public_pem() -> bytes:
    return public_key_pem(new_signing_key_pem())


def test_a_key_file_others_can_read_is_refused(registry: Registry, home: Path, saved_model: Path) -> None:
    KeyFiles(home).data.chmod(0o644)
    with pytest.raises(KeyMaterialError, match=r"readable by others \(mode 644\); chmod 600 it"):
        registry.push(saved_model)


def test_missing_keys_say_how_to_make_them(tmp_path: Path, saved_model: Path) -> None:
    with pytest.raises(KeyMaterialError, match="no such key file; run 'recdrill keys init'"):
        Registry(tmp_path / "bare").push(saved_model)


def test_keys_from_the_environment_need_no_files(
    tmp_path: Path, saved_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SIGNING_KEY_ENV, new_signing_key_pem().decode())
    monkeypatch.setenv(DATA_KEY_ENV, encode_data_key(new_data_key()).decode())
    registry = Registry(tmp_path / "envhome")
    registry.push(saved_model)
    assert registry.load_verified("v1").n_items_ == load_model(saved_model).n_items_
    assert not (tmp_path / "envhome" / "keys").exists()
    monkeypatch.setenv(SIGNING_KEY_ENV, new_signing_key_pem().decode())  # another signer's key
    with pytest.raises(ForeignSignatureError):
        registry.verify("v1")


def test_bad_key_material_is_refused_without_echoing_it(
    registry: Registry, saved_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ed_pem = (
        ed25519.Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        .decode()
    )
    monkeypatch.setenv(SIGNING_KEY_ENV, ed_pem)
    with pytest.raises(KeyMaterialError, match="must be an elliptic-curve"):
        registry.push(saved_model)
    monkeypatch.delenv(SIGNING_KEY_ENV)
    short = "c2hvcnQta2V5"  # base64 of 9 bytes
    monkeypatch.setenv(DATA_KEY_ENV, short)
    with pytest.raises(KeyMaterialError, match="must be 32 bytes, got 9") as err:
        registry.push(saved_model)
    assert short not in str(err.value)


def test_rotation_re_encrypts_everything_and_keeps_it_loadable(
    registry: Registry, home: Path, saved_model: Path, tmp_path: Path
) -> None:
    registry.push(saved_model)
    old_id = load_data_keyring(home).current.id
    before = stored_bytes(registry.artifact_path("v1") / "files")
    scores_before = registry.load_verified("v1").score([[1, 2, 3]])

    rotation = registry.rotate_data_key()

    assert rotation.versions == ("v1",) and rotation.new_key_id != old_id
    assert load_data_keyring(home).current.id == rotation.new_key_id
    assert not KeyFiles(home).pending_data.exists()  # the new key took the old one's place
    assert mode(KeyFiles(home).data) == 0o600
    after = stored_bytes(registry.artifact_path("v1") / "files")
    assert after != before and len(after) == len(before)
    assert registry.verify("v1").data_key_id == rotation.new_key_id  # re-signed: verification holds
    assert registry.show("v1").record.data_key_id == rotation.new_key_id
    assert np.array_equal(registry.load_verified("v1").score([[1, 2, 3]]), scores_before)
    assert not list(registry.artifacts.glob(".*"))  # no staging or retired folders left


def test_interrupted_rotation_keeps_every_artifact_readable_and_resumes(
    registry: Registry, home: Path, saved_model: Path, shop: Dataset, tmp_path: Path
) -> None:
    pop = tmp_path / "pop"
    PopularityRecommender().fit(shop).save(pop)
    registry.push(saved_model)
    registry.push(pop)
    old_key = KeyFiles(home).data.read_bytes()
    stored = registry.artifact_path("v2") / "files" / "state.npz"
    genuine = stored.read_bytes()
    stored.write_bytes(genuine[:-1] + bytes([genuine[-1] ^ 1]))  # v2 tampered: rotation must stop there

    with pytest.raises(DigestMismatchError):
        registry.rotate_data_key()
    assert KeyFiles(home).data.read_bytes() == old_key  # the old key is kept until every artifact is done
    assert KeyFiles(home).pending_data.exists()
    assert registry.verify("v1").data_key_id == key_id(new_key_from(home))
    registry.load_verified("v1")  # readable with the pending key meanwhile
    knn5 = tmp_path / "knn5"
    ItemKNNRecommender(neighbours=5).fit(shop).save(knn5)
    assert registry.push(knn5).data_key_id == key_id(new_key_from(home))  # new pushes use the new key

    stored.write_bytes(genuine)
    assert registry.rotate_data_key().versions == ("v2",)  # v1 and v3 were already done
    for version in ("v1", "v2", "v3"):
        registry.load_verified(version)


def new_key_from(home: Path) -> bytes:
    keyring = load_data_keyring(home)
    assert keyring.pending is not None
    return keyring.pending.key


def test_rotation_with_an_environment_key_needs_the_new_key_from_the_environment(
    registry: Registry, saved_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DATA_KEY_ENV, encode_data_key(new_data_key()).decode())
    registry.push(saved_model)
    with pytest.raises(KeyMaterialError, match=f"set {NEW_DATA_KEY_ENV}"):
        registry.rotate_data_key()
    new_key = encode_data_key(new_data_key()).decode()
    monkeypatch.setenv(NEW_DATA_KEY_ENV, new_key)
    rotation = registry.rotate_data_key()
    assert rotation.new_key_id == key_id(base64.b64decode(new_key))
    monkeypatch.setenv(DATA_KEY_ENV, new_key)  # what the operator does next
    monkeypatch.delenv(NEW_DATA_KEY_ENV)
    assert registry.verify("v1").data_key_id == rotation.new_key_id
    registry.load_verified("v1")


def test_a_swap_cut_short_by_a_crash_is_undone_on_open(registry: Registry, saved_model: Path) -> None:
    registry.push(saved_model)
    folder = registry.artifact_path("v1")
    folder.rename(folder.with_name(RETIRED_PREFIX + folder.name))  # old moved aside, new never arrived
    reopened = Registry(registry.home)
    reopened.verify("v1")
    assert not list(reopened.artifacts.glob(".*"))
