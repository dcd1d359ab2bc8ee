"""API keys in SQLite: only a hash of each key is stored, with its role, name and lifetimes.

Why SHA-256 and no slow KDF (bcrypt, scrypt, Argon2): those make guessing a low-entropy *password*
from its hash slow. A key made here is 256 random bits (``secrets.token_urlsafe(32)``), so there is
nothing to guess: 2**256 SHA-256 evaluations is out of reach however fast each one is. A fast,
unsalted hash also lets the server find a key by its hash in one dictionary lookup per request,
where a salted KDF would cost ~100 ms of CPU per request and per stored key.

Constant time: the presented key is hashed; a dictionary finds candidates by the first 64 bits of
that digest (a variable-time step, but what it could leak is about a digest, which says nothing
usable about any key: pre-image resistance), and each candidate's full stored digest is compared
with :func:`hmac.compare_digest`.

Revocation reaches a running server at its next request: each lookup asks SQLite whether another
connection has written since (``PRAGMA data_version``, a few microseconds) and reloads if so.

Example::

    >>> import tempfile, pathlib
    >>> store = KeyStore.open(pathlib.Path(tempfile.mkdtemp()) / "keys.db", create=True)
    >>> key = store.create("ci-bot", Role.READER)
    >>> store.authenticate(key).role, store.authenticate("rdk_guess")
    (<Role.READER: 'reader'>, None)
    >>> store.revoke("ci-bot").revoked, store.authenticate(key).revoked
    (True, True)
    >>> store.close()
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from recdrill._home import API_KEY_STORE_FILE, recdrill_home, touch_private
from recdrill._sqlite import switch_to_wal
from recdrill.errors import ConfigError, KeyNameError, KeyStoreError
from recdrill.security.roles import Role

ENV_KEY_STORE = "RECDRILL_KEY_STORE"
KEY_PREFIX = "rdk_"  # lets secret scanners and people recognise a leaked recdrill key
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    key_sha256 TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    created_at REAL NOT NULL,
    revoked_at REAL,
    rate_per_s REAL,
    burst INTEGER
);
-- One live key per name; a revoked name may be issued again.
CREATE UNIQUE INDEX IF NOT EXISTS live_key_name ON api_keys (name) WHERE revoked_at IS NULL;
"""
_INDEX_CHARS = 16  # the dictionary finds a key by 64 bits of its digest; the rest is compared
_COLUMNS = "name, key_sha256, role, created_at, revoked_at, rate_per_s, burst"


def default_key_store_path(env: Mapping[str, str] | None = None) -> Path:
    """Where the CLI keeps keys: ``RECDRILL_KEY_STORE`` if set, else ``RECDRILL_HOME/keys.db``."""
    env = os.environ if env is None else env
    explicit = env.get(ENV_KEY_STORE)
    return Path(explicit).expanduser() if explicit else recdrill_home(env) / API_KEY_STORE_FILE


def served_key_store_path(env: Mapping[str, str] | None = None) -> Path | None:
    """The key store a server started with ``env`` enforces, or None for none.

    ``RECDRILL_KEY_STORE`` names one explicitly (it must exist: a typo must not open the server);
    otherwise ``RECDRILL_HOME/keys.db`` is used when it exists, so creating the first key with
    ``recdrill keys create`` is what turns key checks on.
    """
    env = os.environ if env is None else env
    path = default_key_store_path(env)
    if env.get(ENV_KEY_STORE) and not path.is_file():
        raise ConfigError(
            f"{ENV_KEY_STORE}={path}: no such key store (create keys with 'recdrill keys create')"
        )
    return path if path.is_file() else None


def hash_key(key: str) -> str:
    """The hex SHA-256 of ``key``, the only form in which a key is stored."""
    return hashlib.sha256(key.encode()).hexdigest()


def generate_key() -> str:
    """A new key: ``rdk_`` and 256 random bits, URL-safe base64."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class ApiKey:
    """What the store knows of a key, without the key or its hash (safe to print and log).

    ``rate_per_s`` and ``burst`` override the server's default rate limit for this key when set.
    """

    name: str
    role: Role
    created_at: float
    revoked_at: float | None = None
    rate_per_s: float | None = None
    burst: int | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


class KeyStore:
    """The ``api_keys`` table of one SQLite file, safe to share between processes and threads."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self.path = path
        self._connection = connection
        self._lock = threading.Lock()
        self._by_prefix: dict[str, list[tuple[str, ApiKey]]] = {}
        self._data_version = -1

    @classmethod
    def open(cls, path: str | Path, *, create: bool = False) -> KeyStore:
        """Open the store at ``path``; with ``create``, make it (mode 0600, folder 0700) if missing.

        Raises:
            KeyStoreError: the file is missing (without ``create``) or is not a key store.
        """
        path = Path(path)
        if not path.is_file():
            if not create:
                raise KeyStoreError(f"{path}: no such key store (create a key with 'recdrill keys create')")
            touch_private(path)
        try:
            connection = sqlite3.connect(path, check_same_thread=False, timeout=5.0)
            switch_to_wal(connection)
            connection.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise KeyStoreError(f"{path}: not a usable key store: {exc}") from exc
        return cls(connection, path)

    def create(
        self, name: str, role: Role | str, *, rate_per_s: float | None = None, burst: int | None = None
    ) -> str:
        """Make a key named ``name`` with ``role`` and return it: the only time it is ever seen.

        Raises:
            KeyNameError: ``name`` is malformed or a live key already has it.
            ConfigError: unknown role, or a rate limit that is not positive.
        """
        if not NAME_PATTERN.fullmatch(name):
            raise KeyNameError(
                f"bad key name {name!r}: use 1-64 letters, digits, '.', '_' or '-', starting alphanumeric"
            )
        role = Role.parse(role)
        if (rate_per_s is not None and rate_per_s <= 0) or (burst is not None and burst < 1):
            raise ConfigError(f"rate limit must be positive, got rate={rate_per_s!r} burst={burst!r}")
        key = generate_key()
        try:
            with self._lock, self._connection:
                self._connection.execute(
                    f"INSERT INTO api_keys ({_COLUMNS}) VALUES (?, ?, ?, ?, NULL, ?, ?)",
                    (name, hash_key(key), role.value, time.time(), rate_per_s, burst),
                )
        except sqlite3.IntegrityError:
            raise KeyNameError(f"a live key is already named {name!r}: revoke it first") from None
        self._data_version = -1  # our own writes do not change our connection's data_version
        return key

    def revoke(self, name: str) -> ApiKey:
        """Revoke the live key named ``name``; raises :class:`KeyNameError` when there is none."""
        with self._lock, self._connection:
            cursor = self._connection.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
                (time.time(), name),
            )
        if cursor.rowcount == 0:
            raise KeyNameError(f"no live key named {name!r}")
        self._data_version = -1
        revoked = [k for k in self.list() if k.name == name and k.revoked]
        return max(revoked, key=lambda k: k.revoked_at or 0.0)

    def list(self) -> list[ApiKey]:
        """Every key ever made, revoked ones included, oldest first."""
        with self._lock:
            rows = self._connection.execute(f"SELECT {_COLUMNS} FROM api_keys ORDER BY id").fetchall()
        return [_record(row)[1] for row in rows]

    def authenticate(self, key: str) -> ApiKey | None:
        """The record of ``key`` (check ``revoked``), or None when no key hashes to it."""
        digest = hash_key(key)
        with self._lock:
            self._refresh()
            candidates = self._by_prefix.get(digest[:_INDEX_CHARS], ())
        for stored, record in candidates:
            if hmac.compare_digest(stored, digest):
                return record
        return None

    def _refresh(self) -> None:
        try:
            version = int(self._connection.execute("PRAGMA data_version").fetchone()[0])
            if version == self._data_version:
                return
            rows = self._connection.execute(f"SELECT {_COLUMNS} FROM api_keys").fetchall()
        except sqlite3.Error as exc:
            raise KeyStoreError(f"{self.path}: cannot read keys: {exc}") from exc
        by_prefix: dict[str, list[tuple[str, ApiKey]]] = {}
        for digest, record in map(_record, rows):
            by_prefix.setdefault(digest[:_INDEX_CHARS], []).append((digest, record))
        self._by_prefix = by_prefix
        self._data_version = version

    def close(self) -> None:
        with self._lock:
            self._connection.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _record(row: tuple[Any, ...]) -> tuple[str, ApiKey]:
    name, digest, role, created, revoked, rate, burst = row
    return str(digest), ApiKey(str(name), Role(role), float(created), revoked, rate, burst)
