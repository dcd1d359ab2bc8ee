"""Sealed raw user ids: AES-GCM bound to the row, the sealer a server loads, and re-encryption on rotation."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from pathlib import Path

import pytest

from recdrill._home import HOME_ENV, write_private
from recdrill.errors import ConfigError, KeyMaterialError
from recdrill.registry.keys import DATA_KEY_ENV, DataKey, DataKeyring, KeyFiles, encode_data_key, init_keys
from recdrill.serving.feedback.crypto import (
    PSEUDONYMS_ONLY_ENV,
    SEALED_COLUMNS,
    UserIdSealer,
    associated_data,
    load_user_id_sealer,
    pseudonyms_only,
    reencrypt_feedback,
    seal,
    unseal,
)
from recdrill.serving.feedback.schema import FeedbackEvent, insert_event, open_for_writing

OLD = DataKey(b"\x11" * 32, "old key file")
NEW = DataKey(b"\x22" * 32, "new key file")


def write_log(path: Path, raw_ids: list[str | None], key: DataKey = OLD) -> None:
    """Rows 1.. for these raw ids, each sealed under ``key`` (None: pseudonyms only)."""
    connection = open_for_writing(path, busy_timeout_s=1.0)
    for row, raw in enumerate(raw_ids, start=1):
        sealed = None if raw is None else (seal(key, raw, row), key.id)
        insert_event(connection, FeedbackEvent(f"u_{row:016x}", "SKU-1", "click", 1.0), 2.0, row, sealed)
    connection.close()


def sealed_rows(path: Path) -> list[tuple[int, bytes | None, str | None]]:
    with contextlib.closing(sqlite3.connect(path)) as connection:
        return connection.execute(
            "SELECT id, user_id_sealed, user_id_key FROM feedback ORDER BY id"
        ).fetchall()


def test_seal_and_unseal_round_trip_with_a_fresh_nonce_each_time() -> None:
    first, second = seal(OLD, "U-42", 7), seal(OLD, "U-42", 7)
    assert first != second and b"U-42" not in first
    assert unseal(DataKeyring(OLD), first, OLD.id, 7) == unseal(DataKeyring(OLD), second, OLD.id, 7) == "U-42"
    assert unseal(DataKeyring(NEW, pending=OLD), first, OLD.id, 7) == "U-42"  # mid-rotation
    assert associated_data(7) == b"recdrill-feedback-user:7"


def test_a_sealed_id_copied_onto_another_row_does_not_authenticate() -> None:
    blob = seal(OLD, "U-42", 7)
    with pytest.raises(KeyMaterialError, match="feedback row 8: its encrypted user id does not authenticate"):
        unseal(DataKeyring(OLD), blob, OLD.id, 8)
    altered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(KeyMaterialError, match="altered, or copied from another row"):
        unseal(DataKeyring(OLD), altered, OLD.id, 7)


def test_a_row_under_a_key_the_keyring_lacks_names_both_keys_never_their_bytes() -> None:
    blob = seal(OLD, "U-42", 1)
    with pytest.raises(KeyMaterialError, match="wrong data key") as caught:
        unseal(DataKeyring(NEW), blob, OLD.id, 1)
    message = str(caught.value)
    assert OLD.id in message and NEW.id in message and "new key file" in message
    assert repr(OLD.key) not in message and OLD.key.hex() not in message
    with pytest.raises(KeyMaterialError, match="under data key None"):
        unseal(DataKeyring(NEW), blob, None, 1)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1", True),
        ("true", True),
        (" YES ", True),
        ("on", True),
        ("", False),
        ("0", False),
        ("no", False),
        ("off", False),
    ],
)
def test_pseudonyms_only_reads_the_opt_out_variable(value: str, expected: bool) -> None:
    assert pseudonyms_only({PSEUDONYMS_ONLY_ENV: value}) is expected
    assert pseudonyms_only({}) is False


def test_the_opt_out_keeps_pseudonyms_only_even_with_a_key(tmp_path: Path) -> None:
    init_keys(tmp_path)
    assert load_user_id_sealer({HOME_ENV: str(tmp_path), PSEUDONYMS_ONLY_ENV: "1"}) is None


def test_without_a_data_key_the_server_warns_and_keeps_pseudonyms_only(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="recdrill.serving.feedback.crypto"):
        assert load_user_id_sealer({HOME_ENV: str(tmp_path / "empty")}) is None
    assert "no data key" in caplog.text and "feedback keeps pseudonyms only" in caplog.text


def test_a_sealer_seals_under_the_current_key_and_prefers_a_pending_one(tmp_path: Path) -> None:
    init_keys(tmp_path)
    environ = {HOME_ENV: str(tmp_path)}
    sealer = load_user_id_sealer(environ)
    assert isinstance(sealer, UserIdSealer) and sealer.home == tmp_path
    current = sealer.sealing_key()
    assert current.source == str(KeyFiles(tmp_path).data)
    write_private(KeyFiles(tmp_path).pending_data, encode_data_key(NEW.key))  # a rotation under way
    assert sealer.sealing_key().id == NEW.id  # re-read for every batch
    assert sealer.keyring().current.id == current.id


def test_an_unusable_data_key_stops_the_server_with_one_line(tmp_path: Path) -> None:
    init_keys(tmp_path)
    KeyFiles(tmp_path).data.chmod(0o644)
    with pytest.raises(ConfigError, match=r"unusable data key for feedback user ids .*readable by others"):
        load_user_id_sealer({HOME_ENV: str(tmp_path)})
    secret = "bm90IGEgMzIgYnl0ZSBrZXk="
    with pytest.raises(ConfigError, match=f"data key must be 32 bytes.*{PSEUDONYMS_ONLY_ENV}=1") as caught:
        load_user_id_sealer({HOME_ENV: str(tmp_path / "other"), DATA_KEY_ENV: secret})
    assert secret not in str(caught.value)
    with pytest.raises(KeyMaterialError, match="no such key file"):
        UserIdSealer(tmp_path / "nowhere", {})


def test_reencrypt_moves_every_sealed_row_to_the_new_key_once(tmp_path: Path) -> None:
    db = tmp_path / "feedback.db"
    write_log(db, ["U-1", None, "U-3"])
    keyring = DataKeyring(OLD, pending=NEW)
    assert reencrypt_feedback(db, keyring, NEW) == 2
    rows = sealed_rows(db)
    assert [(row, key) for row, _, key in rows] == [(1, NEW.id), (2, None), (3, NEW.id)]
    assert [unseal(DataKeyring(NEW), blob, key, row) for row, blob, key in rows if blob is not None] == [
        "U-1",
        "U-3",
    ]
    assert reencrypt_feedback(db, keyring, NEW) == 0  # an interrupted rotation run again: nothing left


def test_reencrypt_changes_nothing_when_one_row_does_not_decrypt(tmp_path: Path) -> None:
    db = tmp_path / "feedback.db"
    write_log(db, ["U-1", "U-2"])
    stranger = DataKey(b"\x33" * 32, "elsewhere")
    connection = open_for_writing(db, busy_timeout_s=1.0)
    insert_event(
        connection, FeedbackEvent("u", "i", "view", 1.0), 2.0, 3, (seal(stranger, "U-3", 3), stranger.id)
    )
    connection.close()
    before = sealed_rows(db)
    with pytest.raises(KeyMaterialError, match=r"feedback row 3: .*wrong data key"):
        reencrypt_feedback(db, DataKeyring(OLD, pending=NEW), NEW)
    assert sealed_rows(db) == before


def test_reencrypt_refuses_what_is_not_a_feedback_log(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such feedback database"):
        reencrypt_feedback(tmp_path / "absent.db", DataKeyring(OLD), NEW)
    other = tmp_path / "other.db"
    with contextlib.closing(sqlite3.connect(other)) as connection:
        connection.execute("CREATE TABLE other (x)")
    with pytest.raises(ConfigError, match="not a recdrill feedback log"):
        reencrypt_feedback(other, DataKeyring(OLD), NEW)
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"\x00" * 4096)
    with pytest.raises(ConfigError, match="cannot re-encrypt the feedback database"):
        reencrypt_feedback(garbage, DataKeyring(OLD), NEW)


def test_a_log_from_before_sealed_ids_has_nothing_to_reencrypt(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    with contextlib.closing(sqlite3.connect(db)) as connection:
        connection.execute("CREATE TABLE feedback (id INTEGER PRIMARY KEY, user_id TEXT)")
        connection.execute("INSERT INTO feedback VALUES (1, 'u_1')")
        connection.commit()
    assert reencrypt_feedback(db, DataKeyring(OLD), NEW) == 0
    assert SEALED_COLUMNS == (("user_id_sealed", "BLOB"), ("user_id_key", "TEXT"))
