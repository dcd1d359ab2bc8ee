"""Drill commands: ``drill`` against a running server, and ``demo``, the whole loop on one machine."""

from __future__ import annotations

import os
import secrets
import signal
import ssl
import threading
import time
from pathlib import Path
from typing import Any

import click

from recdrill.cli.app import cli
from recdrill.cli.common import DATA_HELP, load_data
from recdrill.data.snapshot import ShopSnapshot
from recdrill.data.splits import leave_one_out
from recdrill.drills.process_faults import LocalServer, WorkerSource
from recdrill.drills.replayer import ReplayPlan
from recdrill.drills.report import write_report
from recdrill.drills.runner import DrillRunner
from recdrill.drills.scenario import Scenario, builtin_scenario, load_scenario
from recdrill.errors import ConfigError
from recdrill.eval.evaluate import evaluate, format_table
from recdrill.models.factory import make_model
from recdrill.security.tls import client_ssl_context, make_dev_certificate
from recdrill.serving.config import ENV_ADMIN_KEY
from recdrill.serving.process import ServerProcess
from recdrill.serving.ray_backend import RayOptions, ensure_ray_installed
from recdrill.serving.ray_process import RayServerProcess

SCENARIO_HELP = "A scenario YAML file, or the name of a built-in one (gameday)."


def _scenario(spec: str) -> Scenario:
    return load_scenario(spec) if Path(spec).suffix in (".yaml", ".yml") else builtin_scenario(spec)


def _progress(line: str) -> None:
    click.echo(f"  {line}", err=True)


def _summary(journal: dict[str, Any]) -> str:
    s = journal["summary"]
    lines = [
        f"drill '{journal['scenario']['name']}': {journal['status']}, "
        f"{'DEVIATED' if journal['deviated'] else 'no deviation'}; "
        f"target left clean: {'yes' if journal['cleanliness']['ok'] else 'NO'}",
        f"  {s['requests']} requests, availability {s['availability']:.4f} "
        f"(first try {s['availability_first_try']:.4f}, {s['retried']} retried), "
        f"p50/p99 {s['p50_ms']:.1f}/{s['p99_ms']:.1f} ms, NDCG@10 {s['ndcg10']:.4f} "
        f"(baseline {journal['baseline']['ndcg10']:.4f}), fallback share {s['fallback_share']:.3f}",
        f"  {'fault':<24}{'kind':<9}{'window':>12}{'detect':>9}{'failover':>10}{'recover':>9}",
    ]

    def sec(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}s"

    for f in journal["faults"]:
        window = f"{f['start']:.0f}-{f['end']:.0f}s"
        lines.append(
            f"  {f['name']:<24}{f['kind']:<9}{window:>12}{sec(f['detect_s']):>9}"
            f"{sec(f['failover_s']):>10}{sec(f['recover_s']):>9}"
        )
    return "\n".join(lines)


@cli.command("drill")
@click.option(
    "--target", required=True, help="Base URL of a running recdrill server, e.g. http://127.0.0.1:8000."
)
@click.option("--scenario", "scenario_spec", default="gameday", show_default=True, help=SCENARIO_HELP)
@click.option(
    "--data",
    "data_spec",
    required=True,
    metavar="DATA",
    help="The data the served model was trained on (its held-out items judge the answers). " + DATA_HELP,
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for the synthetic shop.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("runs/drill"),
    show_default=True,
    help="Folder for report.json and report.html.",
)
@click.option(
    "--server-pid",
    type=click.IntRange(min=1),
    default=None,
    help="Pid of the local 'recdrill serve --workers N' (needed by process faults: kill, pause).",
)
@click.option(
    "--ca-bundle",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="PEM CA certificates that an https target's certificate must chain to (default: the system store).",
)
def drill_command(
    target: str,
    scenario_spec: str,
    data_spec: str,
    seed: int,
    out: Path,
    server_pid: int | None,
    ca_bundle: Path | None,
) -> None:
    """Run a drill against a running server (admin key from RECDRILL_ADMIN_KEY) and write the report.

    An https target's certificate is always verified: against --ca-bundle, else the system store."""
    _interruptible()
    scenario = _scenario(scenario_spec)
    verify = client_ssl_context(ca_bundle)
    admin_key = os.environ.get(ENV_ADMIN_KEY)
    if not admin_key:
        raise ConfigError(f"{ENV_ADMIN_KEY} is not set: the drill needs a key that may inject faults")
    plan = ReplayPlan.from_fold(leave_one_out(load_data(data_spec, None, seed)).test)
    workers = None if server_pid is None else LocalServer(server_pid)
    journal = _run_drill(scenario, target, admin_key, plan, out, workers, verify)
    click.echo(_summary(journal))


def _interruptible() -> None:
    """Ctrl-C (SIGINT) must stop a drill and revert its faults, even when the drill was started as a
    background job: a shell without job control starts those with SIGINT ignored, and Python keeps
    an ignored SIGINT ignored (seen: a drill outliving its SIGINT under ``pytest ... &``)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _run_drill(
    scenario: Scenario,
    target: str,
    admin_key: str,
    plan: ReplayPlan,
    out: Path,
    workers: WorkerSource | None = None,
    verify: ssl.SSLContext | None = None,
) -> dict[str, Any]:
    click.echo(
        f"drill '{scenario.name}': {scenario.traffic.rate:g} req/s for {scenario.traffic.duration_s:g} s, "
        f"{len(scenario.faults)} fault(s), against {target}",
        err=True,
    )
    runner = DrillRunner(
        scenario,
        target,
        admin_key,
        plan,
        progress=_progress,
        workers=workers,
        verify=client_ssl_context() if verify is None else verify,
    )
    try:
        journal = runner.run()
    finally:
        if runner.journal is not None:
            json_path, html_path = write_report(runner.journal, out)
            click.echo(f"report: {html_path} (data: {json_path})", err=True)
    return journal


@cli.command("demo")
@click.option("--data", "data_spec", default="shopsim", show_default=True, metavar="DATA", help=DATA_HELP)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for the synthetic shop.")
@click.option("--scenario", "scenario_spec", default="gameday", show_default=True, help=SCENARIO_HELP)
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
    _interruptible()
    started = time.perf_counter()
    scenario = _scenario(scenario_spec)
    if tls and backend == "ray":
        raise click.UsageError("--tls is for --backend local: Ray Serve terminates TLS in its own proxy")
    if backend == "ray":
        ensure_ray_installed()  # before minutes of work, not after
        RayOptions().ray_temp_dir(out / "state")  # a path too long for Ray's sockets fails now
    click.echo("[1/4] building the shop", err=True)
    dataset = load_data(data_spec, None, seed)
    split = leave_one_out(dataset)
    click.echo("[2/4] training the item-to-item model and the popularity baseline", err=True)
    model = make_model("itemknn").fit(split.test.fit_data)
    model_dir = out / "model"
    model.save(model_dir)
    ShopSnapshot.from_dataset(split.test.fit_data).save(model_dir)
    offline = [
        evaluate(m, split.test, model_name=m.kind)
        for m in (model, make_model("pop").fit(split.test.fit_data))
    ]
    click.echo(format_table(offline), err=True)
    click.echo("[3/4] starting the server", err=True)
    admin_key = secrets.token_urlsafe(24)  # lives only in this process and the server's environment
    server_process: ServerProcess | RayServerProcess
    if backend == "ray":
        server_process = RayServerProcess(model_dir, out / "state", RayOptions(), admin_key=admin_key)
    elif tls:
        cert = make_dev_certificate(out / "tls", overwrite=True)  # the demo's own, remade each run
        server_process = ServerProcess(
            model_dir,
            out / "state",
            admin_key=admin_key,
            tls_cert=cert.cert,
            tls_key=cert.key,
            ca_bundle=cert.ca_cert,
        )
    else:
        server_process = ServerProcess(model_dir, out / "state", admin_key=admin_key)
    with server_process as server:
        click.echo(f"  serving on {server.url} (pid {server.pid})", err=True)
        click.echo("[4/4] running the drill", err=True)
        plan = ReplayPlan.from_fold(split.test)
        verify = server.verify if isinstance(server, ServerProcess) else None
        journal = _run_drill(scenario, server.url, admin_key, plan, out, workers=server, verify=verify)
    click.echo(_summary(journal))
    click.echo(f"report: {out / 'report.html'}  ({time.perf_counter() - started:.0f} s in all)")
