"""``recdrill keys create|revoke|list|audit``: API keys for the HTTP server (``recdrill.security``).

The commands are exported as :data:`API_KEY_COMMANDS`; the ``keys`` group attaches them. A key is
printed once, on stdout, when it is created; the store keeps only its SHA-256, and ``list`` shows
names, roles and times, never a key or a hash. The store is ``RECDRILL_KEY_STORE`` or
``RECDRILL_HOME/keys.db`` unless ``--store`` says otherwise; a server started while that store
exists requires keys on every endpoint but the probes, and sees revocations at its next request.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import click

from recdrill.contract import AUDIT_DB
from recdrill.errors import DataFileNotFoundError
from recdrill.security.audit import AuditLog
from recdrill.security.keystore import ApiKey, KeyStore, default_key_store_path
from recdrill.security.roles import Role

store_option = click.option(
    "--store",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Key store file [default: RECDRILL_KEY_STORE, else RECDRILL_HOME/keys.db].",
)


@click.command("create")
@click.option("--name", required=True, help="Who holds the key; the audit log records this name.")
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]), help="What it may do.")
@click.option(
    "--rate",
    type=click.FloatRange(min=0.0, min_open=True),
    default=None,
    help="Requests per second per server worker [default: the server's RECDRILL_KEY_RATE_PER_S].",
)
@click.option("--burst", type=click.IntRange(1), default=None, help="Requests at once [default: server's].")
@store_option
def create_key(name: str, role: str, rate: float | None, burst: int | None, store: Path | None) -> None:
    """Create an API key and print it on stdout: the only time it is shown."""
    path = store or default_key_store_path()
    with KeyStore.open(path, create=True) as keys:
        key = keys.create(name, role, rate_per_s=rate, burst=burst)
    click.echo(key)
    click.echo(f"created {role} key {name!r} in {path}; keep it now, it cannot be shown again", err=True)


@click.command("revoke")
@click.argument("name")
@store_option
def revoke_key(name: str, store: Path | None) -> None:
    """Revoke the live key called NAME; servers refuse it from their next request on."""
    path = store or default_key_store_path()
    with KeyStore.open(path) as keys:
        record = keys.revoke(name)
    click.echo(f"revoked {record.role} key {name!r} in {path}", err=True)


@click.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON array instead of a table.")
@store_option
def list_keys(as_json: bool, store: Path | None) -> None:
    """List keys: name, role, created, revoked, rate limit (never a key or its hash)."""
    path = store or default_key_store_path()
    records: list[ApiKey] = []
    if path.is_file():
        with KeyStore.open(path) as keys:
            records = keys.list()
    else:
        click.echo(f"no keys: there is no key store at {path}", err=True)
    if as_json:
        click.echo(json.dumps([_as_dict(r) for r in records], indent=2))
        return
    if not records:
        return
    rows = [("NAME", "ROLE", "CREATED", "REVOKED", "RATE/S", "BURST")]
    for r in records:
        rate = "default" if r.rate_per_s is None else f"{r.rate_per_s:g}"
        burst = "default" if r.burst is None else str(r.burst)
        rows.append((r.name, r.role.value, _when(r.created_at), _when(r.revoked_at), rate, burst))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


@click.command("audit")
@click.option(
    "--state-dir",
    default=Path("recdrill-state"),
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The server's state folder, which holds audit.db.",
)
@click.option("--last", type=click.IntRange(1), default=50, show_default=True, help="How many rows.")
def audit_log(state_dir: Path, last: int) -> None:
    """Print the last operator/admin actions (who, what, when, outcome) as JSON lines."""
    path = state_dir / AUDIT_DB
    if not path.is_file():
        raise DataFileNotFoundError(path)
    log = AuditLog(path)
    try:
        records = log.records()[-last:]
    finally:
        log.close()
    for r in records:
        row = {"at": _when(r.at), "who": r.who, "what": f"{r.method} {r.path}", "summary": r.summary}
        click.echo(json.dumps({**row, "outcome": r.status, "needed_role": r.needed_role}))


def _when(epoch_s: float | None) -> str:
    if epoch_s is None:
        return "-"
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _as_dict(record: ApiKey) -> dict[str, object]:
    return {
        "name": record.name,
        "role": record.role.value,
        "created_at": _when(record.created_at),
        "revoked_at": None if record.revoked_at is None else _when(record.revoked_at),
        "rate_per_s": record.rate_per_s,
        "burst": record.burst,
    }


API_KEY_COMMANDS: list[click.Command] = [create_key, revoke_key, list_keys, audit_log]
