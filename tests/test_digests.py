"""The digest manifest of a model folder: written over every file, any change refused naming the file.

The folders here hold small real files; ``tests/models/test_tamper.py`` tampers with real saved models.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from recdrill.digests import (
    CHUNK_BYTES,
    DIGESTS_FILE,
    add_digest,
    file_sha256,
    has_digests,
    read_digests,
    validate_digests,
    write_digests,
)
from recdrill.errors import ModelFileError


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A sealed folder of two files and a sub-folder (as a model's ``fallback/``)."""
    root = tmp_path / "model"
    root.mkdir()
    (root / "model.json").write_text('{"kind": "pop"}')
    (root / "state.npz").write_bytes(bytes(range(256)) * 10)
    (root / "fallback").mkdir()
    (root / "fallback" / "model.json").write_text("{}")
    write_digests(root)
    return root


def test_the_manifest_lists_every_file_of_the_folder_but_itself_and_its_sub_folders(folder: Path) -> None:
    body = json.loads((folder / DIGESTS_FILE).read_text())
    assert body == {
        "algorithm": "sha256",
        "files": {
            "model.json": hashlib.sha256(b'{"kind": "pop"}').hexdigest(),
            "state.npz": hashlib.sha256(bytes(range(256)) * 10).hexdigest(),
        },
    }
    assert read_digests(folder) == body["files"] and has_digests(folder)
    validate_digests(folder)


def test_a_file_is_hashed_in_chunks_to_the_same_digest(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    data = b"\x07" * (2 * CHUNK_BYTES + 5)
    big.write_bytes(data)
    assert file_sha256(big) == hashlib.sha256(data).hexdigest()


def test_one_changed_byte_is_refused_naming_the_file(folder: Path) -> None:
    state = folder / "state.npz"
    data = bytearray(state.read_bytes())
    data[-1] ^= 0x01
    state.write_bytes(bytes(data))
    with pytest.raises(ModelFileError) as refused:
        validate_digests(folder)
    assert refused.value.path == state
    assert str(refused.value) == (
        f"{state}: SHA-256 differs from the one in digests.json: the file changed after it was saved"
    )


def test_a_missing_file_is_refused_naming_it(folder: Path) -> None:
    (folder / "model.json").unlink()
    with pytest.raises(ModelFileError, match=r"model\.json: missing: digests.json lists it"):
        validate_digests(folder)


def test_an_added_file_is_refused_naming_it_but_a_sub_folder_is_its_own_business(folder: Path) -> None:
    (folder / "fallback" / "state.npz").write_bytes(b"checked when the fallback loads")
    validate_digests(folder)
    (folder / "weights.pt").write_bytes(b"planted")
    with pytest.raises(ModelFileError, match=r"weights\.pt: not listed in digests.json"):
        validate_digests(folder)


def test_a_symbolic_link_is_refused(folder: Path, tmp_path: Path) -> None:
    (tmp_path / "outside.npz").write_bytes(b"elsewhere")
    (folder / "extra.npz").symlink_to(tmp_path / "outside.npz")
    with pytest.raises(ModelFileError, match=r"extra\.npz: symbolic links are not allowed"):
        validate_digests(folder)
    with pytest.raises(ModelFileError, match="symbolic links"):
        write_digests(folder)


def test_a_folder_without_a_manifest_is_refused_saying_how_to_seal_it(folder: Path) -> None:
    (folder / DIGESTS_FILE).unlink()
    assert not has_digests(folder)
    with pytest.raises(ModelFileError) as refused:
        validate_digests(folder)
    assert refused.value.path == folder
    assert "no digests.json, so changes to its files cannot be detected" in str(refused.value)
    assert f"'recdrill seal {folder}'" in str(refused.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "unreadable digest manifest"),
        ('{"algorithm": "md5", "files": {}}', 'it must say "algorithm": "sha256"'),
        ('{"algorithm": "sha256", "files": ["model.json"]}', "'files' must map file names"),
        ('{"algorithm": "sha256", "files": {"model.json": "abc"}}', "'files' must map file names"),
        ('{"algorithm": "sha256", "files": {"../model.json": "' + "0" * 64 + '"}}', "'files' must map"),
    ],
    ids=["not-json", "other-algorithm", "not-a-map", "short-digest", "outside-the-folder"],
)
def test_a_malformed_manifest_is_refused_naming_it(folder: Path, text: str, message: str) -> None:
    (folder / DIGESTS_FILE).write_text(text)
    with pytest.raises(ModelFileError, match=message) as refused:
        validate_digests(folder)
    assert refused.value.path == folder / DIGESTS_FILE


def test_add_digest_records_a_file_saved_later_and_leaves_an_unsealed_folder_alone(
    folder: Path, tmp_path: Path
) -> None:
    (folder / "snapshot.npz").write_bytes(b"ids and histories")
    add_digest(folder, "snapshot.npz")
    validate_digests(folder)
    assert read_digests(folder)["snapshot.npz"] == hashlib.sha256(b"ids and histories").hexdigest()
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "snapshot.npz").write_bytes(b"alone")
    add_digest(plain, "snapshot.npz")
    assert not has_digests(plain)
