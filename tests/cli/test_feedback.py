"""``recdrill feedback export``: ``--since`` parsing, the summary line, and revealing user ids."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from recdrill.cli import main
from recdrill.cli.feedback import parse_since
from recdrill.errors import ConfigError
from recdrill.registry.keys import KeyFiles, init_keys
from recdrill.serving.feedback.crypto import PSEUDONYMS_ONLY_ENV, UserIdSealer
from recdrill.serving.feedback.log import FeedbackLog
from recdrill.serving.feedback.schema import FeedbackEvent

T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1700000000", T0),
        ("1700000000.5", T0 + 0.5),
        ("2023-11-14T22:13:20", T0),  # no zone: UTC
        ("2023-11-14T22:13:20Z", T0),
        ("2023-11-14T23:13:20+01:00", T0),
        ("2023-11-14", T0 - (22 * 3600 + 13 * 60 + 20)),
    ],
)
def test_parse_since_takes_epoch_seconds_or_iso_8601(text: str, expected: float) -> None:
    assert parse_since(text) == expected


@pytest.mark.parametrize("text", ["yesterday", "", "14/11/2023"])
def test_parse_since_refuses_anything_else_naming_the_value(text: str) -> None:
    with pytest.raises(ConfigError, match=f"--since must be epoch seconds or an ISO 8601 time, got {text!r}"):
        parse_since(text)


def _log(state: Path, sealer: UserIdSealer | None = None, n: int = 6) -> Path:
    state.mkdir(parents=True, exist_ok=True)
    log = FeedbackLog(state / "feedback.db", sealer=sealer)
    for i in range(n):
        log.append(FeedbackEvent(f"shopper-{i}", f"SKU-{i:03d}", "click", T0 + i))
    log.close()
    return state


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def test_export_reports_count_and_withheld_on_stderr_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = _log(tmp_path / "state")
    out = tmp_path / "out.csv"
    assert (
        main(["feedback", "export", "--state-dir", str(state), "--out", str(out), "--since", "1700000002"])
        == 0
    )
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"exported 4 event(s) to {out}; withheld 0 quarantined event(s)\n"
    rows = _rows(out)
    assert [r["item_id"] for r in rows] == ["SKU-002", "SKU-003", "SKU-004", "SKU-005"]
    assert "raw_user_id" not in rows[0] and all(r["user_id"].startswith("u_") for r in rows)
    assert not any("shopper" in value for r in rows for value in r.values())


def test_state_dir_and_out_are_required(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["feedback", "export", "--out", "x.csv"]) == 2
    assert "Missing option '--state-dir'" in capsys.readouterr().err
    assert main(["feedback", "export", "--state-dir", "s"]) == 2
    assert "Missing option '--out'" in capsys.readouterr().err


def test_reveal_users_without_a_data_key_exits_6_and_writes_nothing(
    tmp_path: Path, cli_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = _log(tmp_path / "state")
    out = tmp_path / "revealed.csv"
    assert main(["feedback", "export", "--state-dir", str(state), "--out", str(out), "--reveal-users"]) == 6
    err = capsys.readouterr().err
    assert err == f"recdrill: error: {KeyFiles(cli_home).data}: no such key file; run 'recdrill keys init'\n"
    assert not out.exists()


def test_reveal_users_decrypts_with_the_home_data_key_and_warns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(PSEUDONYMS_ONLY_ENV, raising=False)
    home = tmp_path / "keys-home"  # given with --home: RECDRILL_HOME has no keys
    init_keys(home)
    state = _log(tmp_path / "state", sealer=UserIdSealer(home))
    out = tmp_path / "revealed.csv"
    args = ["feedback", "export", "--state-dir", str(state), "--out", str(out), "--reveal-users"]
    assert main([*args, "--home", str(home)]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"exported 6 event(s) to {out}; withheld 0 quarantined event(s)",
        f"warning: {out} holds raw user ids: keep it private and delete it when done",
    ]
    rows = _rows(out)
    assert [r["raw_user_id"] for r in rows] == [f"shopper-{i}" for i in range(6)]
    assert all(r["user_id"].startswith("u_") for r in rows)  # the pseudonym stays beside it
    assert main(args) == 6  # without --home: RECDRILL_HOME, which has no data key
