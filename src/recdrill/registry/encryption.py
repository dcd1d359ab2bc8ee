"""AES-256-GCM for stored model files: one random 96-bit nonce per file, its place bound as AAD.

A stored file is ``MAGIC || nonce || ciphertext+tag``. The associated data names the artifact's
content address and the file's path inside the model, so a ciphertext moved to another path or
another artifact fails authentication instead of loading as the wrong file. GCM's tag also makes a
wrong key fail loudly rather than yield garbage. Files are encrypted whole, in memory: model files
here are megabytes, far below AES-GCM's per-message limit.
"""

from __future__ import annotations

import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"RDE1"  # recdrill encrypted file, format 1
NONCE_BYTES = 12


class CiphertextError(ValueError):
    """A stored file does not decrypt: wrong key, wrong place, or altered bytes."""


def associated_data(address: str, path: str) -> bytes:
    """What binds a file to its place: ``<content address>/<path in the model folder>``."""
    return f"recdrill-artifact:{address}/{path}".encode()


def encrypt(key: bytes, plaintext: bytes, associated: bytes) -> bytes:
    """Encrypt with a fresh random nonce.

    Example:
        >>> key = bytes(32)
        >>> blob = encrypt(key, b"weights", b"a/state.npz")
        >>> decrypt(key, blob, b"a/state.npz")
        b'weights'
        >>> decrypt(key, blob, b"a/model.json")
        Traceback (most recent call last):
        ...
        recdrill.registry.encryption.CiphertextError: authentication failed (wrong key, or the file ...
    """
    nonce = secrets.token_bytes(NONCE_BYTES)
    return MAGIC + nonce + AESGCM(key).encrypt(nonce, plaintext, associated)


def decrypt(key: bytes, blob: bytes, associated: bytes) -> bytes:
    """Inverse of :func:`encrypt`; raises :class:`CiphertextError` if anything does not match."""
    if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + NONCE_BYTES + 16:
        raise CiphertextError("not a recdrill encrypted file (bad header or too short)")
    nonce = blob[len(MAGIC) : len(MAGIC) + NONCE_BYTES]
    try:
        return AESGCM(key).decrypt(nonce, blob[len(MAGIC) + NONCE_BYTES :], associated)
    except InvalidTag:
        raise CiphertextError("authentication failed (wrong key, or the file was altered or moved)") from None
