"""Encryption at rest: no plaintext on disk, the right key loads the same model, a wrong one fails."""

from __future__ import annotations

import base64
import stat
import tempfile
from pathlib import Path

import numpy as np
import pytest

from recdrill.data.dataset import Dataset
from recdrill.errors import ConfigError, DecryptionError
from recdrill.models.factory import load_model
from recdrill.registry import Registry
from recdrill.registry.encryption import CiphertextError, associated_data, decrypt, encrypt
from recdrill.registry.keys import DATA_KEY_ENV, encode_data_key, new_data_key

CHUNK = 32


def stored_bytes(folder: Path) -> bytes:
    return b"".join(path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file())


def test_stored_artifact_holds_no_plaintext(registry: Registry, saved_model: Path) -> None:
    registry.push(saved_model)
    on_disk = stored_bytes(registry.artifact_path("v1"))
    state = (saved_model / "state.npz").read_bytes()
    chunks = [state[i : i + CHUNK] for i in range(0, len(state) - CHUNK, max(1, len(state) // 50))]
    assert len(chunks) >= 40 and all(chunk in state for chunk in chunks)
    leaked = [chunk for chunk in chunks if chunk in on_disk]
    assert leaked == []
    assert b'"kind": "itemknn"' in (saved_model / "model.json").read_bytes()
    assert b"itemknn" not in stored_bytes(registry.artifact_path("v1") / "files")


def test_right_key_loads_a_model_with_identical_scores(
    registry: Registry, saved_model: Path, shop: Dataset
) -> None:
    registry.push(saved_model)
    original = load_model(saved_model)
    loaded = registry.load_verified("v1", shop)
    histories = [[0, 1, 2], [5], [], [199, 3]]
    assert type(loaded) is type(original)
    assert np.array_equal(loaded.score(histories), original.score(histories))


def test_wrong_data_key_fails_clearly(
    registry: Registry, saved_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry.push(saved_model)
    wrong = encode_data_key(new_data_key()).decode()
    monkeypatch.setenv(DATA_KEY_ENV, wrong)
    registry.verify("v1")  # the signature and digests still hold: only decryption needs the data key
    with pytest.raises(
        DecryptionError, match=r"\(wrong data key\).*encrypted with data key [0-9a-f]{16}"
    ) as err:
        registry.load_verified("v1")
    assert wrong.strip() not in str(err.value)


def test_a_ciphertext_only_decrypts_at_its_own_place() -> None:
    key = base64.b64decode(encode_data_key(new_data_key()))
    blob = encrypt(key, b"weights", associated_data("a" * 64, "state.npz"))
    assert decrypt(key, blob, associated_data("a" * 64, "state.npz")) == b"weights"
    for place in (associated_data("a" * 64, "model.json"), associated_data("b" * 64, "state.npz")):
        with pytest.raises(CiphertextError, match="authentication failed"):
            decrypt(key, blob, place)
    with pytest.raises(CiphertextError, match="authentication failed"):
        decrypt(new_data_key(), blob, associated_data("a" * 64, "state.npz"))
    assert encrypt(key, b"weights", b"x") != encrypt(key, b"weights", b"x")  # a fresh nonce each time


def test_materialise_writes_the_plaintext_folder_for_a_server(
    registry: Registry, saved_model: Path, tmp_path: Path
) -> None:
    registry.push(saved_model)
    dest = registry.materialise("v1", tmp_path / "served" / "v1")
    assert {p.name: p.read_bytes() for p in dest.iterdir()} == {
        p.name: p.read_bytes() for p in saved_model.iterdir()
    }
    assert stat.S_IMODE(dest.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in dest.iterdir())
    with pytest.raises(ConfigError, match="new or empty folder"):
        registry.materialise("v1", dest)


def test_load_verified_leaves_no_plaintext_behind(
    registry: Registry, saved_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry.push(saved_model)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    registry.load_verified("v1")
    assert list(scratch.iterdir()) == []
