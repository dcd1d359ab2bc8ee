"""``recdrill keys init`` and ``keys rotate-data-key``: key files made once, paths and ids, never keys."""

from __future__ import annotations

import csv
import stat
from pathlib import Path

import pytest

from recdrill.cli import cli, main
from recdrill.registry.keys import KeyFiles, load_data_keyring
from recdrill.serving.feedback.crypto import PSEUDONYMS_ONLY_ENV, UserIdSealer
from recdrill.serving.feedback.log import FeedbackLog
from recdrill.serving.feedback.schema import FeedbackEvent


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["keys", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_keys_group_holds_key_material_api_key_and_tls_commands() -> None:
    group = cli.commands["keys"]
    assert set(getattr(group, "commands", {})) == {
        "init",
        "rotate-data-key",
        "create",
        "revoke",
        "list",
        "audit",
        "tls-selfsigned",
    }


def test_init_creates_the_four_key_files_private_and_prints_their_paths(
    cli_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "init")
    files = KeyFiles(cli_home)
    made = [files.signing, files.signing_public, files.data, files.watermark]
    assert code == 0 and out.splitlines() == [f"created {path}" for path in made]
    assert "RECDRILL_SIGNING_KEY / RECDRILL_DATA_KEY, when set, take precedence" in err
    for secret in (files.signing, files.data, files.watermark):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
        assert secret.read_text().strip() not in out + err


def test_init_again_leaves_existing_keys_unchanged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "elsewhere"
    assert run(capsys, "init", "--home", str(home))[0] == 0
    before = {path: path.read_bytes() for path in (home / "keys").iterdir()}
    code, out, _ = run(capsys, "init", "--home", str(home))
    assert code == 0 and out == f"keys already present in {home / 'keys'} (left unchanged)\n"
    assert {path: path.read_bytes() for path in (home / "keys").iterdir()} == before
    assert not (tmp_path / "home").exists()  # --home, not RECDRILL_HOME


def test_init_replaces_only_a_missing_file(cli_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "init")
    files = KeyFiles(cli_home)
    signing = files.signing.read_bytes()
    files.data.unlink()
    code, out, _ = run(capsys, "init")
    assert code == 0 and out == f"created {files.data}\n"
    assert files.signing.read_bytes() == signing


def test_rotate_without_keys_exits_6_with_one_line(
    cli_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "rotate-data-key")
    assert (code, out) == (6, "")
    assert err == f"recdrill: error: {KeyFiles(cli_home).data}: no such key file; run 'recdrill keys init'\n"


def test_rotate_replaces_the_data_key_and_prints_only_its_id(
    cli_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "init")
    old = load_data_keyring(cli_home).current
    code, out, err = run(capsys, "rotate-data-key")
    new = load_data_keyring(cli_home).current
    assert code == 0 and new.id != old.id
    assert out == f"re-encrypted 0 artifact(s); data key is now {new.id}\n"
    for key in (old, new):
        assert KeyFiles(cli_home).data.read_text().strip() not in out + err
        assert key.key.hex() not in out + err


def test_rotate_a_missing_feedback_db_is_a_usage_error(
    cli_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "init")
    before = KeyFiles(cli_home).data.read_bytes()
    code, _, err = run(capsys, "rotate-data-key", "--feedback-db", str(tmp_path / "absent.db"))
    assert code == 2 and "absent.db' does not exist" in err
    assert KeyFiles(cli_home).data.read_bytes() == before  # nothing rotated


def test_rotate_with_a_feedback_db_reseals_its_user_ids(
    cli_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(PSEUDONYMS_ONLY_ENV, raising=False)
    run(capsys, "init")
    db = tmp_path / "state" / "feedback.db"
    db.parent.mkdir()
    log = FeedbackLog(db, sealer=UserIdSealer(cli_home))
    for i in range(4):
        log.append(FeedbackEvent(f"shopper-{i}", f"SKU-{i}", "click", 1_700_000_000.0 + i))
    log.close()
    old = load_data_keyring(cli_home).current.id
    code, out, _ = run(capsys, "rotate-data-key", "--feedback-db", str(db))
    new = load_data_keyring(cli_home).current.id
    assert code == 0 and out.splitlines() == [
        f"re-encrypted 0 artifact(s); data key is now {new}",
        f"re-encrypted the user ids of 4 feedback row(s) in {db}",
    ]
    assert old != new
    # The rows now open under the new key only: the old one is retired.
    export = tmp_path / "revealed.csv"
    assert (
        main(["feedback", "export", "--state-dir", str(db.parent), "--out", str(export), "--reveal-users"])
        == 0
    )
    with export.open() as handle:
        assert [row["raw_user_id"] for row in csv.DictReader(handle)] == [f"shopper-{i}" for i in range(4)]
