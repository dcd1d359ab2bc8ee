"""An artifact's manifest: what was pushed, from what, and the digest of every stored file.

The manifest is ``manifest.json`` beside the encrypted files; it is signed together with them, so
editing any field (metrics, parent, a digest) breaks the signature. Each file is listed twice: the
SHA-256 and size of the stored (encrypted) bytes, which verification checks before anything is
decrypted, and the SHA-256 of the plaintext, which :func:`content_address` folds into the
artifact's storage key and which is checked again after decryption.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

MANIFEST_NAME = "manifest.json"
SIGNATURE_NAME = "signature.sigstore.json"
FILES_DIR = "files"
MANIFEST_FORMAT = 1


@dataclass(frozen=True)
class StoredFile:
    """One model file: its path in the model folder, its stored and plaintext digests."""

    path: str
    sha256: str  # of the stored, encrypted bytes
    size: int  # of the stored bytes
    plain_sha256: str


@dataclass(frozen=True)
class ManifestRecord:
    """Everything the registry knows about one pushed model, as signed on disk."""

    version: str
    address: str
    parent: str | None
    dataset_fingerprint: str | None
    model_kind: str | None
    metrics: dict[str, float] = field(default_factory=dict)
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""
    data_key_id: str = ""
    files: tuple[StoredFile, ...] = ()

    def to_json(self) -> str:
        body = asdict(self)
        body["format"] = MANIFEST_FORMAT
        return json.dumps(body, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> ManifestRecord:
        """Parse a manifest; raises ``ValueError`` (or ``KeyError``/``TypeError``) if malformed."""
        body = json.loads(text)
        if not isinstance(body, dict) or body.pop("format", None) != MANIFEST_FORMAT:
            raise ValueError(f"not a format-{MANIFEST_FORMAT} recdrill manifest")
        files = tuple(StoredFile(**entry) for entry in body.pop("files"))
        return cls(files=files, **body)

    def file(self, path: str) -> StoredFile | None:
        return next((entry for entry in self.files if entry.path == path), None)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def content_address(plain_digests: dict[str, str]) -> str:
    """The storage key of a model: SHA-256 over its sorted (path, plaintext digest) pairs.

    The same model pushed twice has the same address; re-encryption does not change it.

    Example:
        >>> content_address({"b": "2", "a": "1"}) == content_address({"a": "1", "b": "2"})
        True
    """
    lines = "".join(f"{path}\0{digest}\n" for path, digest in sorted(plain_digests.items()))
    return sha256_hex(lines.encode())
