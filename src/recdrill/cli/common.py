"""Options and steps the commands share: loading data, splitting, fitting or loading a model."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from recdrill.data.dataset import Dataset
from recdrill.data.loading import load_dataset
from recdrill.data.splits import Split, leave_one_out, time_split_by_fraction
from recdrill.errors import ConfigError, DataFileNotFoundError
from recdrill.eval.evaluate import EvalReport
from recdrill.models.base import BaseRecommender
from recdrill.models.factory import MODEL_KINDS, load_model, model_class

if TYPE_CHECKING:
    from recdrill.registry.registry import Registry  # imported when a command opens it

Command = TypeVar("Command", bound=Callable[..., Any])

DATA_HELP = (
    "'shopsim' (synthetic shop; 'shopsim:n_items=2000,n_users=1000' to resize), a SASRec-format .txt, "
    "the Online Retail parquet, or an interactions CSV/Parquet."
)
MODEL_HELP = f"A model kind ({', '.join(sorted(MODEL_KINDS))}) or a folder written by 'recdrill train'."


def data_options(command: Any) -> Any:
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


def json_option(help_text: str) -> Callable[[Command], Command]:
    return click.option(
        "--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), default=None, help=help_text
    )


def load_data(data_spec: str, columns: str | None, seed: int) -> Dataset:
    click.echo(f"loading {data_spec} ...", err=True)
    dataset = load_dataset(data_spec, columns=columns, seed=seed)
    if dataset.quality is not None and dataset.quality.rows_dropped:
        click.echo(dataset.quality.format(), err=True)
    click.echo(dataset.summary(), err=True)
    return dataset


def make_split(dataset: Dataset, kind: str) -> Split:
    return leave_one_out(dataset) if kind == "loo" else time_split_by_fraction(dataset)


def read_json_object(path: Path | None, key: str, what: str) -> dict[str, Any]:
    """A JSON object from ``path``: its ``key`` member when it has one (what another recdrill command
    wrote), else the object itself; ``{}`` without a path. ``what`` names it in errors."""
    if path is None:
        return {}
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataFileNotFoundError(path) from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON: {exc}") from exc
    found = raw.get(key, raw) if isinstance(raw, dict) else None
    if not isinstance(found, dict):
        raise ConfigError(f"{path}: expected a JSON object of {what}")
    return found


def read_params(path: Path | None) -> dict[str, Any]:
    """Hyper-parameters from JSON: what `recdrill tune` writes (its `best_params`), or a plain object."""
    return read_json_object(path, "best_params", "hyper-parameters")


def fit_or_load(
    model_spec: str,
    split: Split,
    fold: str,
    params: dict[str, Any] | None = None,
    checkpoint: Path | None = None,
) -> tuple[str, BaseRecommender, float]:
    """A model fitted on the fold's training data, or a saved one checked against the catalogue.

    Models that train in epochs save their progress to ``checkpoint`` and resume from it.
    """
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
    cls = model_class(model_spec)
    unknown = sorted(set(params or {}) - set(cls.param_names()))
    if unknown:
        raise ConfigError(
            f"{model_spec} has no parameter {unknown[0]!r}; it has {', '.join(cls.param_names()) or 'none'}"
        )
    model = cls(**(params or {}))
    if "verbose" in model.param_names():
        model.verbose = True  # type: ignore[attr-defined]  # a progress bar for models that train long
    if checkpoint is not None and hasattr(model, "checkpoint_path"):
        model.checkpoint_path = checkpoint
    model.fit(data)
    return model_spec, model, time.perf_counter() - started


def report_dict(report: EvalReport, fit_seconds: float, split: Split) -> dict[str, Any]:
    out = report.to_dict()
    out["fit_seconds"] = fit_seconds
    out["eval_seconds"] = report.seconds
    out["seconds"] = fit_seconds + report.seconds
    out["split"] = split.kind
    return out


HOME_HELP = "Registry home (default: $RECDRILL_HOME, else ~/.recdrill)."


def home_option(command: Any) -> Any:
    return click.option(
        "--home", type=click.Path(file_okay=False, path_type=Path), default=None, help=HOME_HELP
    )(command)


def target_options(command: Any) -> Any:
    command = click.option(
        "--ca-bundle",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        default=None,
        help="PEM CA certificates an https target must chain to (default: the system store).",
    )(command)
    return click.option("--target", default=None, metavar="URL", help="The running server's base URL.")(
        command
    )


def open_registry(home: Path | None) -> Registry:
    from recdrill.registry.registry import Registry

    return Registry(home)
