"""The model registry: push, list, promote, roll back, and verify-then-load signed, encrypted models.

Layout under ``RECDRILL_HOME`` (default ``~/.recdrill``)::

    registry.db                       versions, stages, production history (SQLite, WAL)
    artifacts/<sha256>/               one pushed model, named by its content address
        files/<path>                  each model file, AES-256-GCM encrypted
        manifest.json                 version, parent, metrics, ... and every file's digests
        signature.sigstore.json       OpenSSF model-signing signature over the two above
    keys/                             signing.pem, data.key (``recdrill keys init``; mode 0600)

Nothing is decrypted before the folder's signature and digests hold. For a server:
``Registry(home).materialise(version, folder)`` verifies, then writes the plaintext model folder
that ``load_model`` (or a hot reload) reads; it raises an :class:`ArtifactRefusedError` subclass
naming the reason, so the caller can keep its current model. ``load_verified`` does both steps
into a private temporary folder and returns the loaded model.
"""

from __future__ import annotations

import builtins
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from recdrill._home import recdrill_home
from recdrill.data.dataset import Dataset
from recdrill.errors import (
    ConfigError,
    DigestMismatchError,
    KeyMaterialError,
    ManifestEditedError,
    MissingFileError,
    StageError,
)
from recdrill.models.base import BaseRecommender
from recdrill.models.factory import load_model
from recdrill.registry.catalog import Catalog, VersionRow, utc_now
from recdrill.registry.keys import (
    DataKey,
    DataKeyring,
    finish_rotation,
    load_data_keyring,
    load_signing_key_pem,
    load_verify_key_pem,
    start_rotation,
)
from recdrill.registry.manifest import MANIFEST_NAME, SIGNATURE_NAME, ManifestRecord, sha256_hex
from recdrill.registry.signing import SignedContentMismatch, sign_folder, signed_digests, verify_folder
from recdrill.registry.stages import Stage, parse_stage, validate_transition
from recdrill.registry.store import (
    RETIRED_PREFIX,
    address_of,
    build_artifact,
    decrypt_stored,
    read_model_files,
    read_stored,
    recover,
    swap_in,
    write_encrypted,
    write_plain,
)


@dataclass(frozen=True)
class Rotation:
    """What ``rotate_data_key`` did: the new key's id and the versions it re-encrypted."""

    new_key_id: str
    versions: tuple[str, ...]


class Registry:
    """A registry rooted at ``home``; keys are read when an operation needs them, never cached."""

    def __init__(self, home: Path | None = None, environ: Mapping[str, str] | None = None) -> None:
        self._environ = environ
        self.home = Path(home) if home is not None else recdrill_home(environ)
        self.artifacts = self.home / "artifacts"
        self.artifacts.mkdir(parents=True, exist_ok=True)
        self.catalog = Catalog(self.home / "registry.db")
        if any(self.artifacts.glob(RETIRED_PREFIX + "*")):
            with self.catalog.transaction():  # swaps happen under this lock: never undo a live one
                recover(self.artifacts)

    def artifact_path(self, version: str) -> Path:
        """The stored artifact folder of ``version``."""
        return self.artifacts / self.show(version).address

    def push(
        self,
        model_dir: str | Path,
        *,
        parent: str | None = None,
        metrics: Mapping[str, float] | None = None,
        dataset_fingerprint: str | None = None,
    ) -> ManifestRecord:
        """Encrypt, sign and register a saved model folder as the next version, a candidate.

        Hyper-parameters and the model kind come from the folder's ``model.json``; the dataset
        fingerprint defaults to the digest of the interactions it was trained on. Pushing content
        already stored returns that version unchanged.

        Raises:
            ModelFileError: the folder is not a loadable recdrill model.
            VersionNotFoundError: ``parent`` is not registered.
            KeyMaterialError: no usable signing or data key.
        """
        folder = Path(model_dir)
        load_model(folder)  # refuse at the door what could never load
        plain = read_model_files(folder)
        saved: dict[str, Any] = json.loads(plain.get("model.json", b"{}"))
        fields: dict[str, Any] = {
            "parent": parent,
            "dataset_fingerprint": dataset_fingerprint or saved.get("trained_on"),
            "model_kind": saved.get("kind"),
            "metrics": _checked_metrics(metrics),
            "hyperparameters": dict(saved.get("params", {})),
        }
        private_pem = load_signing_key_pem(self.home, self._environ)
        address = address_of(plain)
        with self.catalog.transaction() as session:
            # Read under the lock: a rotation finishing meanwhile must not leave us on a retired key.
            keyring = load_data_keyring(self.home, self._environ)
            data_key = keyring.pending or keyring.current
            if parent is not None:
                session.get(parent)
            existing = session.by_address(address)
            if existing is not None:
                return existing.record
            version = session.next_version()
            staging = self._staging()
            try:
                record = build_artifact(
                    staging, plain, data_key, version=version, created_at=utc_now(), **fields
                )
                sign_folder(staging, private_pem)
                swap_in(staging, self.artifacts / address)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
            session.insert(record, Stage.CANDIDATE)
        return record

    def list(self) -> list[VersionRow]:
        """Every version, oldest first."""
        with self.catalog.transaction(write=False) as session:
            return session.all()

    def show(self, version: str) -> VersionRow:
        """One version's stage and manifest (as registered; :meth:`verify` checks the disk)."""
        with self.catalog.transaction(write=False) as session:
            return session.get(version)

    def current(self, stage: Stage = Stage.PRODUCTION) -> builtins.list[str]:
        """The versions now in ``stage`` (production holds at most one)."""
        with self.catalog.transaction(write=False) as session:
            return session.in_stage(stage)

    def history(self, version: str) -> builtins.list[tuple[str | None, str, str]]:
        """``(from, to, reason)`` for each of ``version``'s stage changes, oldest first."""
        with self.catalog.transaction(write=False) as session:
            session.get(version)
            return session.events(version)

    def promote(self, version: str, stage: Stage | str, reason: str = "promote") -> VersionRow:
        """Move ``version`` to ``stage``; a new production version archives the old one.

        ``reason`` is kept in the version's history (a canary's start or outcome says why).
        """
        target = stage if isinstance(stage, Stage) else parse_stage(stage)
        with self.catalog.transaction() as session:
            row = session.get(version)
            validate_transition(version, row.stage, target)
            if target is Stage.PRODUCTION:
                for old in session.in_stage(Stage.PRODUCTION):
                    session.set_stage(old, Stage.ARCHIVED, "superseded")
            session.set_stage(version, target, reason)
            return session.get(version)

    def archive(self, version: str, reason: str) -> bool:
        """Archive a candidate or canary ``version`` with ``reason``; False if it was archived already.

        Idempotent on purpose: every worker of a server judges a canary on its own, and two may
        reject it at once; the check and the move share one transaction, so exactly one records it.

        Raises:
            StageError: ``version`` is in production (``rollback`` is the way out of production).
        """
        with self.catalog.transaction() as session:
            row = session.get(version)
            if row.stage is Stage.ARCHIVED:
                return False
            if row.stage is Stage.PRODUCTION:
                raise StageError(f"{version} is in production: roll back instead of archiving it")
            session.set_stage(version, Stage.ARCHIVED, reason)
            return True

    def rollback(self) -> VersionRow:
        """Return production to the version that held it before the current one, in one step."""
        with self.catalog.transaction() as session:
            current = session.in_stage(Stage.PRODUCTION)
            now = current[0] if current else None
            previous = session.previous_production(now)
            if previous is None:
                raise StageError("no previous production version to roll back to")
            if now is not None:
                session.set_stage(now, Stage.ARCHIVED, "rollback")
            session.set_stage(previous, Stage.PRODUCTION, "rollback")
            return session.get(previous)

    def verify(self, version: str) -> ManifestRecord:
        """Check ``version``'s signature, manifest and every stored file's digest.

        Raises:
            ArtifactRefusedError: a subclass naming the reason (unsigned, bad signature, signed
                by another key, manifest edited, digest mismatch, truncated or missing file).
        """
        return self._verified(version)[0]

    def materialise(self, version: str, dest: str | Path) -> Path:
        """Verify ``version``, then write its decrypted model folder to ``dest`` (new or empty).

        Raises:
            ArtifactRefusedError: verification failed, or ``DecryptionError`` for a wrong data key.
        """
        target = Path(dest)
        if target.exists() and (not target.is_dir() or any(target.iterdir())):
            raise ConfigError(f"{target}: destination must be a new or empty folder")
        record, stored = self._verified(version)
        plain = decrypt_stored(version, record, stored, load_data_keyring(self.home, self._environ))
        target.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_plain(target, plain)
        return target

    def load_verified(self, version: str, dataset: Dataset | None = None) -> BaseRecommender:
        """Verify, decrypt into a private temporary folder, load, and remove the plaintext."""
        with tempfile.TemporaryDirectory(prefix="recdrill-model-") as scratch:
            return load_model(self.materialise(version, Path(scratch) / "model"), dataset)

    def rotate_data_key(
        self, before_finish: Callable[[DataKeyring, DataKey], None] | None = None
    ) -> Rotation:
        """Re-encrypt every artifact under a new data key and re-sign it.

        Each artifact is verified first (nothing tampered is re-signed) and swapped in whole; the
        old key stays usable until all are done, so an interrupted rotation can be run again.
        ``before_finish(keyring, new_key)`` re-encrypts whatever else the data key protects (the
        feedback log's user ids: the CLI passes that, since serving sits above the registry) while
        both keys are still at hand; if it raises, the old key stays current and a re-run resumes.
        """
        keyring = start_rotation(self.home, self._environ)
        new_key = keyring.pending
        if new_key is None:  # start_rotation always sets one; this keeps the type checker honest
            raise KeyMaterialError("no new data key to rotate to")
        private_pem = load_signing_key_pem(self.home, self._environ)
        done: builtins.list[str] = []
        while True:
            for row in self.list():
                if self._reencrypt(row.version, keyring, new_key, private_pem):
                    done.append(row.version)
            with self.catalog.transaction() as session:  # no push can slip in under the old key now
                if all(row.record.data_key_id == new_key.id for row in session.all()):
                    if before_finish is not None:
                        before_finish(keyring, new_key)
                    finish_rotation(self.home, self._environ)
                    break
        return Rotation(new_key.id, tuple(done))

    def _reencrypt(self, version: str, keyring: DataKeyring, new_key: DataKey, private_pem: bytes) -> bool:
        """Move one verified artifact to ``new_key`` and re-sign it; False if it was there already."""
        record, stored = self._verified(version)
        if record.data_key_id == new_key.id:
            return False
        plain = decrypt_stored(version, record, stored, keyring)
        staging = self._staging()
        try:
            staging.mkdir(mode=0o700)
            files = write_encrypted(staging, record.address, plain, new_key)
            rotated = replace(record, data_key_id=new_key.id, files=files)
            (staging / MANIFEST_NAME).write_text(rotated.to_json())
            sign_folder(staging, private_pem)
            with self.catalog.transaction() as session:
                swap_in(staging, self.artifacts / record.address)
                session.replace_manifest(rotated)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return True

    def _staging(self) -> Path:
        return self.artifacts / f".staging-{os.getpid()}-{secrets.token_hex(6)}"

    def _verified(self, version: str) -> tuple[ManifestRecord, dict[str, bytes]]:
        """The signed manifest and every stored file's bytes, read once and checked."""
        row = self.show(version)
        folder = self.artifacts / row.address
        if not (folder / MANIFEST_NAME).is_file():
            raise MissingFileError(version, f"{folder / MANIFEST_NAME} is missing")
        public_pem = load_verify_key_pem(self.home, self._environ)
        try:
            verify_folder(version, folder, public_pem)
        except SignedContentMismatch:
            self._explain_mismatch(version, folder)
        manifest_bytes = (folder / MANIFEST_NAME).read_bytes()
        if sha256_hex(manifest_bytes) != signed_digests(folder).get(MANIFEST_NAME):
            raise ManifestEditedError(version, "manifest.json changed while it was being verified")
        record = ManifestRecord.from_json(manifest_bytes)
        if record.version != version or record.address != row.address:
            raise ManifestEditedError(
                version, f"the signed manifest belongs to {record.version} ({record.address[:12]})"
            )
        return record, read_stored(version, folder, record)

    def _explain_mismatch(self, version: str, folder: Path) -> None:
        """Raise the most specific reason a genuinely signed folder no longer matches."""
        signed = signed_digests(folder)
        manifest_bytes = (folder / MANIFEST_NAME).read_bytes()
        if sha256_hex(manifest_bytes) != signed.get(MANIFEST_NAME):
            raise ManifestEditedError(version, "manifest.json differs from the signed manifest")
        read_stored(version, folder, ManifestRecord.from_json(manifest_bytes))
        present = {path.relative_to(folder).as_posix() for path in folder.rglob("*") if not path.is_dir()} - {
            SIGNATURE_NAME
        }
        changed = sorted(present ^ set(signed)) or ["unknown"]
        raise DigestMismatchError(version, f"files differ from the signed ones: {', '.join(changed)}")


def _checked_metrics(metrics: Mapping[str, float] | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, value in (metrics or {}).items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"metric {name!r} must be a number, got {value!r}")
        out[str(name)] = float(value)
    return out
