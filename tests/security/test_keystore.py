"""The key store: only hashes on disk, one live key per name, revocation seen by other processes."""

from __future__ import annotations

import hashlib
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from recdrill.errors import ConfigError, KeyNameError, KeyStoreError
from recdrill.security.keystore import KeyStore, default_key_store_path, served_key_store_path
from recdrill.security.roles import Role


@pytest.fixture
def store(tmp_path: Path) -> Iterator[KeyStore]:
    opened = KeyStore.open(tmp_path / "home" / "keys.db", create=True)
    yield opened
    opened.close()


def test_a_key_authenticates_as_its_name_and_role_and_is_stored_only_as_a_hash(store: KeyStore) -> None:
    key = store.create("shop-frontend", "reader")
    assert key.startswith("rdk_") and len(key) >= 4 + 43  # 256 bits of URL-safe base64
    found = store.authenticate(key)
    assert found is not None and (found.name, found.role, found.revoked) == (
        "shop-frontend",
        Role.READER,
        False,
    )
    assert store.authenticate(key + "x") is None and store.authenticate("") is None
    store.close()
    raw = b"".join(p.read_bytes() for p in store.path.parent.glob("keys.db*"))
    assert key.encode() not in raw
    assert hashlib.sha256(key.encode()).hexdigest().encode() in raw


def test_the_store_file_and_its_folder_are_private(store: KeyStore) -> None:
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.path.parent.stat().st_mode) == 0o700


def test_keys_are_random_and_names_are_unique_among_live_keys(store: KeyStore) -> None:
    first = store.create("ops", Role.OPERATOR)
    with pytest.raises(KeyNameError, match="already named 'ops'"):
        store.create("ops", Role.ADMIN)
    revoked = store.revoke("ops")
    assert revoked.revoked and revoked.role is Role.OPERATOR
    second = store.create("ops", Role.ADMIN)  # a revoked name may be issued again
    assert second != first
    assert [(k.name, k.role, k.revoked) for k in store.list()] == [
        ("ops", Role.OPERATOR, True),
        ("ops", Role.ADMIN, False),
    ]
    old, new = store.authenticate(first), store.authenticate(second)
    assert old is not None and old.revoked and new is not None and not new.revoked


@pytest.mark.parametrize("name", ["", "-lead", "has space", "a:b", "x" * 65, "semi;colon"])
def test_malformed_names_are_refused(store: KeyStore, name: str) -> None:
    with pytest.raises(KeyNameError, match="bad key name"):
        store.create(name, Role.READER)


def test_unknown_roles_bad_limits_and_unknown_names_are_refused(store: KeyStore) -> None:
    with pytest.raises(ConfigError, match=r"unknown role 'root'.*reader, writer, operator, admin"):
        store.create("x", "root")
    with pytest.raises(ConfigError, match="rate limit must be positive"):
        store.create("x", Role.READER, rate_per_s=0)
    with pytest.raises(KeyNameError, match="no live key named 'ghost'"):
        store.revoke("ghost")


def test_a_revocation_by_another_connection_is_seen_at_the_next_lookup(store: KeyStore) -> None:
    key = store.create("ci", Role.WRITER)
    found = store.authenticate(key)
    assert found is not None and not found.revoked  # now cached in this connection
    with KeyStore.open(store.path) as other:  # as `recdrill keys revoke` in another process
        other.revoke("ci")
    found = store.authenticate(key)
    assert found is not None and found.revoked


def test_opening_a_missing_or_foreign_store_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(KeyStoreError, match="no such key store"):
        KeyStore.open(tmp_path / "absent.db")
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(KeyStoreError, match="not a usable key store"):
        KeyStore.open(junk)


def test_which_store_the_cli_and_a_server_use(tmp_path: Path) -> None:
    home = {"RECDRILL_HOME": str(tmp_path)}
    assert default_key_store_path(home) == tmp_path / "keys.db"
    assert served_key_store_path(home) is None  # no store yet: keys are not enforced
    KeyStore.open(tmp_path / "keys.db", create=True).close()
    assert served_key_store_path(home) == tmp_path / "keys.db"  # the first key turns checks on
    explicit = {**home, "RECDRILL_KEY_STORE": str(tmp_path / "typo.db")}
    with pytest.raises(ConfigError, match=r"typo\.db: no such key store"):
        served_key_store_path(explicit)  # a typo must not leave a server open
