"""The ``registry`` command group: push, list, show, promote, rollback and verify model versions.

Stable outputs that scripts read: ``push --json`` prints ``{"version": ..., "path": ...}`` (``path``
is the stored artifact folder); ``verify`` exits 0 when signature and digests hold and otherwise
prints one line naming the reason on stderr and exits non-zero (7).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from recdrill.cli.app import cli
from recdrill.errors import ConfigError, DataFileNotFoundError
from recdrill.registry.stages import Stage, parse_stage

if TYPE_CHECKING:  # the registry (and the signing library) load when a command runs, not at startup
    from recdrill.registry.catalog import VersionRow
    from recdrill.registry.registry import Registry

HOME_HELP = "Registry home (default: $RECDRILL_HOME, else ~/.recdrill)."


def home_option(command: Any) -> Any:
    return click.option(
        "--home", type=click.Path(file_okay=False, path_type=Path), default=None, help=HOME_HELP
    )(command)


def read_metrics(path: Path | None) -> dict[str, float]:
    """Metrics from JSON: ``recdrill eval --json`` output (its ``metrics``) or a plain object."""
    if path is None:
        return {}
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataFileNotFoundError(path) from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON: {exc}") from exc
    metrics = raw.get("metrics", raw) if isinstance(raw, dict) else None
    if not isinstance(metrics, dict):
        raise ConfigError(f"{path}: expected a JSON object of metrics")
    return metrics


def open_registry(home: Path | None) -> Registry:
    from recdrill.registry.registry import Registry

    return Registry(home)


def row_dict(row: VersionRow, registry: Registry) -> dict[str, Any]:
    body: dict[str, Any] = {"version": row.version, "stage": row.stage.value}
    body.update(asdict(row.record))
    body["path"] = str(registry.artifacts / row.address)
    return body


@cli.group("registry")
def registry_group() -> None:
    """Signed, encrypted model versions with stages (candidate, canary, production, archived)."""


@registry_group.command("push")
@click.argument("model_dir", type=click.Path(path_type=Path))
@click.option("--parent", default=None, metavar="VERSION", help="The version this model was derived from.")
@click.option(
    "--metrics",
    "metrics_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="JSON metrics to record: 'recdrill eval --json' output or a plain object.",
)
@click.option("--dataset-fingerprint", default=None, help="Defaults to the digest of the training data.")
@click.option("--json", "as_json", is_flag=True, help='Print {"version": ..., "path": ...} to stdout.')
@home_option
def push_command(
    model_dir: Path,
    parent: str | None,
    metrics_file: Path | None,
    dataset_fingerprint: str | None,
    as_json: bool,
    home: Path | None,
) -> None:
    """Encrypt, sign and register a model folder written by 'recdrill train' (as a candidate)."""
    registry = open_registry(home)
    record = registry.push(
        model_dir, parent=parent, metrics=read_metrics(metrics_file), dataset_fingerprint=dataset_fingerprint
    )
    path = registry.artifacts / record.address
    if as_json:
        click.echo(json.dumps({"version": record.version, "path": str(path)}))
    else:
        click.echo(f"{record.version} {path}")


@registry_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
@home_option
def list_command(as_json: bool, home: Path | None) -> None:
    """Every version, oldest first, with its stage."""
    registry = open_registry(home)
    rows = registry.list()
    if as_json:
        click.echo(json.dumps([row_dict(row, registry) for row in rows], indent=2))
        return
    for row in rows:
        record = row.record
        click.echo(
            f"{row.version:<6} {row.stage.value:<11} {record.model_kind or '-':<8} "
            f"parent={record.parent or '-':<6} {record.created_at}  {row.address[:12]}"
        )


@registry_group.command("show")
@click.argument("version")
@home_option
def show_command(version: str, home: Path | None) -> None:
    """A version's manifest and stage, as JSON."""
    registry = open_registry(home)
    click.echo(json.dumps(row_dict(registry.show(version), registry), indent=2))


@registry_group.command("promote")
@click.argument("version")
@click.argument("stage", required=False, default=Stage.PRODUCTION.value, metavar="[STAGE]")
@home_option
def promote_command(version: str, stage: str, home: Path | None) -> None:
    """Move VERSION to STAGE (default production; a new production archives the old)."""
    row = open_registry(home).promote(version, parse_stage(stage))
    click.echo(f"{row.version} is now {row.stage.value}")


@registry_group.command("rollback")
@home_option
def rollback_command(home: Path | None) -> None:
    """Put the previous production version back in production, archiving the current one."""
    registry = open_registry(home)
    before = registry.current(Stage.PRODUCTION)
    row = registry.rollback()
    click.echo(f"production: {before[0] if before else '-'} -> {row.version}")


@registry_group.command("verify")
@click.argument("version")
@home_option
def verify_command(version: str, home: Path | None) -> None:
    """Check VERSION's signature and every file digest; exit non-zero naming the reason if not."""
    record = open_registry(home).verify(version)
    click.echo(f"{version}: ok (signature and {len(record.files)} file digest(s) hold)")
