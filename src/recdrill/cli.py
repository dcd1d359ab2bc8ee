"""The ``recdrill`` command line: parse, build configs, call the library, map errors to exit codes.

Every ``RecdrillError`` becomes one line on stderr (``recdrill: error: ...``) and the error's exit
code; usage errors exit 2. Nothing here holds logic a library user would need.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from recdrill.data.dataset import Dataset
from recdrill.data.loading import load_dataset
from recdrill.data.snapshot import ShopSnapshot
from recdrill.data.splits import Split, leave_one_out, time_split_by_fraction
from recdrill.errors import ConfigError, RecdrillError
from recdrill.eval.evaluate import EvalReport, evaluate, format_table
from recdrill.models.base import BaseRecommender
from recdrill.models.factory import MODEL_KINDS, load_model, make_model
from recdrill.serving.config import ENV_ADMIN_KEY, ServeConfig
from recdrill.serving.process import run_server

Command = TypeVar("Command", bound=Callable[..., Any])

DATA_HELP = (
    "'shopsim' (synthetic shop; 'shopsim:n_items=2000,n_users=1000' to resize), a SASRec-format .txt, "
    "the Online Retail parquet, or an interactions CSV/Parquet."
)
MODEL_HELP = f"A model kind ({', '.join(sorted(MODEL_KINDS))}) or a folder written by 'recdrill train'."


def _data_options(command: Any) -> Any:
    command = click.option(
        "--columns",
        default=None,
        metavar="MAP",
        help="Column mapping for a generic CSV/Parquet, e.g. 'user=uid,item=sku,timestamp=ts'.",
    )(command)
    command = click.option(
        "--seed", type=int, default=0, show_default=True, help="Seed for the synthetic shop."
    )(command)
    command = click.option(
        "--split",
        "split_kind",
        type=click.Choice(["loo", "time"]),
        default="loo",
        show_default=True,
        help="leave-one-out (the published protocol) or time-based (last 10% of time is test).",
    )(command)
    return click.option("--data", "data_spec", required=True, metavar="DATA", help=DATA_HELP)(command)


def _json_option(help_text: str) -> Callable[[Command], Command]:
    return click.option(
        "--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), default=None, help=help_text
    )


def _load(data_spec: str, columns: str | None, seed: int) -> Dataset:
    click.echo(f"loading {data_spec} ...", err=True)
    dataset = load_dataset(data_spec, columns=columns, seed=seed)
    if dataset.quality is not None and dataset.quality.rows_dropped:
        click.echo(dataset.quality.format(), err=True)
    click.echo(dataset.summary(), err=True)
    return dataset


def _split(dataset: Dataset, kind: str) -> Split:
    return leave_one_out(dataset) if kind == "loo" else time_split_by_fraction(dataset)


def _fit_or_load(model_spec: str, split: Split, fold: str) -> tuple[str, BaseRecommender, float]:
    """A model fitted on the fold's training data, or a saved one checked against the catalogue."""
    data = split.fold(fold).fit_data
    started = time.perf_counter()
    if Path(model_spec).is_dir():
        model = load_model(model_spec, data)
        if model.trained_on_ != data.interactions_digest():
            click.echo(
                f"warning: {model_spec} was not fitted on this fold's training data "
                f"(another split or dataset?): its {fold} metrics may be optimistic",
                err=True,
            )
        return Path(model_spec).name, model, 0.0
    if model_spec not in MODEL_KINDS and ("/" in model_spec or Path(model_spec).suffix):
        raise ConfigError(f"model {model_spec!r}: no such model folder")
    click.echo(f"fitting {model_spec} on {len(data.interactions):,} interactions ...", err=True)
    model = make_model(model_spec).fit(data)
    return model_spec, model, time.perf_counter() - started


def _report_dict(report: EvalReport, fit_seconds: float, split: Split) -> dict[str, Any]:
    out = report.to_dict()
    out["fit_seconds"] = fit_seconds
    out["eval_seconds"] = report.seconds
    out["seconds"] = fit_seconds + report.seconds
    out["split"] = split.kind
    return out


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="recdrill")
def cli() -> None:
    """recdrill: e-commerce recommendation that keeps serving through failures."""


@cli.command("eval")
@_data_options
@click.option("--model", "model_spec", required=True, metavar="MODEL", help=MODEL_HELP)
@click.option(
    "--fold",
    type=click.Choice(["test", "validation"]),
    default="test",
    show_default=True,
    help="Which held-out target to rank; choose settings on validation, report test.",
)
@_json_option("Also write the metrics as JSON to this file.")
def eval_command(
    data_spec: str,
    split_kind: str,
    seed: int,
    columns: str | None,
    model_spec: str,
    fold: str,
    json_out: Path | None,
) -> None:
    """Evaluate a model with full ranking over all items (history excluded)."""
    dataset = _load(data_spec, columns, seed)
    split = _split(dataset, split_kind)
    name, model, fit_seconds = _fit_or_load(model_spec, split, fold)
    report = evaluate(model, split.fold(fold), model_name=name)
    click.echo(format_table([report]))
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(_report_dict(report, fit_seconds, split), indent=2))


@cli.command("train")
@_data_options
@click.option(
    "--model", "model_kind", required=True, type=click.Choice(sorted(MODEL_KINDS)), help="Model kind."
)
@click.option(
    "--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Folder to save into."
)
def train_command(
    data_spec: str, split_kind: str, seed: int, columns: str | None, model_kind: str, out: Path
) -> None:
    """Fit a model on the test fold's training data and save it.

    Evaluate the saved model with 'recdrill eval --data DATA --model OUT'.
    """
    dataset = _load(data_spec, columns, seed)
    split = _split(dataset, split_kind)
    _, model, fit_seconds = _fit_or_load(model_kind, split, "test")
    model.save(out)
    ShopSnapshot.from_dataset(split.test.fit_data).save(out)  # what a server needs beside the model
    click.echo(f"saved {model_kind} to {out} (fit {fit_seconds:.1f} s)")


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


@cli.command("demo")
@click.option("--data", "data_spec", default="shopsim", show_default=True, metavar="DATA", help=DATA_HELP)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for the synthetic shop.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("runs/demo"),
    show_default=True,
    help="Folder for trained models and the results JSON.",
)
def demo_command(data_spec: str, seed: int, out: Path) -> None:
    """The main job: build a shop, train every baseline, print the evaluation table."""
    dataset = _load(data_spec, None, seed)
    split = leave_one_out(dataset)
    reports, results = [], []
    for kind in MODEL_KINDS:
        _, model, fit_seconds = _fit_or_load(kind, split, "test")
        model.save(out / "models" / kind)
        report = evaluate(model, split.test, model_name=kind)
        reports.append(report)
        results.append(_report_dict(report, fit_seconds, split))
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    click.echo(format_table(reports))
    click.echo(f"models and results.json written to {out}", err=True)


@cli.group("data")
def data_group() -> None:
    """Inspect shop data."""


@data_group.command("report")
@click.option("--data", "data_spec", required=True, metavar="DATA", help=DATA_HELP)
@click.option("--columns", default=None, metavar="MAP", help="Column mapping for a generic CSV/Parquet.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for the synthetic shop.")
@_json_option("Also write the data-quality report as JSON.")
def data_report_command(data_spec: str, columns: str | None, seed: int, json_out: Path | None) -> None:
    """Load data and print its data-quality report: rows read, kept, and dropped per reason."""
    dataset = load_dataset(data_spec, columns=columns, seed=seed)
    if dataset.quality is not None:
        click.echo(dataset.quality.format())
    click.echo(dataset.summary())
    if json_out is not None:
        quality = dataset.quality.to_dict() if dataset.quality is not None else None
        json_out.write_text(json.dumps({"dataset": dataset.name, "quality": quality}, indent=2))


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``recdrill`` script; returns the exit code."""
    try:
        cli.main(args=argv, prog_name="recdrill", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("recdrill: aborted", err=True)
        return 130
    except RecdrillError as exc:
        click.echo(f"recdrill: error: {exc}", err=True)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
