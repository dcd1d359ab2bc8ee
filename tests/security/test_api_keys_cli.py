"""``keys create|revoke|list`` in a stand-in ``keys`` group (the real one attaches API_KEY_COMMANDS)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from recdrill.cli.api_keys import API_KEY_COMMANDS
from recdrill.errors import DataFileNotFoundError, KeyNameError, KeyStoreError, RecdrillError
from recdrill.security.audit import AuditLog, PendingAudit
from recdrill.security.keystore import KeyStore
from recdrill.security.roles import Role


@click.group()
def keys() -> None:
    """Stand-in for the ``recdrill keys`` group."""


for command in API_KEY_COMMANDS:
    keys.add_command(command)


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("RECDRILL_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("RECDRILL_KEY_STORE", raising=False)
    return CliRunner()


def test_create_prints_the_key_once_on_stdout_and_stores_only_its_hash(
    runner: CliRunner, tmp_path: Path
) -> None:
    created = runner.invoke(keys, ["create", "--name", "ops-team", "--role", "operator", "--rate", "5"])
    assert created.exit_code == 0, created.output
    key = created.stdout.strip()
    assert key.startswith("rdk_") and "\n" not in key
    assert key not in created.stderr and "ops-team" in created.stderr
    with KeyStore.open(tmp_path / "home" / "keys.db") as store:
        found = store.authenticate(key)
    assert found is not None and (found.role, found.rate_per_s, found.burst) == (Role.OPERATOR, 5.0, None)


def test_list_shows_names_roles_and_times_but_never_a_key_or_hash(runner: CliRunner) -> None:
    keys_made = [
        runner.invoke(keys, ["create", "--name", name, "--role", role]).stdout.strip()
        for name, role in [("reader-1", "reader"), ("admin-1", "admin")]
    ]
    assert runner.invoke(keys, ["revoke", "reader-1"]).exit_code == 0
    table = runner.invoke(keys, ["list"])
    listed = json.loads(runner.invoke(keys, ["list", "--json"]).stdout)
    assert [(k["name"], k["role"], k["revoked_at"] is not None) for k in listed] == [
        ("reader-1", "reader", True),
        ("admin-1", "admin", False),
    ]
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["NAME", "ROLE", "CREATED", "REVOKED", "RATE/S", "BURST"]
    assert lines[1].split()[:2] == ["reader-1", "reader"] and lines[2].split()[3] == "-"
    for key in keys_made:
        for shown in (table.output, json.dumps(listed)):
            assert key not in shown and hashlib.sha256(key.encode()).hexdigest() not in shown


def test_mistakes_are_refused_with_recdrill_errors(runner: CliRunner, tmp_path: Path) -> None:
    empty = runner.invoke(keys, ["list"])
    assert empty.exit_code == 0 and empty.stdout == "" and "no key store" in empty.stderr
    missing = runner.invoke(keys, ["revoke", "nobody"])
    assert isinstance(missing.exception, KeyStoreError)  # recdrill's main: one line, exit code 2
    runner.invoke(keys, ["create", "--name", "a", "--role", "reader"])
    twice = runner.invoke(keys, ["create", "--name", "a", "--role", "reader"])
    unknown = runner.invoke(keys, ["revoke", "nobody"])
    for result in (twice, unknown):
        assert isinstance(result.exception, KeyNameError) and isinstance(result.exception, RecdrillError)
        assert result.exception.exit_code == 2 and result.stdout == ""
    bad_role = runner.invoke(keys, ["create", "--name", "b", "--role", "root"])
    assert bad_role.exit_code == 2 and "'root' is not one of" in bad_role.stderr


def test_audit_prints_the_last_actions_as_json_lines(runner: CliRunner, tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "state" / "audit.db")
    for status in (401, 201, 200):
        log.append(
            PendingAudit(log, "operator", "GET", "/admin/faults", who="ops", key_role="operator"), status
        )
    log.close()
    shown = runner.invoke(keys, ["audit", "--state-dir", str(tmp_path / "state"), "--last", "2"])
    assert shown.exit_code == 0, shown.output
    rows = [json.loads(line) for line in shown.stdout.splitlines()]
    assert [(r["who"], r["what"], r["outcome"]) for r in rows] == [
        ("ops", "GET /admin/faults", 201),
        ("ops", "GET /admin/faults", 200),
    ]
    missing = runner.invoke(keys, ["audit", "--state-dir", str(tmp_path / "nowhere")])
    assert isinstance(missing.exception, DataFileNotFoundError)
