"""The ``registry`` command group: push, list, show, promote, rollback and verify model versions.

Stable outputs that scripts read: ``push --json`` prints ``{"version": ..., "path": ...}`` (``path``
is the stored artifact folder); ``verify`` exits 0 when signature and digests hold and otherwise
prints one line naming the reason on stderr and exits non-zero (7).

Canary and shadow talk to a running server, not to the registry: ``promote VERSION --canary 10
--target URL`` asks it (``POST /admin/models/canary``, with the admin key from
``RECDRILL_ADMIN_KEY``) to serve VERSION to 10% of users and judge it online; ``--shadow`` scores it
beside the primary without serving it. ``canary-status`` prints the server's per-arm summary as JSON
and ``canary-stop`` ends the canary. A refusal exits non-zero with the server's error on stderr.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from recdrill.cli.app import cli
from recdrill.cli.common import home_option, open_registry, read_json_object, target_options
from recdrill.errors import ConfigError
from recdrill.registry.stages import Stage, parse_stage

if TYPE_CHECKING:  # the registry (and the signing library) load when a command runs, not at startup
    from recdrill.registry.catalog import VersionRow
    from recdrill.registry.registry import Registry


def read_metrics(path: Path | None) -> dict[str, float]:
    """Metrics from JSON: ``recdrill eval --json`` output (its ``metrics``) or a plain object."""
    return read_json_object(path, "metrics", "metrics")


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


def call_server(method: str, target: str | None, path: str, body: dict[str, Any] | None = None) -> Any:
    """One admin call to a running server; its JSON answer, or a RecdrillError with its error."""
    from recdrill.serving.admin_client import admin_request
    from recdrill.serving.config import ENV_ADMIN_KEY

    ca_bundle = click.get_current_context().params.get("ca_bundle")
    return admin_request(
        method, target, path, body, admin_key=os.environ.get(ENV_ADMIN_KEY), ca_bundle=ca_bundle
    )


@registry_group.command("promote")
@click.argument("version")
@click.argument("stage", required=False, default=None, metavar="[STAGE]")
@click.option(
    "--canary",
    "canary_percent",
    type=click.FloatRange(min=0, max=100, min_open=True),
    default=None,
    metavar="PERCENT",
    help="Serve VERSION to this share of users on --target, judged online and rolled back if worse "
    "(with --shadow: the share of users the candidate also scores; default 100).",
)
@click.option(
    "--shadow", is_flag=True, help="Score VERSION beside the primary on --target without serving it."
)
@click.option("--auto-promote", is_flag=True, help="Make a canary that passes the judge production.")
@click.option(
    "--min-samples", type=click.IntRange(min=2), default=None, help="Labels per arm before a decision."
)
@click.option(
    "--max-ndcg-drop",
    type=click.FloatRange(min=0, max=1, max_open=True),
    default=None,
    help="Relative NDCG@10 drop tolerated (0.1: 10%).",
)
@click.option(
    "--max-p99-ratio", type=click.FloatRange(min=1), default=None, help="p99 latency ratio tolerated."
)
@target_options
@home_option
def promote_command(
    version: str,
    stage: str | None,
    canary_percent: float | None,
    shadow: bool,
    auto_promote: bool,
    min_samples: int | None,
    max_ndcg_drop: float | None,
    max_p99_ratio: float | None,
    target: str | None,
    ca_bundle: Path | None,
    home: Path | None,
) -> None:
    """Move VERSION to STAGE (default production; a new production archives the old), or, with
    --canary PERCENT or --shadow, start a canary or shadow of VERSION on the server at --target."""
    if canary_percent is None and not shadow:
        row = open_registry(home).promote(version, parse_stage(stage or Stage.PRODUCTION.value))
        click.echo(f"{row.version} is now {row.stage.value}")
        return
    if stage is not None:
        raise ConfigError("give a STAGE or --canary/--shadow, not both")
    body: dict[str, Any] = {
        "version": version,
        "share": (100.0 if canary_percent is None else canary_percent) / 100.0,
        "mode": "shadow" if shadow else "canary",
        "auto_promote": auto_promote,
    }
    knobs = {"min_samples": min_samples, "max_ndcg_drop": max_ndcg_drop, "max_p99_ratio": max_p99_ratio}
    body.update({name: value for name, value in knobs.items() if value is not None})
    call_server("POST", target, "/admin/models/canary", body)
    click.echo(f"{version}: {body['mode']} started for {body['share']:.0%} of users on {target}")


@registry_group.command("canary-status")
@target_options
def canary_status_command(target: str | None, ca_bundle: Path | None) -> None:
    """Print the server's canary summary as JSON: per arm samples, mean NDCG@10, p99; verdicts."""
    click.echo(json.dumps(call_server("GET", target, "/admin/models/canary"), indent=2))


@registry_group.command("canary-stop")
@target_options
def canary_stop_command(target: str | None, ca_bundle: Path | None) -> None:
    """End the canary or shadow on the server at --target (the version goes back to candidate)."""
    stopped = call_server("DELETE", target, "/admin/models/canary")
    click.echo(f"{stopped['version']}: canary stopped")


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


@registry_group.command("verify-watermark")
@click.argument("model_dir", type=click.Path(path_type=Path))
@click.option(
    "--json", "as_json", is_flag=True, help='Print {"p_value": ..., "owned": ...} and the evidence as JSON.'
)
@home_option
def verify_watermark_command(model_dir: Path, as_json: bool, home: Path | None) -> None:
    """Test whether MODEL_DIR carries this owner's watermark (secret: $RECDRILL_WATERMARK_KEY, else
    RECDRILL_HOME/keys/watermark.key); 'owned' when the binomial p-value is below 1e-6."""
    from recdrill.models.factory import load_model
    from recdrill.models.watermark import Watermark, load_watermark_secret, ownership_test

    secret = load_watermark_secret(home)
    model = load_model(model_dir)
    mark = Watermark.from_secret(secret, model.n_items_)
    result = ownership_test(model, mark).to_dict()
    # The stored commitment (if any) says whether the model claims to carry this very secret.
    stored = getattr(model, "watermark_commitment_", None)
    result["commitment_matches"] = None if stored is None else stored == mark.commitment
    if as_json:
        click.echo(json.dumps(result))
    else:
        verdict = "owned" if result["owned"] else "not shown to be owned"
        click.echo(
            f"{model_dir}: {verdict} (p = {result['p_value']:.3g}; {result['hits']}/{result['queries']} "
            f"secret next items in the top {result['top_k']})"
        )
