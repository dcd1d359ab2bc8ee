"""Signing a folder with model-signing and verifying it: each kind of tampering gets its own error."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from recdrill.errors import (
    ArtifactRefusedError,
    BadSignatureError,
    ForeignSignatureError,
    UnsignedArtifactError,
)
from recdrill.registry.keys import new_signing_key_pem, public_key_pem
from recdrill.registry.manifest import SIGNATURE_NAME, sha256_hex
from recdrill.registry.signing import SignedContentMismatch, sign_folder, signed_digests, verify_folder


@pytest.fixture(scope="module")
def private_pem() -> bytes:
    return new_signing_key_pem()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "artifact"
    (root / "files").mkdir(parents=True)
    (root / "files" / "state.npz").write_bytes(b"\x00encrypted weights" * 50)
    (root / "manifest.json").write_text('{"version": "v1"}\n')
    return root


def edit_signature(folder: Path, change: dict[str, object]) -> None:
    path = folder / SIGNATURE_NAME
    bundle = json.loads(path.read_text())
    bundle["dsseEnvelope"].update(change)
    path.write_text(json.dumps(bundle))


def test_a_signed_folder_verifies_with_the_public_key(folder: Path, private_pem: bytes) -> None:
    signature = sign_folder(folder, private_pem)
    assert signature == folder / SIGNATURE_NAME and signature.is_file()
    verify_folder("v1", folder, public_key_pem(private_pem))  # raises on any refusal


def test_the_signature_lists_every_file_but_itself(folder: Path, private_pem: bytes) -> None:
    sign_folder(folder, private_pem)
    assert signed_digests(folder) == {
        "files/state.npz": sha256_hex((folder / "files" / "state.npz").read_bytes()),
        "manifest.json": sha256_hex((folder / "manifest.json").read_bytes()),
    }


def test_a_folder_without_signature_is_unsigned(folder: Path, private_pem: bytes) -> None:
    with pytest.raises(
        UnsignedArtifactError, match=r"^v1: refused \(unsigned\): signature.sigstore.json is missing$"
    ):
        verify_folder("v1", folder, public_key_pem(private_pem))
    assert signed_digests(folder) == {}


@pytest.mark.parametrize("change", ["edit", "add", "remove"])
def test_files_other_than_the_signed_ones_are_a_content_mismatch(
    folder: Path, private_pem: bytes, change: str
) -> None:
    sign_folder(folder, private_pem)
    if change == "edit":
        data = bytearray((folder / "files" / "state.npz").read_bytes())
        data[10] ^= 0x01
        (folder / "files" / "state.npz").write_bytes(bytes(data))
    elif change == "add":
        (folder / "files" / "extra.bin").write_bytes(b"smuggled")
    else:
        (folder / "manifest.json").unlink()
    with pytest.raises(SignedContentMismatch, match="Signature mismatch"):
        verify_folder("v1", folder, public_key_pem(private_pem))


def test_a_signature_by_another_key_is_foreign(folder: Path, private_pem: bytes) -> None:
    sign_folder(folder, new_signing_key_pem())
    with pytest.raises(ForeignSignatureError, match=r"refused \(signed by another key\)") as caught:
        verify_folder("v2", folder, public_key_pem(private_pem))
    assert isinstance(caught.value, ArtifactRefusedError) and caught.value.version == "v2"


def test_an_altered_signature_does_not_verify(folder: Path, private_pem: bytes) -> None:
    sign_folder(folder, private_pem)
    bundle = json.loads((folder / SIGNATURE_NAME).read_text())
    signature = bytearray(base64.b64decode(bundle["dsseEnvelope"]["signatures"][0]["sig"]))
    signature[-1] ^= 0x01
    bundle["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(bytes(signature)).decode()
    (folder / SIGNATURE_NAME).write_text(json.dumps(bundle))
    with pytest.raises(BadSignatureError, match=r"refused \(bad signature\)"):
        verify_folder("v1", folder, public_key_pem(private_pem))


def test_an_unreadable_signature_file_is_a_bad_signature(folder: Path, private_pem: bytes) -> None:
    (folder / SIGNATURE_NAME).write_text("{not json")
    with pytest.raises(BadSignatureError, match="unreadable signature"):
        verify_folder("v1", folder, public_key_pem(private_pem))
    assert signed_digests(folder) == {}


def test_signing_a_fresh_copy_of_a_signed_folder_verifies_under_the_new_key(
    folder: Path, private_pem: bytes, tmp_path: Path
) -> None:
    sign_folder(folder, new_signing_key_pem())
    copy = tmp_path / "copy"
    (copy / "files").mkdir(parents=True)
    (copy / "files" / "state.npz").write_bytes((folder / "files" / "state.npz").read_bytes())
    (copy / "manifest.json").write_text('{"version": "v1", "edited": true}\n')
    sign_folder(copy, private_pem)
    verify_folder("v1", copy, public_key_pem(private_pem))
    assert set(signed_digests(copy)) == {"files/state.npz", "manifest.json"}


def test_signing_again_in_place_replaces_the_signature(folder: Path, private_pem: bytes) -> None:
    sign_folder(folder, new_signing_key_pem())
    (folder / "manifest.json").write_text('{"version": "v1", "edited": true}\n')
    sign_folder(folder, private_pem)
    verify_folder("v1", folder, public_key_pem(private_pem))
    assert signed_digests(folder)["manifest.json"] == sha256_hex((folder / "manifest.json").read_bytes())
