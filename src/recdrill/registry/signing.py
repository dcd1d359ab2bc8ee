"""Signing and verifying a stored artifact folder with OpenSSF ``model-signing``.

Choice and why: the OpenSSF ``model-signing`` library (1.1.1), key-based method. It works here,
offline: ``use_elliptic_key_signer`` hashes every file of the folder (SHA-256), puts the digests in
an in-toto statement, signs it with a local EC P-256 private key into a Sigstore bundle (DSSE
envelope, no transparency log, no network), and ``use_elliptic_key_verifier`` checks the signature
with the public key and re-hashes the folder, naming any file that changed. The Ed25519 fallback
the issue allows (a ``cryptography`` signature over a manifest of digests) was therefore not
needed. The library imports ``OpenSSL`` without declaring it, hence ``pyopenssl`` in the
dependencies.

What is signed is the stored folder: the encrypted files and ``manifest.json``. The signature
lives in the same folder (``signature.sigstore.json``), excluded from hashing. Verifying needs only
the public key. The library takes keys only as file paths, and ours may come from the environment,
so the key is written for each call into a private temporary folder (0700, file 0600) that is
removed straight after.
"""

from __future__ import annotations

import base64
import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature

from recdrill._home import write_private
from recdrill.errors import BadSignatureError, ForeignSignatureError, UnsignedArtifactError
from recdrill.registry.manifest import SIGNATURE_NAME

if TYPE_CHECKING:
    from model_signing import hashing

# model_signing (and sigstore behind it) costs ~0.2 s to import: it is imported where a folder is
# signed or verified, so a serving worker that never does either starts sooner.


class SignedContentMismatch(Exception):
    """The signature is genuine, but the folder's files are not the ones it signed."""


def _hashing_config() -> hashing.Config:
    from model_signing import hashing

    config = hashing.Config()  # type: ignore[no-untyped-call]  # the library's constructors lack hints
    return config.use_file_serialization(
        hashing_algorithm="sha256", allow_symlinks=False, ignore_paths=[Path(SIGNATURE_NAME)]
    )


def sign_folder(folder: Path, private_pem: bytes) -> Path:
    """Sign every file in ``folder``; writes and returns ``folder/signature.sigstore.json``, replacing
    an earlier signature (which must not be hashed into the new statement: the hashing config's
    ``ignore_paths`` only labels the statement, it does not skip the file)."""
    from model_signing import signing

    signature = folder / SIGNATURE_NAME
    signature.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="recdrill-sign-") as scratch:
        key_path = Path(scratch) / "signing.pem"
        write_private(key_path, private_pem)
        signer = signing.Config()  # type: ignore[no-untyped-call]
        signer.use_elliptic_key_signer(private_key=key_path)
        signer.set_hashing_config(_hashing_config()).sign(folder, signature)
    return signature


def verify_folder(version: str, folder: Path, public_pem: bytes) -> None:
    """Check ``folder``'s signature against our key and its files against the signed digests.

    Raises:
        UnsignedArtifactError: the folder has no signature.
        ForeignSignatureError: it was signed by a key other than ours.
        BadSignatureError: the signature itself is malformed or does not verify.
        SignedContentMismatch: a genuine signature, over other file contents.
    """
    from model_signing import verifying

    signature = folder / SIGNATURE_NAME
    if not signature.is_file():
        raise UnsignedArtifactError(version, f"{signature.name} is missing")
    with tempfile.TemporaryDirectory(prefix="recdrill-verify-") as scratch:
        public_path = Path(scratch) / "signing.pub.pem"
        public_path.write_bytes(public_pem)
        verifier = verifying.Config()  # type: ignore[no-untyped-call]
        verifier.use_elliptic_key_verifier(public_key=public_path)
        try:
            verifier.set_hashing_config(_hashing_config()).verify(folder, signature)
        except InvalidSignature:
            raise BadSignatureError(version, "the signature does not verify with the signing key") from None
        except ValueError as exc:
            message = str(exc)
            if message.startswith("Key mismatch"):
                raise ForeignSignatureError(
                    version, "the signature was made with a key other than this registry's"
                ) from None
            if message.startswith("Signature mismatch"):
                raise SignedContentMismatch(message) from None
            raise BadSignatureError(version, f"unreadable signature: {message.splitlines()[0]}") from None
        except (KeyError, TypeError, OSError) as exc:
            raise BadSignatureError(version, f"unreadable signature ({type(exc).__name__})") from None


def signed_digests(folder: Path) -> dict[str, str]:
    """The per-file SHA-256 digests a signature lists, read without checking it.

    Only for explaining a refusal after :func:`verify_folder` has authenticated the envelope and
    reported a mismatch; returns ``{}`` if the statement cannot be read.
    """
    try:
        bundle = json.loads((folder / SIGNATURE_NAME).read_text())
        statement: dict[str, Any] = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
        return {str(r["name"]): str(r["digest"]) for r in statement["predicate"]["resources"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}
