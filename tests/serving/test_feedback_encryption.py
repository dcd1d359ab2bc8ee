"""Raw user ids in the feedback log: only ever on disk encrypted, recoverable with the data key.

A real server (its own ``RECDRILL_HOME`` with keys from ``recdrill keys init``) takes posts over
HTTP; the test reads the SQLite file and its WAL byte for byte, exports with ``--reveal-users``
under the right key, a wrong key and after ``keys rotate-data-key --feedback-db``, and moves a
ciphertext between rows by hand.
"""

from __future__ import annotations

import base64
import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest

from recdrill._home import HOME_ENV
from recdrill.cli import main
from recdrill.registry.keys import DATA_KEY_ENV, KeyFiles, init_keys, load_data_keyring
from recdrill.serving.feedback.crypto import PSEUDONYMS_ONLY_ENV, UserIdSealer
from recdrill.serving.feedback.log import FeedbackLog
from recdrill.serving.feedback.schema import FeedbackEvent
from recdrill.serving.runtime.local_process import ServerProcess

SHOP = "shopsim:n_items=300,n_users=200,n_events=4000"
USERS = [f"customer-{i:04d}-zq" for i in range(25)]  # distinctive: found in the bytes if stored raw


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A registry home with keys (data key in a 0600 file), opted in to sealing user ids."""
    folder = tmp_path / "home"
    monkeypatch.setenv(HOME_ENV, str(folder))
    monkeypatch.delenv(PSEUDONYMS_ONLY_ENV, raising=False)
    monkeypatch.delenv(DATA_KEY_ENV, raising=False)
    init_keys(folder)
    return folder


@pytest.fixture
def log(tmp_path: Path, home: Path) -> Iterator[FeedbackLog]:
    (tmp_path / "state").mkdir()
    opened = FeedbackLog(tmp_path / "state" / "feedback.db", sealer=UserIdSealer(home))
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("model") / "itemknn"
    assert main(["train", "--data", SHOP, "--model", "itemknn", "--out", str(out)]) == 0
    return out


def post_all(log: FeedbackLog) -> dict[int, str]:
    """Row id -> raw user id, one event per user (plus a retried event id, stored once)."""
    rows = {log.append(FeedbackEvent(u, f"SKU-{i}", "click", 1.0 + i)): u for i, u in enumerate(USERS)}
    again = log.append(FeedbackEvent(USERS[0], "SKU-0", "click", 1.0, event_id="e-1"))
    assert log.append(FeedbackEvent(USERS[0], "SKU-0", "click", 1.0, event_id="e-1")) == again
    rows[again] = USERS[0]
    return rows


def reveal(state: Path, out: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    """``feedback export --reveal-users``: exit code and stderr lines (the file is read by the caller)."""
    code = main(["feedback", "export", "--state-dir", str(state), "--out", str(out), "--reveal-users"])
    return code, capsys.readouterr().err.strip().splitlines()


def revealed(out: Path) -> dict[int, str]:
    return {r["id"]: r["raw_user_id"] for r in pq.read_table(out).to_pylist()}


def sealed_column(db: Path) -> dict[int, tuple[bytes, str]]:
    with contextlib.closing(sqlite3.connect(db)) as connection:
        return {
            r: (bytes(b), k)
            for r, b, k in connection.execute("SELECT id, user_id_sealed, user_id_key FROM feedback")
        }


def assert_no_raw_ids(folder: Path, *, wal: bool) -> None:
    files = sorted(folder.glob("feedback.db*"))
    assert wal <= any(f.name.endswith("-wal") for f in files), files  # the WAL too, not just the main file
    for path in files:
        data = path.read_bytes()
        for user in USERS:
            assert user.encode() not in data and user.encode("utf-16-le") not in data, (path, user)


def test_a_served_log_holds_no_raw_user_id_and_the_key_recovers_every_one(
    model_dir: Path, home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    with (
        ServerProcess(model_dir, state, workers=2) as server,
        httpx.Client(base_url=server.url, timeout=30) as http,
    ):
        ids = {}
        for i, user in enumerate(USERS):
            response = http.post(
                "/v1/feedback", json={"user_id": user, "item_id": f"SKU-{i}", "event": "view"}
            )
            assert response.status_code == 200, response.text
            ids[response.json()["id"]] = user
        assert_no_raw_ids(state, wal=True)  # while the server runs: rows still in the WAL
    assert_no_raw_ids(state, wal=False)  # after the checkpoint at shutdown
    code, err = reveal(state, tmp_path / "out.parquet", capsys)
    assert code == 0, err
    assert revealed(tmp_path / "out.parquet") == ids
    assert all(r["user_id"].startswith("u_") for r in pq.read_table(tmp_path / "out.parquet").to_pylist())
    # Without --reveal-users the export has pseudonyms only, as before.
    assert main(["feedback", "export", "--state-dir", str(state), "--out", str(tmp_path / "plain.csv")]) == 0
    text = (tmp_path / "plain.csv").read_text()
    assert "raw_user_id" not in text and not any(u in text for u in USERS)


def test_without_a_data_key_feedback_keeps_pseudonyms_only_and_a_bad_key_stops_serve(
    model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    empty_home = tmp_path / "empty-home"
    monkeypatch.setenv(HOME_ENV, str(empty_home))
    monkeypatch.delenv(PSEUDONYMS_ONLY_ENV, raising=False)
    monkeypatch.delenv(DATA_KEY_ENV, raising=False)
    # No key anywhere (a fresh machine): nothing to encrypt under, so nothing recoverable is stored.
    (tmp_path / "state").mkdir()
    log = FeedbackLog(tmp_path / "state" / "feedback.db")
    row = log.append(FeedbackEvent(USERS[0], "SKU-1", "view", 1.0))
    log.close()
    assert _nulls(log.path) == [(row, None, None)]
    assert USERS[0].encode() not in log.path.read_bytes()

    # A key that is there but unusable is an error, before any worker starts.
    monkeypatch.setenv(DATA_KEY_ENV, "not-a-key")
    code = main(["serve", "--model", str(model_dir), "--state-dir", str(tmp_path / "s2"), "--port", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "unusable data key" in err[0], err
    assert "not-a-key" not in err[0]
    assert not (tmp_path / "s2" / "feedback.db").exists()


def _nulls(db: Path) -> list[tuple[int, object, object]]:
    with contextlib.closing(sqlite3.connect(db)) as connection:
        return list(connection.execute("SELECT id, user_id_sealed, user_id_key FROM feedback"))


def test_a_wrong_key_fails_naming_the_problem_not_the_key(
    log: FeedbackLog, home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    post_all(log)
    wrong = base64.b64encode(bytes(range(32))).decode()
    monkeypatch.setenv(DATA_KEY_ENV, wrong)
    out = log.path.parent / "out.parquet"
    code, err = reveal(log.path.parent, out, capsys)
    assert code != 0 and len(err) == 1, err
    assert "wrong data key" in err[0] and "feedback row 1" in err[0]
    right = KeyFiles(home).data.read_text().strip()
    assert wrong not in err[0] and right not in err[0]
    assert not out.exists()  # nothing half-revealed is left behind


def test_a_ciphertext_copied_to_another_row_does_not_decrypt(
    log: FeedbackLog, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = post_all(log)
    first, second = sorted(rows)[:2]
    blob, key = sealed_column(log.path)[first]
    with contextlib.closing(sqlite3.connect(log.path)) as connection, connection:
        connection.execute(
            "UPDATE feedback SET user_id_sealed = ?, user_id_key = ? WHERE id = ?", (blob, key, second)
        )
    code, err = reveal(log.path.parent, log.path.parent / "out.parquet", capsys)
    assert code != 0 and len(err) == 1, err
    assert f"feedback row {second}" in err[0] and "copied from another row" in err[0]


def test_rotation_reencrypts_every_row_in_one_transaction(
    log: FeedbackLog, home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = post_all(log)
    before = sealed_column(log.path)
    old_key = KeyFiles(home).data.read_text().strip()
    rotate = ["keys", "rotate-data-key", "--home", str(home), "--feedback-db", str(log.path)]
    assert main(rotate) == 0
    assert f"user ids of {len(rows)} feedback row(s)" in capsys.readouterr().out
    new_id = load_data_keyring(home).current.id
    after = sealed_column(log.path)
    assert after.keys() == before.keys()
    assert all(after[r][0] != before[r][0] and after[r][1] == new_id != before[r][1] for r in after)
    # The writer, still open, picks up the new key for its next batch.
    late = log.append(FeedbackEvent("late-user-zq", "SKU-9", "view", 9.0))
    rows[late] = "late-user-zq"
    assert sealed_column(log.path)[late][1] == new_id
    out = log.path.parent / "out.parquet"
    assert reveal(log.path.parent, out, capsys)[0] == 0
    assert revealed(out) == rows
    monkeypatch.setenv(DATA_KEY_ENV, old_key)  # the retired key opens nothing any more
    code, err = reveal(log.path.parent, out, capsys)
    assert code != 0 and "wrong data key" in err[0]


def test_a_failed_rotation_changes_no_row_and_keeps_the_old_key(
    log: FeedbackLog, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = post_all(log)
    last = max(rows)
    blob, _ = sealed_column(log.path)[last]
    flipped = blob[:-1] + bytes([blob[-1] ^ 1])  # one bit of the tag
    with contextlib.closing(sqlite3.connect(log.path)) as connection, connection:
        connection.execute("UPDATE feedback SET user_id_sealed = ? WHERE id = ?", (flipped, last))
    before, old_id = sealed_column(log.path), load_data_keyring(home).current.id
    assert main(["keys", "rotate-data-key", "--home", str(home), "--feedback-db", str(log.path)]) != 0
    assert f"feedback row {last}" in capsys.readouterr().err
    assert sealed_column(log.path) == before  # not one row re-encrypted: all or nothing
    assert load_data_keyring(home).current.id == old_id
