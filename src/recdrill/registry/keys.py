"""Where the registry's two secrets come from: the signing key and the data key.

The signing key is an EC P-256 private key in PEM (what OpenSSF ``model-signing`` signs with); the
data key is 32 random bytes, written as base64, for AES-256-GCM. Each comes from an environment
variable (``RECDRILL_SIGNING_KEY``, ``RECDRILL_DATA_KEY``) when set, else from a file under
``RECDRILL_HOME/keys/`` that ``recdrill keys init`` creates with mode 0600. Keys never live in the
repository, and nothing here puts key bytes into a message, a ``repr`` or a log: keys are named by
:func:`key_id`, a one-way fingerprint.

Rotation keeps the old data key until every artifact is re-encrypted: the new key waits in
``keys/data.key.new`` (or ``RECDRILL_NEW_DATA_KEY``) and both are in the :class:`DataKeyring`, so an
interrupted rotation resumes and every artifact stays readable meanwhile.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from recdrill._home import (
    DATA_KEY_FILE,
    KEYS_FOLDER,
    PENDING_DATA_KEY_FILE,
    SIGNING_KEY_FILE,
    SIGNING_PUBLIC_KEY_FILE,
    WATERMARK_KEY_FILE,
    exposed_mode,
    write_private,
)
from recdrill.errors import KeyMaterialError

SIGNING_KEY_ENV = "RECDRILL_SIGNING_KEY"
DATA_KEY_ENV = "RECDRILL_DATA_KEY"
NEW_DATA_KEY_ENV = "RECDRILL_NEW_DATA_KEY"
DATA_KEY_BYTES = 32  # AES-256


@dataclass(frozen=True)
class KeyFiles:
    """The key files under a registry home."""

    home: Path

    @property
    def folder(self) -> Path:
        return self.home / KEYS_FOLDER

    @property
    def signing(self) -> Path:
        return self.folder / SIGNING_KEY_FILE

    @property
    def signing_public(self) -> Path:
        return self.folder / SIGNING_PUBLIC_KEY_FILE

    @property
    def data(self) -> Path:
        return self.folder / DATA_KEY_FILE

    @property
    def pending_data(self) -> Path:
        return self.folder / PENDING_DATA_KEY_FILE

    @property
    def watermark(self) -> Path:
        """The model watermark's secret (read by :func:`recdrill.models.watermark.load_watermark_secret`)."""
        return self.folder / WATERMARK_KEY_FILE


def key_id(key: bytes) -> str:
    """A short public name for a data key: a domain-separated SHA-256, safe to print and store.

    Example:
        >>> key_id(bytes(32))
        '7218d88fb5b0f03f'
    """
    return hashlib.sha256(b"recdrill-data-key\0" + key).hexdigest()[:16]


@dataclass(frozen=True)
class DataKey:
    """An AES-256 key and where it came from; ``repr`` shows only its id."""

    key: bytes = field(repr=False)
    source: str

    @property
    def id(self) -> str:
        return key_id(self.key)


@dataclass(frozen=True)
class DataKeyring:
    """The current data key, plus the pending one while a rotation is under way."""

    current: DataKey
    pending: DataKey | None = None

    def get(self, wanted_id: str) -> DataKey | None:
        """The key with this id, if this keyring holds it."""
        for key in (self.current, self.pending):
            if key is not None and key.id == wanted_id:
                return key
        return None


def read_secret(path: Path) -> bytes:
    """A key file's bytes; refuses a file that others can read, as ssh does."""
    try:
        mode = exposed_mode(path)
    except FileNotFoundError:
        raise KeyMaterialError(f"{path}: no such key file; run 'recdrill keys init'") from None
    if mode is not None:
        raise KeyMaterialError(f"{path}: key file is readable by others (mode {mode:o}); chmod 600 it")
    return path.read_bytes()


def new_signing_key_pem() -> bytes:
    """A fresh EC P-256 private key as unencrypted PKCS#8 PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def new_data_key() -> bytes:
    return secrets.token_bytes(DATA_KEY_BYTES)


def encode_data_key(key: bytes) -> bytes:
    """The text form of a data key (base64), as files and ``RECDRILL_DATA_KEY`` hold it."""
    return base64.b64encode(key) + b"\n"


def decode_data_key(text: bytes | str, where: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise KeyMaterialError(f"{where}: data key is not valid base64") from None
    if len(key) != DATA_KEY_BYTES:
        raise KeyMaterialError(f"{where}: data key must be {DATA_KEY_BYTES} bytes, got {len(key)}")
    return key


def load_signing_key_pem(home: Path, environ: Mapping[str, str] | None = None) -> bytes:
    """The signing key's PEM, checked to be an EC private key model-signing accepts."""
    env = os.environ if environ is None else environ
    files = KeyFiles(home)
    if env.get(SIGNING_KEY_ENV):
        pem, where = env[SIGNING_KEY_ENV].encode(), SIGNING_KEY_ENV
    else:
        pem, where = read_secret(files.signing), str(files.signing)
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise KeyMaterialError(f"{where}: not an unencrypted PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise KeyMaterialError(f"{where}: the signing key must be an elliptic-curve (EC) private key")
    return pem


def public_key_pem(private_pem: bytes) -> bytes:
    """The public half of a signing key, in PEM."""
    key = serialization.load_pem_private_key(private_pem, password=None)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_verify_key_pem(home: Path, environ: Mapping[str, str] | None = None) -> bytes:
    """The public key that verifies signatures: from the signing key when this host has it, else
    ``keys/signing.pub.pem``, so a server can verify models without holding the private key."""
    env = os.environ if environ is None else environ
    files = KeyFiles(home)
    if env.get(SIGNING_KEY_ENV) or files.signing.exists():
        return public_key_pem(load_signing_key_pem(home, env))
    try:
        pem = files.signing_public.read_bytes()
    except FileNotFoundError:
        raise KeyMaterialError(
            f"{files.signing}: no signing or verification key; run 'recdrill keys init'"
        ) from None
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError:
        raise KeyMaterialError(f"{files.signing_public}: not a PEM public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise KeyMaterialError(f"{files.signing_public}: the verification key must be an EC public key")
    return pem


def load_data_keyring(home: Path, environ: Mapping[str, str] | None = None) -> DataKeyring:
    """The current data key and, mid-rotation, the pending one."""
    env = os.environ if environ is None else environ
    files = KeyFiles(home)
    if env.get(DATA_KEY_ENV):
        current = DataKey(decode_data_key(env[DATA_KEY_ENV], DATA_KEY_ENV), DATA_KEY_ENV)
    else:
        current = DataKey(decode_data_key(read_secret(files.data), str(files.data)), str(files.data))
    pending: DataKey | None = None
    if env.get(NEW_DATA_KEY_ENV):
        pending = DataKey(decode_data_key(env[NEW_DATA_KEY_ENV], NEW_DATA_KEY_ENV), NEW_DATA_KEY_ENV)
    elif files.pending_data.exists():
        path = files.pending_data
        pending = DataKey(decode_data_key(read_secret(path), str(path)), str(path))
    return DataKeyring(current, pending)


def init_keys(home: Path) -> list[Path]:
    """Create whichever key files are missing (existing keys are never overwritten); returns those made.

    ``signing.pem`` (EC P-256, 0600), its public half ``signing.pub.pem``, ``data.key`` (0600) and
    ``watermark.key`` (0600, 32 random bytes as base64: the secret behind model watermarks).
    """
    files = KeyFiles(home)
    made = []
    if not files.signing.exists():
        write_private(files.signing, new_signing_key_pem())
        made.append(files.signing)
    if not files.signing_public.exists():  # for hosts that only verify: public, so not secret
        files.signing_public.write_bytes(public_key_pem(read_secret(files.signing)))
        made.append(files.signing_public)
    if not files.data.exists():
        write_private(files.data, encode_data_key(new_data_key()))
        made.append(files.data)
    if not files.watermark.exists():
        write_private(files.watermark, encode_data_key(secrets.token_bytes(32)))
        made.append(files.watermark)
    return made


def start_rotation(home: Path, environ: Mapping[str, str] | None = None) -> DataKeyring:
    """A keyring whose ``pending`` key is the rotation's target, creating it if need be.

    With ``RECDRILL_DATA_KEY`` in the environment the new key must come from the environment too
    (``RECDRILL_NEW_DATA_KEY``): recdrill will not write a key the operator did not place.
    """
    env = os.environ if environ is None else environ
    files = KeyFiles(home)
    if env.get(DATA_KEY_ENV) and not env.get(NEW_DATA_KEY_ENV):
        raise KeyMaterialError(
            f"the data key comes from {DATA_KEY_ENV}: set {NEW_DATA_KEY_ENV} to the new key (base64) "
            "to rotate, then move it into RECDRILL_DATA_KEY"
        )
    if not env.get(NEW_DATA_KEY_ENV) and not files.pending_data.exists():
        write_private(files.pending_data, encode_data_key(new_data_key()))
    keyring = load_data_keyring(home, env)
    if keyring.pending is None or keyring.pending.id == keyring.current.id:
        raise KeyMaterialError("the new data key is the same as the current one")
    return keyring


def finish_rotation(home: Path, environ: Mapping[str, str] | None = None) -> None:
    """Make the pending key current; the old key file is replaced only now, when nothing needs it."""
    env = os.environ if environ is None else environ
    files = KeyFiles(home)
    if not env.get(NEW_DATA_KEY_ENV) and files.pending_data.exists():  # absent: another run finished
        os.replace(files.pending_data, files.data)
