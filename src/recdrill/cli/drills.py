"""Drill commands: ``drill list`` (the fault catalogue) and ``drill run`` (a scenario against a
deployment, or against a local one it starts itself).

A drill always ends, and always with a report: at its deadline, on an abort condition, or on
SIGTERM/SIGINT (:mod:`recdrill.cli.drill_signals`), it reverts its faults, runs its rollbacks,
writes a report and journal marked ``aborted``, and stops every process it started. Exit codes: 0
when the drill ran to its end, 10 (``DrillAborted``) when its deadline or an abort condition
stopped it, 128 + N when signal N did.
"""

from __future__ import annotations

import ipaddress
import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click

from recdrill.chaos.journal import to_chaostoolkit_journal
from recdrill.cli.app import cli
from recdrill.cli.common import DATA_HELP, load_data
from recdrill.cli.drill_signals import drill_session, signal_exit_code
from recdrill.cli.local_deployment import LocalDeployment
from recdrill.data.snapshot import ShopSnapshot
from recdrill.data.splits import leave_one_out
from recdrill.drills.faults.catalogue import catalogue
from recdrill.drills.replayer import ReplayPlan
from recdrill.drills.report import write_report
from recdrill.drills.runner import DrillRunner
from recdrill.drills.scenario import Scenario, builtin_names, builtin_scenario, load_scenario
from recdrill.drills.stop import StopSwitch
from recdrill.drills.target import DrillTarget, LocalServer
from recdrill.errors import ConfigError, DrillAborted
from recdrill.security.tls import client_ssl_context
from recdrill.serving.config import ENV_ADMIN_KEY

ENV_TRAFFIC_KEY = "RECDRILL_TRAFFIC_KEY"  # a reader/writer key for user traffic (default: the admin key)
SCENARIO_HELP = "A scenario YAML file, or the name of a built-in one (see `recdrill drill list`)."


def scenario_from(spec: str) -> Scenario:
    return load_scenario(spec) if Path(spec).suffix in (".yaml", ".yml") else builtin_scenario(spec)


def progress(line: str) -> None:
    click.echo(f"  {line}", err=True)


def with_deadline_margin(scenario: Scenario, margin_s: float | None) -> Scenario:
    """The scenario with ``--deadline-margin`` in place of its own (None: unchanged)."""
    return scenario if margin_s is None else scenario.model_copy(update={"deadline_margin_s": margin_s})


def exit_as_ended(journal: dict[str, Any], switch: StopSwitch) -> None:
    """End the command with the exit code of how the drill ended (see the module docstring)."""
    aborted = journal.get("aborted") or {}
    if journal["status"] != "aborted":
        return
    code = signal_exit_code(switch.reason) if aborted.get("reason") == "stopped" else None
    if code is not None:
        click.get_current_context().exit(code)
    raise DrillAborted(f"drill aborted: {aborted.get('detail', 'an abort condition held')}")


DEADLINE_HELP = (
    "Seconds past the traffic's end at which the drill aborts (default: the scenario's "
    "deadline_margin_s, else half the duration, at least 60)."
)


@cli.group("drill")
def drill_group() -> None:
    """Fault-injection drills: list the fault catalogue, run a scenario."""


@drill_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the catalogue as JSON.")
def drill_list(as_json: bool) -> None:
    """Every fault a scenario can name, with its parameters, and the built-in scenarios."""
    faults = [f.describe() for f in catalogue()]
    if as_json:
        click.echo(json.dumps(faults, indent=2))
        return
    for fault in faults:
        click.echo(f"{fault['name']:<26}{fault['kind']:<16}{fault['summary']}")
        for name, spec in fault["params"].items():
            default = f" (default {spec['default']})" if "default" in spec else ""
            click.echo(f"{'':<28}{name}: {spec.get('description', spec.get('type', ''))}{default}")
        if fault["needs"]:
            click.echo(f"{'':<28}needs: {', '.join(fault['needs'])}")
    click.echo(f"\nbuilt-in scenarios: {', '.join(builtin_names())}")


@drill_group.command("run")
@click.argument("scenario_spec", required=False, metavar="[SCENARIO]")
@click.option("--preset", default=None, help="A built-in scenario by name (peak-day, gameday, ...).")
@click.option(
    "--target",
    default=None,
    help="Base URL of a running recdrill deployment (local or Ray Serve). Without it the drill "
    "trains a model on --data and starts its own local deployment.",
)
@click.option("--data", "data_spec", default=None, metavar="DATA", help=DATA_HELP)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for the synthetic shop.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("runs/drill"),
    show_default=True,
    help="Folder for report.json, report.html and journal.json.",
)
@click.option(
    "--server-pid", type=click.IntRange(min=1), default=None, help="Pid of a local `recdrill serve`."
)
@click.option("--state-dir", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None)
@click.option("--model-dir", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None)
@click.option(
    "--ca-bundle",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="PEM CA certificates that an https target's certificate must chain to (default: the system store).",
)
@click.option("--deadline-margin", type=click.FloatRange(min=0, max=3600), default=None, help=DEADLINE_HELP)
def drill_run(
    scenario_spec: str | None,
    preset: str | None,
    target: str | None,
    data_spec: str | None,
    seed: int,
    out: Path,
    server_pid: int | None,
    state_dir: Path | None,
    model_dir: Path | None,
    ca_bundle: Path | None,
    deadline_margin: float | None,
) -> None:
    """Run SCENARIO (or --preset) and write the report; with --target the admin key comes from
    RECDRILL_ADMIN_KEY, and user traffic is sent with RECDRILL_TRAFFIC_KEY if set (a reader/writer
    key: the admin key's own rate limit would throttle a surge of many users as one caller).
    An https target's certificate is always verified. SIGTERM or SIGINT aborts the drill: faults
    reverted, report written (marked aborted), every process it started stopped."""
    if (scenario_spec is None) == (preset is None):
        raise click.UsageError("give a SCENARIO (file or built-in name) or --preset, not both")
    scenario = scenario_from(scenario_spec) if scenario_spec is not None else builtin_scenario(str(preset))
    scenario = with_deadline_margin(scenario, deadline_margin)
    switch = StopSwitch()
    with drill_session(switch):
        journal = _drill(
            scenario, target, data_spec, seed, out, server_pid, state_dir, model_dir, ca_bundle, switch
        )
    click.echo(summary(journal))
    exit_as_ended(journal, switch)


def _drill(
    scenario: Scenario,
    target: str | None,
    data_spec: str | None,
    seed: int,
    out: Path,
    server_pid: int | None,
    state_dir: Path | None,
    model_dir: Path | None,
    ca_bundle: Path | None,
    switch: StopSwitch,
) -> dict[str, Any]:
    """Run the drill against ``target``, or against a local deployment started for it."""
    if target is None:
        with LocalDeployment.start(data_spec or "shopsim", seed, out, workers=2) as local:
            return run_and_report(scenario, local.target(out), out, switch)
    else:
        admin_key = os.environ.get(ENV_ADMIN_KEY)
        if not admin_key:
            raise ConfigError(f"{ENV_ADMIN_KEY} is not set: the drill needs a key that may inject faults")
        if data_spec is None:
            raise click.UsageError(
                "--data is needed with --target: the served model's data judges the answers"
            )
        split = leave_one_out(load_data(data_spec, None, seed))
        snapshot = (
            ShopSnapshot.load(model_dir)
            if model_dir is not None
            else ShopSnapshot.from_dataset(split.test.fit_data)
        )
        drill_target = DrillTarget(
            target,
            admin_key,
            verify=client_ssl_context(ca_bundle),
            plan=ReplayPlan.from_fold(split.test),
            workers=None if server_pid is None else LocalServer(server_pid),
            state_dir=state_dir,
            model_dir=model_dir,
            snapshot=snapshot,
            local=_is_loopback(target),
            scratch_dir=out / "scratch",
            traffic_key=os.environ.get(ENV_TRAFFIC_KEY) or None,
        )
        return run_and_report(scenario, drill_target, out, switch)


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run_and_report(
    scenario: Scenario, target: DrillTarget, out: Path, switch: StopSwitch | None = None
) -> dict[str, Any]:
    """Run the drill; whatever happens, write report.json/.html and the Chaos Toolkit journal.
    ``switch``: what SIGTERM/SIGINT trip (see :func:`recdrill.cli.drill_signals.drill_session`)."""
    click.echo(
        f"drill '{scenario.name}': {scenario.traffic.rate:g} req/s for {scenario.traffic.duration_s:g} s, "
        f"{len(scenario.faults)} fault(s), against {target.base_url}; deadline {scenario.deadline_s:g} s",
        err=True,
    )
    runner = DrillRunner(scenario, target, progress=progress, stop=switch or StopSwitch())
    try:
        return runner.run()
    finally:
        if runner.journal is not None:
            json_path, html_path = write_report(runner.journal, out)
            (out / "journal.json").write_text(json.dumps(to_chaostoolkit_journal(runner.journal), indent=2))
            click.echo(
                f"report: {html_path} (data: {json_path}; Chaos Toolkit journal: {out / 'journal.json'})",
                err=True,
            )


def summary(journal: dict[str, Any]) -> str:
    """The drill's verdict and its scorecard as text."""
    s = journal["summary"]
    lines = [
        f"drill '{journal['scenario']['name']}': {journal['status']}, "
        f"{'DEVIATED' if journal['deviated'] else 'no deviation'}; "
        f"target left clean: {'yes' if journal['cleanliness']['ok'] else 'NO'}",
        f"  {s['requests']} requests, availability {_num(s['availability'], 4)} "
        f"(first try {_num(s['availability_first_try'], 4)}, {s['retried']} retried), "
        f"p50/p99 {_num(s['p50_ms'], 1)}/{_num(s['p99_ms'], 1)} ms, NDCG@10 {_num(s['ndcg10'], 4)} "
        f"(baseline {_num(journal['baseline']['ndcg10'], 4)}), events lost: {s.get('events_lost')}",
        *_aborted_lines(journal),
        "  " + _columns(HEADER) + "  verdict",
    ]
    for row in journal["scorecard"]:
        failed = ", ".join(k for k, v in row["checks"].items() if not v)
        cells = [
            row["fault"],
            _sec(row["detect_s"]),
            _sec(row["failover_s"]),
            _sec(row["recover_s"]),
            _num(row["availability"], 3),
            _num(row["quality_kept"], 2),
            _num(row["events_lost"], 0),
        ]
        verdict = "pass" if row["passed"] else "FAIL: " + failed
        if not row.get("reached", True):
            verdict = "not reached (the drill ended before it)"
        lines.append(f"  {_columns(cells)}  {verdict}")
    return "\n".join(lines)


def _aborted_lines(journal: dict[str, Any]) -> list[str]:
    """Why the drill aborted, and how much of its traffic it could not send, when either applies."""
    lines = []
    if journal.get("aborted"):
        lines.append(f"  aborted: {journal['aborted'].get('detail')}")
    s = journal["summary"]
    if s.get("skipped"):
        weak = "; the judgement is WEAK (most traffic unsent)" if s.get("judgement_weak") else ""
        lines.append(
            f"  {s['skipped']} requests not sent ({_num(100 * s['skipped_share'], 1)} %: the drill was "
            f"short of CPU; not counted against availability){weak}"
        )
    return lines


HEADER = ("fault", "detect", "failover", "recover", "avail", "quality", "lost")
WIDTHS = (22, 8, 10, 9, 8, 9, 6)


def _columns(cells: tuple[str, ...] | list[str]) -> str:
    """The first cell left-aligned, the others right-aligned, in WIDTHS."""
    first, *rest = cells
    return f"{first:<{WIDTHS[0]}}" + "".join(f"{c:>{w}}" for c, w in zip(rest, WIDTHS[1:], strict=True))


def _sec(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


def _num(value: float | int | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"
