"""The artifact folder on disk: encrypted model files under ``files/`` plus ``manifest.json``.

Building, checking, decrypting and re-encrypting one folder. Every stored file is read once and
checked against the manifest's digest before its bytes are decrypted, so what is decrypted is what
was verified, not a file swapped in between. A finished folder replaces an old one by two renames
(old aside, new in), and :func:`recover` undoes a half-done swap after a crash.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from recdrill._home import write_new_private
from recdrill.errors import (
    DecryptionError,
    DigestMismatchError,
    MissingFileError,
    ModelFileError,
    TruncatedFileError,
)
from recdrill.registry.encryption import CiphertextError, associated_data, decrypt, encrypt
from recdrill.registry.keys import DataKey, DataKeyring
from recdrill.registry.manifest import (
    FILES_DIR,
    MANIFEST_NAME,
    ManifestRecord,
    StoredFile,
    content_address,
    sha256_hex,
)

RETIRED_PREFIX = ".retired-"


def read_model_files(model_dir: Path) -> dict[str, bytes]:
    """Every regular file of a saved model folder, by POSIX path relative to it."""
    if not model_dir.is_dir():
        raise ModelFileError(model_dir, "no such model folder")
    files: dict[str, bytes] = {}
    for path in sorted(model_dir.rglob("*")):
        if path.is_symlink():
            raise ModelFileError(path, "symbolic links cannot be pushed to the registry")
        if path.is_file():
            files[path.relative_to(model_dir).as_posix()] = path.read_bytes()
    if not files:
        raise ModelFileError(model_dir, "the model folder is empty")
    return files


def address_of(files: dict[str, bytes]) -> str:
    return content_address({path: sha256_hex(data) for path, data in files.items()})


def write_encrypted(
    folder: Path, address: str, plain: dict[str, bytes], key: DataKey
) -> tuple[StoredFile, ...]:
    """Encrypt each file into ``folder/files/``; returns the manifest entries."""
    entries = []
    for path, data in sorted(plain.items()):
        blob = encrypt(key.key, data, associated_data(address, path))
        target = folder / FILES_DIR / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(blob)
        entries.append(StoredFile(path, sha256_hex(blob), len(blob), sha256_hex(data)))
    return tuple(entries)


def build_artifact(folder: Path, plain: dict[str, bytes], key: DataKey, **fields: Any) -> ManifestRecord:
    """Write a complete (unsigned) artifact for ``plain`` into the new folder ``folder``."""
    folder.mkdir(mode=0o700, parents=True)
    address = address_of(plain)
    record = ManifestRecord(
        address=address, data_key_id=key.id, files=write_encrypted(folder, address, plain, key), **fields
    )
    (folder / MANIFEST_NAME).write_text(record.to_json())
    return record


def read_stored(version: str, folder: Path, record: ManifestRecord) -> dict[str, bytes]:
    """The stored bytes of every listed file, each checked against its manifest size and digest."""
    stored: dict[str, bytes] = {}
    for entry in record.files:
        shown = f"{FILES_DIR}/{entry.path}"
        try:
            data = (folder / FILES_DIR / entry.path).read_bytes()
        except FileNotFoundError:
            raise MissingFileError(version, f"{shown} is missing") from None
        if len(data) < entry.size:
            raise TruncatedFileError(version, f"{shown} has {len(data)} of its {entry.size} bytes")
        if sha256_hex(data) != entry.sha256:
            raise DigestMismatchError(version, f"{shown}: SHA-256 differs from the manifest's")
        stored[entry.path] = data
    listed = {entry.path for entry in record.files}
    for path in sorted((folder / FILES_DIR).rglob("*")):
        relative = path.relative_to(folder / FILES_DIR).as_posix()
        if not path.is_dir() and relative not in listed:
            raise DigestMismatchError(version, f"{FILES_DIR}/{relative} is not listed in the manifest")
    return stored


def decrypt_stored(
    version: str, record: ManifestRecord, stored: dict[str, bytes], keyring: DataKeyring
) -> dict[str, bytes]:
    """Plaintext of every file, each checked against the manifest's plaintext digest."""
    key = keyring.get(record.data_key_id)
    if key is None:
        raise DecryptionError(
            version,
            f"it was encrypted with data key {record.data_key_id}, but the configured key is "
            f"{keyring.current.id} (from {keyring.current.source})",
        )
    plain: dict[str, bytes] = {}
    for entry in record.files:
        try:
            data = decrypt(key.key, stored[entry.path], associated_data(record.address, entry.path))
        except CiphertextError as exc:
            raise DecryptionError(version, f"{FILES_DIR}/{entry.path}: {exc}") from None
        if sha256_hex(data) != entry.plain_sha256:
            raise DigestMismatchError(
                version, f"{entry.path}: decrypted content differs from the pushed file"
            )
        plain[entry.path] = data
    return plain


def write_plain(dest: Path, plain: dict[str, bytes]) -> None:
    """Write decrypted files under ``dest`` (folders 0700, files 0600: only this user reads them)."""
    for path, data in plain.items():
        write_new_private(dest / path, data)


def swap_in(staging: Path, target: Path) -> None:
    """Replace folder ``target`` with ``staging``; :func:`recover` finishes this after a crash."""
    retired = target.with_name(RETIRED_PREFIX + target.name)
    if target.exists():
        os.rename(target, retired)
    os.rename(staging, target)
    shutil.rmtree(retired, ignore_errors=True)


def recover(artifacts: Path) -> None:
    """Finish swaps a crash interrupted: restore a retired folder whose replacement never arrived."""
    for retired in artifacts.glob(RETIRED_PREFIX + "*"):
        target = artifacts / retired.name.removeprefix(RETIRED_PREFIX)
        if target.exists():
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.rename(retired, target)
