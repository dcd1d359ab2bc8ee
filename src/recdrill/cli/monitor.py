"""The ``monitor`` command group: ``monitor respond`` runs the automatic response to drift once.

``recdrill monitor respond --model DIR --data DATA --recent EVENTS.parquet`` fine-tunes the model on
the recent events (a ``recdrill feedback export``, quarantined events already withheld), compares
it with the current model on the last recent events held out by time, prints the decision as JSON
on stdout, and unless ``--dry-run`` pushes the candidate to the registry and, if it won, starts its
canary on ``--target`` (admin key from ``RECDRILL_ADMIN_KEY``) or promotes it to production.
Every applied decision is appended to ``<registry home>/responses.jsonl``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from recdrill.cli.app import cli
from recdrill.cli.common import DATA_HELP, home_option, json_option, load_data, open_registry, target_options
from recdrill.errors import ConfigError


@cli.group("monitor")
def monitor_group() -> None:
    """Responses to what the live monitor sees."""


@monitor_group.command("respond")
@click.option(
    "--model", "model_dir", type=click.Path(path_type=Path), default=None, help="The current model folder."
)
@click.option(
    "--registry-version", default=None, metavar="V", help="The current model as a registry version."
)
@click.option(
    "--data",
    "data_spec",
    required=True,
    metavar="DATA",
    help=f"The current model's training data: {DATA_HELP}",
)
@click.option(
    "--columns", default=None, metavar="MAP", help="Column mapping for --data (a generic CSV/Parquet)."
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for a synthetic --data shop.")
@click.option(
    "--recent",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Recent events: a 'recdrill feedback export' (.parquet/.csv: user_id, item_id, event, timestamp).",
)
@click.option(
    "--now", type=float, default=None, help="End of the recent window, epoch s (default: the last event)."
)
@click.option(
    "--window-days",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Recent window (default 7).",
)
@click.option(
    "--min-gain", type=float, default=None, help="Relative NDCG@10 gain needed to promote (default 0.02)."
)
@click.option(
    "--canary",
    "canary_percent",
    type=click.FloatRange(min=0, max=100, min_open=True),
    default=None,
    help="Canary share of users on --target, percent (default 10).",
)
@click.option("--triggered-by", default="", metavar="A,B", help="The drifting features that called for this.")
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the candidate is saved (default: a new temporary folder).",
)
@click.option("--dry-run", is_flag=True, help="Decide and print; push, promote and record nothing.")
@json_option("Also write the decision as JSON here.")
@target_options
@home_option
def respond_command(
    model_dir: Path | None,
    registry_version: str | None,
    data_spec: str,
    columns: str | None,
    seed: int,
    recent: Path,
    now: float | None,
    window_days: float | None,
    min_gain: float | None,
    canary_percent: float | None,
    triggered_by: str,
    workdir: Path | None,
    dry_run: bool,
    json_out: Path | None,
    target: str | None,
    ca_bundle: Path | None,
    home: Path | None,
) -> None:
    """Fine-tune the current model on recent events, compare on a held-out recent slice, and act."""
    from recdrill.data.columns import ColumnMapping
    from recdrill.data.tabular import load_interactions
    from recdrill.models.factory import load_model
    from recdrill.monitor.response.apply import apply
    from recdrill.monitor.response.responder import AutoResponder, ResponsePolicy
    from recdrill.serving.config import ENV_ADMIN_KEY

    if (model_dir is None) == (registry_version is None):
        raise ConfigError("give the current model as --model DIR or --registry-version V (one of them)")
    if target and not dry_run and not os.environ.get(ENV_ADMIN_KEY):
        raise ConfigError(f"{ENV_ADMIN_KEY} is not set: starting a canary on --target needs an admin key")
    settings: dict[str, float] = {}
    if window_days is not None:
        settings["recent_window_s"] = window_days * 86_400.0
    if min_gain is not None:
        settings["min_gain"] = min_gain
    if canary_percent is not None:
        settings["canary_percent"] = canary_percent
    policy = ResponsePolicy(**settings)  # type: ignore[arg-type]  # only float fields are set here
    training = load_data(data_spec, columns, seed)
    events = load_interactions(recent, ColumnMapping(event="event"))
    registry = None if dry_run and registry_version is None else open_registry(home)
    if registry_version is not None and registry is not None:
        current = registry.load_verified(registry_version, training)
    else:
        current = load_model(model_dir or Path(), training)
    features = [name.strip() for name in triggered_by.split(",") if name.strip()]
    click.echo(
        f"fine-tuning a copy of the {current.kind} model on {len(events.interactions):,} recent events ...",
        err=True,
    )
    decision = AutoResponder(policy, workdir).respond(
        current, training, events, now, triggered_by=features, current_version=registry_version
    )
    if not dry_run and registry is not None:
        decision = apply(decision, registry, target, os.environ.get(ENV_ADMIN_KEY), ca_bundle=ca_bundle)
    body = json.dumps(decision.to_dict(), indent=2)
    click.echo(body)
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(body + "\n")
    click.echo(
        f"{decision.decision}: {decision.reason}" + (f" ({decision.applied})" if decision.applied else ""),
        err=True,
    )
