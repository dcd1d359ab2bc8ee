"""recdrill's home folder and the private files kept in it (keys, the key store, decrypted models).

The home is ``RECDRILL_HOME``, else ``~/.recdrill``; the registry, the API key store and every key
file live below it (``keys/``). Secret files are written with mode 0600 from their first byte (never
readable by others, even briefly) and replaced atomically; a secret file that others can read is
refused where it is read, as ssh refuses such a private key.

Example:
    >>> import tempfile
    >>> home = recdrill_home({HOME_ENV: tempfile.mkdtemp()})
    >>> path = key_path(home, "example.key")
    >>> write_private(path, b"secret")
    >>> path.read_bytes(), exposed_mode(path), oct(path.parent.stat().st_mode & 0o777)
    (b'secret', None, '0o700')
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

HOME_ENV = "RECDRILL_HOME"
DEFAULT_HOME = ".recdrill"  # under the user's home directory
KEYS_FOLDER = "keys"
# Key files under ``HOME/keys/`` (``recdrill keys init`` creates the first three).
SIGNING_KEY_FILE = "signing.pem"
SIGNING_PUBLIC_KEY_FILE = "signing.pub.pem"
DATA_KEY_FILE = "data.key"
PENDING_DATA_KEY_FILE = "data.key.new"
WATERMARK_KEY_FILE = "watermark.key"
PSEUDONYM_KEY_FILE = "pseudonym.key"
API_KEY_STORE_FILE = "keys.db"  # directly under HOME, beside the registry


def recdrill_home(environ: Mapping[str, str] | None = None) -> Path:
    """``RECDRILL_HOME``, else ``~/.recdrill``: of this process, or of the environment given (another
    process's, read through :func:`recdrill.procs.environ`, whose ``HOME`` then counts)."""
    env = os.environ if environ is None else environ
    if env.get(HOME_ENV):
        return Path(env[HOME_ENV]).expanduser()
    user_home = Path(env["HOME"]) if environ is not None and env.get("HOME") else Path.home()
    return user_home / DEFAULT_HOME


def key_path(home: Path, name: str) -> Path:
    """A key file's path: ``HOME/keys/NAME``."""
    return home / KEYS_FOLDER / name


def exposed_mode(path: Path) -> int | None:
    """The file's permission bits when its group or others may access it, else None (private).

    Raises:
        FileNotFoundError: there is no such file.
    """
    mode = path.stat().st_mode & 0o777
    return mode if mode & 0o077 else None


def _private_temporary(path: Path, data: bytes, *, durable: bool) -> Path:
    """A new file beside ``path`` holding ``data``, mode 0600 from its creation."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
        if durable:
            handle.flush()
            os.fsync(handle.fileno())
    return temporary


def write_private(path: Path, data: bytes, *, durable: bool = True, private_folder: bool = True) -> None:
    """Write ``data`` to ``path`` (mode 0600), replacing it atomically: a reader sees the old file or
    the new one, never a half-written one. ``durable`` fsyncs before the rename; ``private_folder``
    makes the folder (created if needed) 0700."""
    if private_folder:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(path.parent, 0o700)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _private_temporary(path, data, durable=durable)
    try:
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def create_private_once(path: Path, data: bytes) -> bool:
    """Create ``path`` (mode 0600, folder 0700) holding ``data`` unless it exists; True if this call
    created it. Several processes may race: each writes a private temporary file and hard-links it
    into place, which fails for all but the first, so no one ever reads a half-written file."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = _private_temporary(path, data, durable=False)
    try:
        os.link(temporary, path)
    except FileExistsError:
        return False
    finally:
        temporary.unlink()
    return True


def touch_private(path: Path) -> None:
    """Create an empty ``path`` (mode 0600, folder 0700) if it does not exist yet."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


def write_new_private(path: Path, data: bytes) -> None:
    """Create ``path`` (mode 0600, folder 0700); an existing file is an error (``FileExistsError``)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
