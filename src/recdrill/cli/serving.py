"""The ``serve`` command."""

from __future__ import annotations

import os
from pathlib import Path

import click

from recdrill.cli.app import cli
from recdrill.data.snapshot import ShopSnapshot
from recdrill.models.factory import load_model
from recdrill.serving.config import ENV_ADMIN_KEY, ServeConfig
from recdrill.serving.process import run_server


@cli.command("serve")
@click.option(
    "--model",
    "model_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="A folder written by 'recdrill train'.",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="uvicorn worker processes (each gets one BLAS thread when there are several).",
)
@click.option(
    "--state-dir",
    default=Path("recdrill-state"),
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Feedback log and fault table.",
)
@click.option(
    "--deadline-ms",
    default=50.0,
    show_default=True,
    type=click.FloatRange(min=1.0),
    help="Per-request deadline for the primary tier before falling back.",
)
def serve_command(
    model_dir: Path, host: str, port: int, workers: int, state_dir: Path, deadline_ms: float
) -> None:
    """Serve recommendations over HTTP (admin key from the RECDRILL_ADMIN_KEY variable)."""
    load_model(model_dir)  # fail here, with one clear line, rather than in every worker
    ShopSnapshot.load(model_dir)
    admin_key = os.environ.get(ENV_ADMIN_KEY)
    if not admin_key:
        click.echo(f"warning: {ENV_ADMIN_KEY} is not set: admin endpoints will refuse every key", err=True)
    click.echo(f"serving {model_dir} on http://{host}:{port} with {workers} worker(s)", err=True)
    config = ServeConfig(model_dir=model_dir, state_dir=state_dir, deadline_ms=deadline_ms)
    run_server(config, host, port, workers, admin_key)
