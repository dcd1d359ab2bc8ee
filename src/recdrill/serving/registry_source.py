"""Serve a registry version: verify it, then decrypt it into ``<state_dir>/models/<version>/``.

The registry (``RECDRILL_HOME``) checks the signature and every stored file's digest before
anything is decrypted (``Registry.materialise``); a refusal is an ``ArtifactRefusedError`` whose
``reason`` names what was wrong, and nothing is written. The server needs the public verification
key and the data key, never the private signing key.

Several workers of one server follow the same reload, so the plaintext folder is shared: the first
to finish decrypts into a private staging folder and renames it into place (atomic), the others
find it there. A folder found in place is trusted only after the artifact verifies again and every
plaintext file matches the signed manifest's plaintext digest (no file more, none less): it costs
one hash over a small model, and a folder altered on disk, or left by another registry's ``v3``,
is replaced rather than served.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
from collections.abc import Mapping
from pathlib import Path

from recdrill.contract import MAX_VERSION_CHARS, VERSION_PATTERN
from recdrill.errors import ConfigError
from recdrill.registry.manifest import ManifestRecord, sha256_hex
from recdrill.registry.registry import Registry

MODELS_DIR = "models"
_VERSION = re.compile(VERSION_PATTERN)


def materialise_version(version: str, state_dir: Path, environ: Mapping[str, str] | None = None) -> Path:
    """The verified plaintext folder of registry ``version`` under ``state_dir``, made if needed.

    Raises:
        ArtifactRefusedError: the stored artifact failed verification (its ``reason`` says why).
        VersionNotFoundError: no such version in the registry.
        KeyMaterialError: no verification key or data key.
        ConfigError: ``version`` is not a version name.
    """
    if len(version) > MAX_VERSION_CHARS or not _VERSION.fullmatch(version):
        raise ConfigError(f"{version!r} is not a registry version name")
    registry = Registry(environ=environ)
    record = registry.verify(version)
    models = state_dir / MODELS_DIR
    target = models / version
    if _matches(target, record):
        return target
    models.mkdir(mode=0o700, parents=True, exist_ok=True)
    staging = models / f".{version}.{os.getpid()}.{secrets.token_hex(4)}"
    try:
        registry.materialise(version, staging)
        try:
            os.rename(staging, target)  # fails if another worker put a folder there first
        except OSError:
            if _matches(target, record):
                return target
            retired = models / f".retired-{staging.name}"
            os.rename(target, retired)
            os.rename(staging, target)
            shutil.rmtree(retired, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _matches(folder: Path, record: ManifestRecord) -> bool:
    """Whether ``folder`` holds exactly the manifest's files with their plaintext digests."""
    if not folder.is_dir():
        return False
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if not p.is_dir()}
    if present != {entry.path for entry in record.files}:
        return False
    return all(sha256_hex((folder / e.path).read_bytes()) == e.plain_sha256 for e in record.files)
