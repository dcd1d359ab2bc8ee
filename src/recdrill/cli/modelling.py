"""Commands for data and models: evaluate, train, tune, seal an older model folder, inspect data quality."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import click

from recdrill.cli.app import cli
from recdrill.cli.common import (
    DATA_HELP,
    MODEL_HELP,
    data_options,
    fit_or_load,
    json_option,
    load_data,
    make_split,
    read_params,
    report_dict,
)
from recdrill.data.loading import load_dataset
from recdrill.data.snapshot import ShopSnapshot
from recdrill.eval.evaluate import evaluate, format_table
from recdrill.models.factory import MODEL_KINDS, seal_model


@cli.command("eval")
@data_options
@click.option("--model", "model_spec", required=True, metavar="MODEL", help=MODEL_HELP)
@click.option(
    "--fold",
    type=click.Choice(["test", "validation"]),
    default="test",
    show_default=True,
    help="Which held-out target to rank; choose settings on validation, report test.",
)
@json_option("Also write the metrics as JSON to this file.")
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
    dataset = load_data(data_spec, columns, seed)
    split = make_split(dataset, split_kind)
    name, model, fit_seconds = fit_or_load(model_spec, split, fold)
    report = evaluate(model, split.fold(fold), model_name=name)
    click.echo(format_table([report]))
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(report_dict(report, fit_seconds, split), indent=2))


@cli.command("train")
@data_options
@click.option(
    "--model", "model_kind", required=True, type=click.Choice(sorted(MODEL_KINDS)), help="Model kind."
)
@click.option(
    "--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Folder to save into."
)
@click.option(
    "--params",
    "params_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="JSON hyper-parameters, e.g. the file 'recdrill tune' writes (defaults otherwise).",
)
def train_command(
    data_spec: str,
    split_kind: str,
    seed: int,
    columns: str | None,
    model_kind: str,
    out: Path,
    params_file: Path | None,
) -> None:
    """Fit a model on the test fold's training data and save it.

    Evaluate the saved model with 'recdrill eval --data DATA --model OUT'. Training that is
    interrupted resumes where it stopped when the same command runs again. Run under
    'torchrun --nproc_per_node N -m recdrill train ...' to train sasrec data-parallel.
    """
    dataset = load_data(data_spec, columns, seed)
    split = make_split(dataset, split_kind)
    # An interrupted run of the same command resumes from this checkpoint (removed once trained).
    checkpoint = out / "training-checkpoint.pt"
    _, model, fit_seconds = fit_or_load(model_kind, split, "test", read_params(params_file), checkpoint)
    if int(os.environ.get("RANK", "0")) != 0:
        return  # under torchrun every rank holds the same weights: rank 0 writes them
    model.save(out)
    ShopSnapshot.from_dataset(split.test.fit_data).save(out)  # what a server needs beside the model
    click.echo(f"saved {model_kind} to {out} (fit {fit_seconds:.1f} s)")


@cli.command("seal")
@click.argument("model_dir", type=click.Path(file_okay=False, path_type=Path))
def seal_command(model_dir: Path) -> None:
    """Write MODEL_DIR/digests.json (and MODEL_DIR/fallback's) for a model saved before recdrill wrote
    digests, then load it. Every later load refuses a file changed, missing or added after this;
    seal only folders whose files you trust (a folder that has digests is checked, never re-sealed).
    """
    sealed = seal_model(model_dir)
    for folder in sealed:
        click.echo(f"sealed {folder}: digests.json lists its files")
    if not sealed:
        click.echo(f"{model_dir}: already sealed, and its files match their digests")


@cli.command("tune")
@data_options
@click.option(
    "--model", "model_kind", required=True, type=click.Choice(["itemknn", "sasrec"]), help="Model kind."
)
@click.option(
    "--minutes", type=click.FloatRange(min=0.1), default=30.0, show_default=True, help="Wall-time budget."
)
@click.option("--trials", type=click.IntRange(min=1), default=None, help="Stop after this many trials.")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="JSON file for the best parameters and every trial (usable as 'train --params').",
)
def tune_command(
    data_spec: str,
    split_kind: str,
    seed: int,
    columns: str | None,
    model_kind: str,
    minutes: float,
    trials: int | None,
    out: Path,
) -> None:
    """Search hyper-parameters with Optuna on the VALIDATION fold only, within a time budget."""
    from recdrill.models.tuning import tune  # Optuna is imported only by this command

    dataset = load_data(data_spec, columns, seed)
    split = make_split(dataset, split_kind)
    result = tune(
        model_kind,
        split.validation,
        budget_minutes=minutes,
        max_trials=trials,
        seed=seed,
        progress=lambda line: click.echo(line, err=True),
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(asdict(result), indent=2, default=str))
    click.echo(f"best validation NDCG@10 {result.best_value:.4f} with {result.best_params}")
    click.echo(f"{len(result.trials)} trials in {result.seconds:.0f} s; written to {out}", err=True)


@cli.group("data")
def data_group() -> None:
    """Inspect shop data."""


@data_group.command("report")
@click.option("--data", "data_spec", required=True, metavar="DATA", help=DATA_HELP)
@click.option("--columns", default=None, metavar="MAP", help="Column mapping for a generic CSV/Parquet.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for the synthetic shop.")
@json_option("Also write the data-quality report as JSON.")
def data_report_command(data_spec: str, columns: str | None, seed: int, json_out: Path | None) -> None:
    """Load data and print its data-quality report: rows read, kept, and dropped per reason."""
    dataset = load_dataset(data_spec, columns=columns, seed=seed)
    if dataset.quality is not None:
        click.echo(dataset.quality.format())
    click.echo(dataset.summary())
    if json_out is not None:
        quality = dataset.quality.to_dict() if dataset.quality is not None else None
        json_out.write_text(json.dumps({"dataset": dataset.name, "quality": quality}, indent=2))
