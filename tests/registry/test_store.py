"""The artifact folder on disk: reading a model, encrypting it, checking and decrypting it, swapping it in."""

from __future__ import annotations

import json
import os
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from recdrill.errors import (
    ArtifactRefusedError,
    DecryptionError,
    DigestMismatchError,
    MissingFileError,
    ModelFileError,
    TruncatedFileError,
)
from recdrill.registry.keys import DataKey, DataKeyring
from recdrill.registry.manifest import MANIFEST_NAME, ManifestRecord, content_address, sha256_hex
from recdrill.registry.store import (
    RETIRED_PREFIX,
    address_of,
    build_artifact,
    decrypt_stored,
    read_model_files,
    read_stored,
    recover,
    swap_in,
    write_plain,
)

PLAIN = {
    "model.json": b'{"kind": "itemknn"}',
    "state.npz": b"\x93NUMPY" + bytes(range(256)) * 4,
    # Long enough that a random ciphertext cannot contain it by chance (b"x" did, 1 run in 6).
    "sub/extra.txt": b"extra file, stored encrypted",
}
KEY = DataKey(b"\x01" * 32, "test key")
OTHER_KEY = DataKey(b"\x02" * 32, "other key")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def artifact(tmp_path: Path) -> tuple[Path, ManifestRecord]:
    folder = tmp_path / "artifacts" / "abc"
    record = build_artifact(
        folder, PLAIN, KEY, version="v1", parent=None, dataset_fingerprint=None, model_kind="itemknn"
    )
    return folder, record


def test_read_model_files_reads_every_file_by_posix_path(tmp_path: Path) -> None:
    for path, data in PLAIN.items():
        (tmp_path / "m" / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "m" / path).write_bytes(data)
    assert read_model_files(tmp_path / "m") == PLAIN
    assert address_of(PLAIN) == content_address({p: sha256_hex(d) for p, d in PLAIN.items()})


def test_read_model_files_refuses_missing_empty_and_linked_folders(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="no such model folder"):
        read_model_files(tmp_path / "absent")
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(ModelFileError, match="the model folder is empty"):
        read_model_files(tmp_path / "empty")
    (tmp_path / "linked").mkdir()
    (tmp_path / "outside.npz").write_bytes(b"secret")
    (tmp_path / "linked" / "state.npz").symlink_to(tmp_path / "outside.npz")
    with pytest.raises(ModelFileError, match="symbolic links cannot be pushed"):
        read_model_files(tmp_path / "linked")


def test_build_artifact_writes_encrypted_files_and_their_manifest(
    artifact: tuple[Path, ManifestRecord],
) -> None:
    folder, record = artifact
    assert mode(folder) == 0o700
    assert record.address == address_of(PLAIN) and record.data_key_id == KEY.id
    assert ManifestRecord.from_json((folder / MANIFEST_NAME).read_text()) == record
    assert [entry.path for entry in record.files] == sorted(PLAIN)
    for entry in record.files:
        blob = (folder / "files" / entry.path).read_bytes()
        assert PLAIN[entry.path] not in blob  # stored encrypted
        assert (entry.sha256, entry.size, entry.plain_sha256) == (
            sha256_hex(blob),
            len(blob),
            sha256_hex(PLAIN[entry.path]),
        )


def test_build_artifact_refuses_an_existing_folder(artifact: tuple[Path, ManifestRecord]) -> None:
    folder, _ = artifact
    with pytest.raises(FileExistsError):
        build_artifact(
            folder, PLAIN, KEY, version="v2", parent=None, dataset_fingerprint=None, model_kind=None
        )


def test_encrypt_then_decrypt_round_trips_every_file(artifact: tuple[Path, ManifestRecord]) -> None:
    folder, record = artifact
    stored = read_stored("v1", folder, record)
    assert decrypt_stored("v1", record, stored, DataKeyring(KEY)) == PLAIN
    # Mid-rotation the old key may be the pending one of the keyring: it still decrypts.
    assert decrypt_stored("v1", record, stored, DataKeyring(OTHER_KEY, pending=KEY)) == PLAIN


def test_a_wrong_data_key_is_a_decryption_error_naming_both_key_ids(
    artifact: tuple[Path, ManifestRecord],
) -> None:
    folder, record = artifact
    stored = read_stored("v1", folder, record)
    with pytest.raises(DecryptionError, match=r"refused \(wrong data key\)") as caught:
        decrypt_stored("v1", record, stored, DataKeyring(OTHER_KEY))
    assert KEY.id in str(caught.value) and OTHER_KEY.id in str(caught.value)
    assert "other key" in str(caught.value)  # where the configured key came from
    # A keyring that claims the id but holds other bytes: authentication fails, the file is named.
    impostor = replace(record, data_key_id=OTHER_KEY.id)
    with pytest.raises(DecryptionError, match=r"files/model.json: authentication failed"):
        decrypt_stored("v1", impostor, stored, DataKeyring(OTHER_KEY))


def test_a_ciphertext_moved_to_another_path_does_not_decrypt(artifact: tuple[Path, ManifestRecord]) -> None:
    folder, record = artifact
    stored = read_stored("v1", folder, record)
    swapped = {**stored, "model.json": stored["sub/extra.txt"], "sub/extra.txt": stored["model.json"]}
    with pytest.raises(DecryptionError, match="authentication failed"):
        decrypt_stored("v1", record, swapped, DataKeyring(KEY))


def test_a_plaintext_that_differs_from_the_pushed_file_is_refused(
    artifact: tuple[Path, ManifestRecord],
) -> None:
    folder, record = artifact
    entries = tuple(replace(e, plain_sha256="0" * 64) if e.path == "state.npz" else e for e in record.files)
    with pytest.raises(
        DigestMismatchError, match=r"state.npz: decrypted content differs from the pushed file"
    ):
        decrypt_stored(
            "v1", replace(record, files=entries), read_stored("v1", folder, record), DataKeyring(KEY)
        )


def test_read_stored_names_a_missing_truncated_altered_or_unlisted_file(
    artifact: tuple[Path, ManifestRecord],
) -> None:
    folder, record = artifact
    state = folder / "files" / "state.npz"
    original = state.read_bytes()
    state.write_bytes(original[:-1])
    with pytest.raises(
        TruncatedFileError, match=f"files/state.npz has {len(original) - 1} of its {len(original)} bytes"
    ):
        read_stored("v1", folder, record)
    altered = bytearray(original)
    altered[40] ^= 0x01
    state.write_bytes(bytes(altered))
    with pytest.raises(DigestMismatchError, match=r"files/state.npz: SHA-256 differs from the manifest's"):
        read_stored("v1", folder, record)
    state.write_bytes(original)
    (folder / "files" / "smuggled.bin").write_bytes(b"!")
    with pytest.raises(DigestMismatchError, match=r"files/smuggled.bin is not listed in the manifest"):
        read_stored("v1", folder, record)
    (folder / "files" / "smuggled.bin").unlink()
    state.unlink()
    with pytest.raises(MissingFileError, match=r"files/state.npz is missing") as caught:
        read_stored("v1", folder, record)
    assert isinstance(caught.value, ArtifactRefusedError) and caught.value.version == "v1"


def test_write_plain_creates_private_files_and_folders(tmp_path: Path) -> None:
    dest = tmp_path / "plain"
    write_plain(dest, PLAIN)
    assert {p.relative_to(dest).as_posix(): p.read_bytes() for p in dest.rglob("*") if p.is_file()} == PLAIN
    assert all(mode(dest / path) == 0o600 for path in PLAIN)
    assert mode(dest) == 0o700 and mode(dest / "sub") == 0o700
    with pytest.raises(FileExistsError):
        write_plain(dest, {"model.json": b"again"})
    assert (dest / "model.json").read_bytes() == PLAIN["model.json"]


def test_swap_in_replaces_a_folder_and_leaves_nothing_retired(tmp_path: Path) -> None:
    target, staging = tmp_path / "abc", tmp_path / ".staging"
    staging.mkdir()
    (staging / "new").write_text("new")
    swap_in(staging, target)  # no folder there yet
    assert (target / "new").read_text() == "new"
    staging.mkdir()
    (staging / "newer").write_text("newer")
    swap_in(staging, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["abc"]
    assert [p.name for p in target.iterdir()] == ["newer"]


def test_recover_restores_a_retired_folder_whose_replacement_never_arrived(tmp_path: Path) -> None:
    (tmp_path / f"{RETIRED_PREFIX}lost").mkdir()
    (tmp_path / f"{RETIRED_PREFIX}lost" / "manifest.json").write_text(json.dumps({"v": 1}))
    (tmp_path / f"{RETIRED_PREFIX}done").mkdir()  # its replacement is in place: the old copy goes
    (tmp_path / "done").mkdir()
    (tmp_path / "done" / "manifest.json").write_text("new")
    recover(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["done", "lost"]
    assert (tmp_path / "lost" / "manifest.json").read_text() == '{"v": 1}'
    assert (tmp_path / "done" / "manifest.json").read_text() == "new"
