"""The shared CLI steps: option decorators, hyper-parameter files, loading data, fitting or loading."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from recdrill.cli import cli, main
from recdrill.cli.common import (
    fit_or_load,
    home_option,
    load_data,
    make_split,
    open_registry,
    read_json_object,
    read_params,
    report_dict,
    target_options,
)
from recdrill.data.loading import load_dataset
from recdrill.errors import ConfigError, DataFileNotFoundError
from recdrill.eval.evaluate import evaluate
from tests.cli.conftest import SHOP

THROWAWAY = "options-for-test"


@pytest.fixture
def option_command() -> Iterator[None]:
    """``recdrill options-for-test``: echoes what ``home_option`` and ``target_options`` parsed."""

    @click.command(THROWAWAY)
    @target_options
    @home_option
    def command(target: str | None, ca_bundle: Path | None, home: Path | None) -> None:
        click.echo(json.dumps({"target": target, "ca_bundle": _text(ca_bundle), "home": _text(home)}))

    cli.add_command(command)
    yield
    cli.commands.pop(THROWAWAY, None)


def _text(path: Path | None) -> str | None:
    return None if path is None else str(path)


def _parsed(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, str | None]:
    assert main([THROWAWAY, *args]) == 0
    parsed: dict[str, str | None] = json.loads(capsys.readouterr().out)
    return parsed


@pytest.mark.usefixtures("option_command")
def test_home_and_target_options_default_to_none(capsys: pytest.CaptureFixture[str]) -> None:
    assert _parsed(capsys) == {"target": None, "ca_bundle": None, "home": None}


@pytest.mark.usefixtures("option_command")
def test_home_and_target_options_pass_their_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("not checked here\n")
    parsed = _parsed(
        capsys, "--home", str(tmp_path / "h"), "--target", "https://shop:8443", "--ca-bundle", str(bundle)
    )
    assert parsed == {"target": "https://shop:8443", "ca_bundle": str(bundle), "home": str(tmp_path / "h")}


@pytest.mark.usefixtures("option_command")
def test_a_missing_ca_bundle_or_a_file_as_home_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([THROWAWAY, "--ca-bundle", str(tmp_path / "absent.pem")]) == 2
    assert "absent.pem' does not exist" in capsys.readouterr().err
    a_file = tmp_path / "file"
    a_file.write_text("")
    assert main([THROWAWAY, "--home", str(a_file)]) == 2
    assert "is a file" in capsys.readouterr().err


def test_read_params_takes_tune_output_a_plain_object_or_nothing(tmp_path: Path) -> None:
    assert read_params(None) == {}
    tuned = tmp_path / "tuned.json"
    tuned.write_text(json.dumps({"model": "itemknn", "best_params": {"neighbours": 7}, "trials": []}))
    assert read_params(tuned) == {"neighbours": 7}
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps({"neighbours": 9, "window": 2}))
    assert read_params(plain) == {"neighbours": 9, "window": 2}


@pytest.mark.parametrize(
    ("text", "error", "message"),
    [
        (None, DataFileNotFoundError, "params.json: no such file"),
        ("{not json", ConfigError, "params.json: not valid JSON"),
        ("[1, 2]", ConfigError, "params.json: expected a JSON object of hyper-parameters"),
        ('{"best_params": 3}', ConfigError, "expected a JSON object of hyper-parameters"),
    ],
)
def test_read_params_refuses_what_is_not_a_json_object(
    tmp_path: Path, text: str | None, error: type[Exception], message: str
) -> None:
    path = tmp_path / "params.json"
    if text is not None:
        path.write_text(text)
    with pytest.raises(error, match=message):
        read_params(path)


def test_read_json_object_names_what_it_expected(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"metrics": {"NDCG@10": 0.3}, "model": "pop"}))
    assert read_json_object(path, "metrics", "metrics") == {"NDCG@10": 0.3}
    path.write_text('"text"')
    with pytest.raises(ConfigError, match="expected a JSON object of metrics"):
        read_json_object(path, "metrics", "metrics")


def test_load_data_reports_progress_and_dropped_rows_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = tmp_path / "q.csv"
    table.write_text("user_id,item_id,timestamp\na,x,1\nb,,2\nc,y,3\na,y,4\nb,x,5\nc,x,6\n")
    dataset = load_data(str(table), None, 0)
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"loading {table} ...\n")
    assert "missing item" in err and "rows kept             5" in err
    assert err.strip().splitlines()[-1] == "q: 3 users, 2 items, 5 interactions, mean history 1.7"
    assert len(dataset.interactions) == 5


def test_load_data_of_a_clean_shop_prints_no_quality_table(capsys: pytest.CaptureFixture[str]) -> None:
    dataset = load_data(SHOP, None, 0)
    assert capsys.readouterr().err.splitlines() == [
        f"loading {SHOP} ...",
        "shopsim: 400 users, 300 items, 8,000 interactions, mean history 20.0",
    ]
    assert (dataset.n_users, len(dataset.interactions)) == (400, 8000)


def test_make_split_chooses_the_protocol() -> None:
    dataset = load_dataset(SHOP)
    assert make_split(dataset, "loo").kind == "leave-one-out"
    assert make_split(dataset, "time").kind == "time"


def test_fit_or_load_refuses_unknown_parameters_and_missing_folders(tmp_path: Path) -> None:
    split = make_split(load_dataset(SHOP), "loo")
    with pytest.raises(ConfigError, match=r"itemknn has no parameter 'depth'; it has neighbours, window"):
        fit_or_load("itemknn", split, "test", {"depth": 3})
    with pytest.raises(ConfigError, match="pop has no parameter 'k'; it has none"):
        fit_or_load("pop", split, "test", {"k": 3})
    with pytest.raises(ConfigError, match="no such model folder"):
        fit_or_load(str(tmp_path / "models" / "gone"), split, "test")


def test_fit_or_load_fits_a_kind_with_params_and_loads_a_saved_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    split = make_split(load_dataset(SHOP), "loo")
    name, model, _ = fit_or_load("itemknn", split, "test", {"neighbours": 11})
    assert name == "itemknn" and model.get_params()["neighbours"] == 11
    assert "fitting itemknn on 7,600 interactions" in capsys.readouterr().err
    model.save(tmp_path / "knn-11")
    name, loaded, fit_seconds = fit_or_load(str(tmp_path / "knn-11"), split, "test")
    assert (name, fit_seconds) == ("knn-11", 0.0) and loaded.get_params()["neighbours"] == 11
    assert "warning" not in capsys.readouterr().err  # fitted on this very fold
    fit_or_load(str(tmp_path / "knn-11"), split, "validation")
    assert "was not fitted on this fold's training data" in capsys.readouterr().err


def test_report_dict_adds_timings_and_the_split() -> None:
    split = make_split(load_dataset(SHOP), "time")
    _, model, _ = fit_or_load("pop", split, "test")
    report = evaluate(model, split.test, model_name="pop")
    out = report_dict(report, 1.5, split)
    assert out["split"] == "time" and out["model"] == "pop" and out["fit_seconds"] == 1.5
    assert out["eval_seconds"] == report.seconds and out["seconds"] == 1.5 + report.seconds
    assert set(out["metrics"]) >= {"HR@10", "NDCG@10"}


def test_open_registry_uses_the_home_given(tmp_path: Path) -> None:
    assert open_registry(tmp_path / "elsewhere").home == tmp_path / "elsewhere"
    assert open_registry(None).home == tmp_path / "home"  # RECDRILL_HOME, set by tests/cli/conftest.py
