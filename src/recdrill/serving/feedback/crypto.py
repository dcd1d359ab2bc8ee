"""The raw user id of each feedback event, encrypted at rest under the registry's data key.

The feedback log joins on a keyed pseudonym (``user_id``), which nobody can reverse; but a
data-subject request ("what do you hold about user U-42?", "delete it") needs the raw id back. So
each row also holds ``user_id_sealed``: the raw id under AES-256-GCM with the data key (the same key
that encrypts model artifacts, ``RECDRILL_DATA_KEY`` or ``RECDRILL_HOME/keys/data.key``), with a
fresh random nonce per row and the row's id as associated data, so a ciphertext copied onto another
row does not authenticate there. ``user_id_key`` names the key (its public fingerprint,
:func:`recdrill.registry.keys.key_id`), so a wrong key is reported as such, and a rotation
(``recdrill keys rotate-data-key --feedback-db PATH``) finds the rows still under the old key.

No data key configured (a fresh machine, ``recdrill demo``): the log keeps pseudonyms only
(``user_id_sealed`` is NULL, the raw id unrecoverable by design) and the server says so once at
start-up: with nothing to encrypt under, storing no recoverable id is the private choice, and a
server should not refuse to run for want of a key it does not strictly need. A key that is present
but unusable (unsafe file mode, malformed) stops the server with one line.
``RECDRILL_FEEDBACK_PSEUDONYMS_ONLY=1`` keeps pseudonyms only even where a data key exists.

The keyring is re-read from its files for every batch the writer commits, under SQLite's write
lock: a rotation places the new key (``keys/data.key.new``) before it re-encrypts the table, so a
server that keeps running through a rotation writes its later rows under the new key. A key from
``RECDRILL_DATA_KEY`` is fixed for the process: restart the server with the new key after rotating.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from collections.abc import Mapping
from pathlib import Path

from recdrill._home import recdrill_home
from recdrill._sqlite import transaction
from recdrill.errors import ConfigError, KeyMaterialError
from recdrill.registry.encryption import CiphertextError, decrypt, encrypt
from recdrill.registry.keys import DATA_KEY_ENV, DataKey, DataKeyring, KeyFiles, load_data_keyring

log = logging.getLogger(__name__)

PSEUDONYMS_ONLY_ENV = "RECDRILL_FEEDBACK_PSEUDONYMS_ONLY"
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
SEALED_COLUMNS = (("user_id_sealed", "BLOB"), ("user_id_key", "TEXT"))


def associated_data(row_id: int) -> bytes:
    """What binds a sealed id to its row: the table and the row id."""
    return f"recdrill-feedback-user:{row_id}".encode()


def seal(key: DataKey, user_id: str, row_id: int) -> bytes:
    """``user_id`` encrypted for row ``row_id`` (fresh random nonce).

    Example:
        >>> key = DataKey(bytes(32), "test")
        >>> blob = seal(key, "U-42", 7)
        >>> unseal(DataKeyring(key), blob, key.id, 7)
        'U-42'
        >>> unseal(DataKeyring(key), blob, key.id, 8)
        Traceback (most recent call last):
        ...
        recdrill.errors.KeyMaterialError: feedback row 8: its encrypted user id does not authenticate ...
    """
    return encrypt(key.key, user_id.encode(), associated_data(row_id))


def unseal(keyring: DataKeyring, blob: bytes, key_id: str | None, row_id: int) -> str:
    """The raw user id of row ``row_id``.

    Raises:
        KeyMaterialError: the row was sealed under a key this keyring does not hold (named by its
            fingerprint, never its bytes), or the ciphertext does not authenticate for this row.
    """
    key = keyring.get(key_id or "")
    if key is None:
        raise KeyMaterialError(
            f"feedback row {row_id}: its user id was encrypted under data key {key_id}, but the "
            f"configured data key is {keyring.current.id} ({keyring.current.source}): wrong data key"
        )
    try:
        return decrypt(key.key, bytes(blob), associated_data(row_id)).decode()
    except CiphertextError:
        raise KeyMaterialError(
            f"feedback row {row_id}: its encrypted user id does not authenticate under data key "
            f"{key.id} (altered, or copied from another row)"
        ) from None


def pseudonyms_only(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``RECDRILL_FEEDBACK_PSEUDONYMS_ONLY`` opts out of storing recoverable ids."""
    env = os.environ if environ is None else environ
    return env.get(PSEUDONYMS_ONLY_ENV, "").strip().lower() in TRUE_WORDS


class UserIdSealer:
    """Seals raw user ids for the feedback writer under the current data key of ``home``.

    ``sealing_key`` re-reads the keyring each call (one per committed batch, see the module
    docstring) and prefers a rotation's pending key, as registry pushes do.
    """

    def __init__(self, home: Path, environ: Mapping[str, str] | None = None) -> None:
        self.home = home
        self._environ = dict(os.environ if environ is None else environ)
        self.keyring()  # fail now, at start-up, not at the first post

    def keyring(self) -> DataKeyring:
        return load_data_keyring(self.home, self._environ)

    def sealing_key(self) -> DataKey:
        keyring = self.keyring()
        return keyring.pending or keyring.current


def load_user_id_sealer(environ: Mapping[str, str] | None = None) -> UserIdSealer | None:
    """The sealer a server uses, or None (pseudonyms only) under the opt-out or with no data key.

    Raises:
        ConfigError: a data key is configured but unusable (one line: what is wrong with it).
    """
    env = os.environ if environ is None else environ
    if pseudonyms_only(env):
        return None
    if DATA_KEY_ENV not in env and not KeyFiles(recdrill_home(env)).data.exists():
        log.warning(
            "no data key (run 'recdrill keys init' or set %s): feedback keeps pseudonyms only, "
            "no recoverable user ids",
            DATA_KEY_ENV,
        )
        return None
    try:
        return UserIdSealer(recdrill_home(env), env)
    except KeyMaterialError as exc:
        raise ConfigError(
            f"unusable data key for feedback user ids ({exc}); fix it, or set "
            f"{PSEUDONYMS_ONLY_ENV}=1 to store pseudonyms only"
        ) from None


def reencrypt_feedback(db_path: str | Path, keyring: DataKeyring, new_key: DataKey) -> int:
    """Re-seal every recoverable user id of the log at ``db_path`` under ``new_key``, in one
    transaction (all rows or none); returns how many rows changed. Rows already under ``new_key``
    (an interrupted rotation run again) are left alone.

    Raises:
        ConfigError: ``db_path`` is not a feedback log.
        KeyMaterialError: a row does not decrypt under ``keyring`` (nothing is changed).
    """
    path = Path(db_path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such feedback database")
    try:
        connection = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=30.0, isolation_level=None)
    except sqlite3.Error as exc:
        raise ConfigError(f"{path}: cannot open the feedback database: {exc}") from None
    with contextlib.closing(connection):
        try:
            with transaction(connection):  # the server's writers wait for this commit
                changed = _reseal_rows(connection, path, keyring, new_key)
        except sqlite3.Error as exc:
            raise ConfigError(f"{path}: cannot re-encrypt the feedback database: {exc}") from None
    return changed


def _reseal_rows(connection: sqlite3.Connection, path: Path, keyring: DataKeyring, new_key: DataKey) -> int:
    columns = {row[1] for row in connection.execute("PRAGMA table_info(feedback)")}
    if not columns:
        raise ConfigError(f"{path}: not a recdrill feedback log (no feedback table)")
    if "user_id_sealed" not in columns:
        return 0  # written before ids were sealed: nothing to re-encrypt
    rows = connection.execute(
        "SELECT id, user_id_sealed, user_id_key FROM feedback "
        "WHERE user_id_sealed IS NOT NULL AND user_id_key IS NOT ?",
        (new_key.id,),
    ).fetchall()
    updates = [
        (seal(new_key, unseal(keyring, blob, kid, rid), rid), new_key.id, rid) for rid, blob, kid in rows
    ]
    connection.executemany("UPDATE feedback SET user_id_sealed = ?, user_id_key = ? WHERE id = ?", updates)
    return len(updates)
