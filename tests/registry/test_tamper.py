"""Tampering with a stored artifact: each kind is refused before loading, with its own reason."""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from recdrill.data.dataset import Dataset
from recdrill.errors import (
    ArtifactRefusedError,
    BadSignatureError,
    DigestMismatchError,
    ForeignSignatureError,
    ManifestEditedError,
    MissingFileError,
    TruncatedFileError,
    UnsignedArtifactError,
)
from recdrill.models.itemknn import ItemKNNRecommender
from recdrill.registry import Registry
from recdrill.registry.keys import new_signing_key_pem
from recdrill.registry.manifest import MANIFEST_NAME, SIGNATURE_NAME, sha256_hex
from recdrill.registry.signing import sign_folder

Tamper = Callable[[Path], None]


def flip_bit(folder: Path) -> None:
    path = folder / "files" / "state.npz"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def truncate(folder: Path) -> None:
    path = folder / "files" / "state.npz"
    path.write_bytes(path.read_bytes()[:-100])


def remove_file(folder: Path) -> None:
    (folder / "files" / "model.json").unlink()


def remove_signature(folder: Path) -> None:
    (folder / SIGNATURE_NAME).unlink()


def sign_with_another_key(folder: Path) -> None:
    sign_folder(folder, new_signing_key_pem())


def corrupt_signature(folder: Path) -> None:
    bundle = json.loads((folder / SIGNATURE_NAME).read_text())
    entry = bundle["dsseEnvelope"]["signatures"][0]
    raw = bytearray(base64.b64decode(entry["sig"]))
    raw[12] ^= 0x01
    entry["sig"] = base64.b64encode(bytes(raw)).decode()
    (folder / SIGNATURE_NAME).write_text(json.dumps(bundle))


def edit_metrics(folder: Path) -> None:
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    manifest["metrics"] = {"NDCG@10": 0.99}
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest))


def swap_file_and_fix_manifest(folder: Path) -> None:
    """A careful attacker: replaces a file and updates its digest and size in the manifest."""
    path = folder / "files" / "state.npz"
    forged = path.read_bytes()[::-1]
    path.write_bytes(forged)
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    for entry in manifest["files"]:
        if entry["path"] == "state.npz":
            entry["sha256"], entry["size"] = sha256_hex(forged), len(forged)
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest))


def add_file(folder: Path) -> None:
    (folder / "files" / "extra.npz").write_bytes(b"not signed")


CASES: list[tuple[Tamper, type[ArtifactRefusedError], str]] = [
    (flip_bit, DigestMismatchError, "digest mismatch): files/state.npz"),
    (truncate, TruncatedFileError, "truncated file): files/state.npz has"),
    (remove_file, MissingFileError, "missing file): files/model.json is missing"),
    (remove_signature, UnsignedArtifactError, "(unsigned)"),
    (sign_with_another_key, ForeignSignatureError, "(signed by another key)"),
    (corrupt_signature, BadSignatureError, "(bad signature)"),
    (edit_metrics, ManifestEditedError, "(manifest edited)"),
    (swap_file_and_fix_manifest, ManifestEditedError, "(manifest edited)"),
    (add_file, DigestMismatchError, "files/extra.npz is not listed"),
]


@pytest.mark.parametrize(("tamper", "error", "reason"), CASES, ids=[case[0].__name__ for case in CASES])
def test_tampered_artifact_is_refused_with_its_reason(
    registry: Registry,
    saved_model: Path,
    tmp_path: Path,
    tamper: Tamper,
    error: type[ArtifactRefusedError],
    reason: str,
) -> None:
    registry.push(saved_model)
    registry.verify("v1")  # holds before the tampering
    tamper(registry.artifact_path("v1"))
    with pytest.raises(error) as refused:
        registry.verify("v1")
    assert type(refused.value) is error  # the precise reason, not a sibling
    assert reason in str(refused.value) and str(refused.value).startswith("v1: refused (")
    assert "\n" not in str(refused.value)  # the CLI prints it as one line
    with pytest.raises(error):
        registry.load_verified("v1")
    dest = tmp_path / "plain"
    with pytest.raises(error):
        registry.materialise("v1", dest)
    assert not dest.exists()  # nothing decrypted from a refused artifact


def test_a_missing_artifact_folder_is_refused(registry: Registry, saved_model: Path) -> None:
    registry.push(saved_model)
    shutil.rmtree(registry.artifact_path("v1"))
    with pytest.raises(MissingFileError, match=r"manifest\.json is missing"):
        registry.verify("v1")


def test_another_versions_artifact_in_its_place_is_refused(
    registry: Registry, saved_model: Path, tmp_path: Path, shop: Dataset
) -> None:
    other = tmp_path / "other"
    ItemKNNRecommender(neighbours=5).fit(shop).save(other)
    registry.push(saved_model)
    registry.push(other)
    first, second = registry.artifact_path("v1"), registry.artifact_path("v2")
    for name in ("files", MANIFEST_NAME, SIGNATURE_NAME):
        (first / name).rename(tmp_path / f"old-{name}")
        (second / name).rename(first / name)  # v2's genuinely signed artifact under v1's address
    with pytest.raises(ManifestEditedError, match=r"belongs to v2"):
        registry.verify("v1")
