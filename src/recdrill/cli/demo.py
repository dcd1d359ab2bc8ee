"""``recdrill demo``: the main job on one machine: build a shop, train, serve, drill, report."""

from __future__ import annotations

import time
from pathlib import Path

import click

from recdrill.cli.app import cli
from recdrill.cli.common import DATA_HELP
from recdrill.cli.drill_signals import drill_session
from recdrill.cli.drills import SCENARIO_HELP, exit_as_ended, run_and_report, scenario_from, summary
from recdrill.cli.local_deployment import LocalDeployment
from recdrill.drills.stop import StopSwitch
from recdrill.serving.runtime.ray_backend import RayOptions, ensure_ray_installed


@cli.command("demo")
@click.option("--data", "data_spec", default="shopsim", show_default=True, metavar="DATA", help=DATA_HELP)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for the synthetic shop.")
@click.option("--scenario", "scenario_spec", default="peak-day-short", show_default=True, help=SCENARIO_HELP)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("runs/demo"),
    show_default=True,
    help="Folder for the model, the server's state and the report.",
)
@click.option(
    "--backend",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="Serve with uvicorn here, or on Ray Serve (needs the 'ray' extra).",
)
@click.option(
    "--tls/--no-tls",
    default=False,
    show_default=True,
    help="Serve HTTPS with a fresh development certificate (OUT/tls) and drill over it, verified.",
)
def demo_command(data_spec: str, seed: int, scenario_spec: str, out: Path, backend: str, tls: bool) -> None:
    """The main job: build a shop, train, serve, run a game-day drill, write the report."""
    started = time.perf_counter()
    scenario = scenario_from(scenario_spec)
    if tls and backend == "ray":
        raise click.UsageError("--tls is for --backend local: Ray Serve terminates TLS in its own proxy")
    if backend == "ray":
        ensure_ray_installed()  # before minutes of work, not after
        RayOptions().ray_temp_dir(out / "state")  # a path too long for Ray's sockets fails now
    switch = StopSwitch()  # SIGTERM/SIGINT abort the drill through it (report written, server stopped)
    with (
        drill_session(switch),
        LocalDeployment.start(data_spec, seed, out, workers=2, backend=backend, tls=tls) as local,
    ):
        click.echo("[4/4] running the drill", err=True)
        journal = run_and_report(scenario, local.target(out), out, switch)
    click.echo(summary(journal))
    click.echo(f"report: {out / 'report.html'}  ({time.perf_counter() - started:.0f} s in all)")
    exit_as_ended(journal, switch)
