"""``recdrill keys create|revoke|list|audit`` through the real CLI: stores, exit codes, one-line errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from recdrill.cli import main
from recdrill.security.audit import AuditLog, PendingAudit
from recdrill.security.keystore import KeyStore
from recdrill.security.roles import Role


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["keys", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_create_prints_only_the_key_on_stdout_into_the_home_store(
    cli_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        capsys, "create", "--name", "ops", "--role", "operator", "--rate", "2.5", "--burst", "4"
    )
    assert code == 0
    key = out.strip()
    assert out == key + "\n" and key.startswith("rdk_")
    store = cli_home / "keys.db"
    assert err == (f"created operator key 'ops' in {store}; keep it now, it cannot be shown again\n")
    with KeyStore.open(store) as keys:
        found = keys.authenticate(key)
    assert found is not None and (found.name, found.role, found.rate_per_s, found.burst) == (
        "ops",
        Role.OPERATOR,
        2.5,
        4,
    )


def test_the_store_option_wins_over_the_environment(
    tmp_path: Path, cli_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from_env, from_option = tmp_path / "env.db", tmp_path / "option.db"
    monkeypatch.setenv("RECDRILL_KEY_STORE", str(from_env))
    assert run(capsys, "create", "--name", "a", "--role", "reader")[0] == 0
    assert run(capsys, "create", "--name", "b", "--role", "reader", "--store", str(from_option))[0] == 0
    assert from_env.is_file() and from_option.is_file() and not (cli_home / "keys.db").exists()
    code, out, _ = run(capsys, "list", "--json")
    assert code == 0 and [k["name"] for k in json.loads(out)] == ["a"]
    code, out, _ = run(capsys, "list", "--json", "--store", str(from_option))
    assert code == 0 and [k["name"] for k in json.loads(out)] == ["b"]


def test_list_without_a_store_is_empty_and_says_so(
    cli_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "list", "--json")
    assert (code, json.loads(out)) == (0, [])
    assert err == f"no keys: there is no key store at {cli_home / 'keys.db'}\n"
    code, out, _ = run(capsys, "list")
    assert (code, out) == (0, "")
    assert not (cli_home / "keys.db").exists()  # listing creates nothing


def test_list_table_shows_limits_and_revocations(capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "create", "--name", "reader-1", "--role", "reader")
    run(capsys, "create", "--name", "writer-1", "--role", "writer", "--rate", "5", "--burst", "3")
    code, _, err = run(capsys, "revoke", "reader-1")
    assert code == 0 and re.fullmatch(r"revoked reader key 'reader-1' in .*keys\.db\n", err)
    code, out, _ = run(capsys, "list")
    rows = [line.split() for line in out.splitlines()]
    assert code == 0 and rows[0] == ["NAME", "ROLE", "CREATED", "REVOKED", "RATE/S", "BURST"]
    assert (
        rows[1][:2] == ["reader-1", "reader"] and rows[1][3] != "-" and rows[1][4:] == ["default", "default"]
    )
    assert rows[2][:2] == ["writer-1", "writer"] and rows[2][3:] == ["-", "5", "3"]
    listed = json.loads(run(capsys, "list", "--json")[1])
    assert set(listed[0]) == {"name", "role", "created_at", "revoked_at", "rate_per_s", "burst"}
    assert listed[0]["revoked_at"] is not None and listed[1]["revoked_at"] is None
    assert (listed[1]["rate_per_s"], listed[1]["burst"]) == (5.0, 3)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["revoke", "nobody"], "keys.db: no such key store"),  # no store at all yet
        (["create", "--name", "dup", "--role", "reader"], "a live key is already named 'dup'"),
    ],
    ids=["revoke-without-store", "create-twice"],
)
def test_key_mistakes_exit_2_with_one_line(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    if args[0] == "create":
        assert run(capsys, *args)[0] == 0
    code, out, err = run(capsys, *args)
    assert (code, out) == (2, "")
    assert err.startswith("recdrill: error: ") and err.count("\n") == 1 and message in err


def test_revoking_an_unknown_name_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "create", "--name", "real", "--role", "admin")
    code, out, err = run(capsys, "revoke", "imaginary")
    assert (code, out) == (2, "")
    assert err == "recdrill: error: no live key named 'imaginary'\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role", "root"], "'root' is not one of"),
        (["--role", "reader", "--rate", "0"], "--rate"),
        (["--role", "reader", "--burst", "0"], "--burst"),
    ],
)
def test_bad_create_options_are_usage_errors(
    args: list[str], message: str, cli_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "create", "--name", "x", *args)
    assert (code, out) == (2, "") and message in err
    assert not (cli_home / "keys.db").exists()


def test_audit_prints_the_last_rows_as_json_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = AuditLog(tmp_path / "recdrill-state" / "audit.db")  # the default --state-dir, in the cwd
    for status, path in ((403, "/admin/faults"), (201, "/admin/reload"), (200, "/admin/models/canary")):
        log.append(
            PendingAudit(log, "admin", "POST", path, who="ops", key_role="admin", summary="k=v"), status
        )
    log.close()
    code, out, _ = run(capsys, "audit", "--last", "2")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(r["what"], r["outcome"]) for r in rows] == [
        ("POST /admin/reload", 201),
        ("POST /admin/models/canary", 200),
    ]
    assert set(rows[0]) == {"at", "who", "what", "summary", "outcome", "needed_role"}
    assert (rows[0]["who"], rows[0]["needed_role"], rows[0]["summary"]) == ("ops", "admin", "k=v")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", rows[0]["at"])


def test_audit_without_a_log_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "audit", "--state-dir", str(tmp_path / "nowhere"))
    assert (code, out) == (3, "")
    assert err == f"recdrill: error: {tmp_path / 'nowhere' / 'audit.db'}: no such file\n"
