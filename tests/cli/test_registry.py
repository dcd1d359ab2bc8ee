"""``recdrill registry``: metrics files, listings, stage moves, and the canary calls' error paths.

The canary commands talk to a running server; here they meet none (no target, no key, a closed
port), and each mistake is one line with a non-zero exit. ``tests/registry/test_cli.py`` covers
push, verify, promote and rollback end to end.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from recdrill.cli import main
from recdrill.cli.registry import read_metrics
from recdrill.errors import ConfigError
from recdrill.registry.keys import init_keys
from recdrill.serving.runtime.child import free_port
from tests.cli.conftest import SHOP


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("registry-cli") / "knn"
    assert main(["train", "--data", SHOP, "--model", "itemknn", "--out", str(out)]) == 0
    return out


@pytest.fixture
def keyed_home(cli_home: Path) -> Path:
    init_keys(cli_home)
    return cli_home


@pytest.fixture
def closed_port_url() -> str:
    return f"http://127.0.0.1:{free_port()}"  # a free port: nothing listens there


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["registry", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_read_metrics_takes_eval_json_or_a_plain_object(tmp_path: Path) -> None:
    assert read_metrics(None) == {}
    evaluated = tmp_path / "eval.json"
    evaluated.write_text(json.dumps({"model": "pop", "metrics": {"NDCG@10": 0.2}, "seconds": 1.0}))
    assert read_metrics(evaluated) == {"NDCG@10": 0.2}
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps({"HR@10": 0.4}))
    assert read_metrics(plain) == {"HR@10": 0.4}
    plain.write_text(json.dumps({"metrics": [0.4]}))
    with pytest.raises(ConfigError, match="expected a JSON object of metrics"):
        read_metrics(plain)


def test_push_prints_version_and_path_and_records_eval_metrics(
    keyed_home: Path, model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    metrics = tmp_path / "eval.json"
    assert main(["eval", "--data", SHOP, "--model", str(model_dir), "--json", str(metrics)]) == 0
    capsys.readouterr()
    code, out, _ = run(capsys, "push", str(model_dir), "--metrics", str(metrics))
    version, path = out.split()
    assert code == 0 and version == "v1" and Path(path).parent == keyed_home / "artifacts"
    shown = json.loads(run(capsys, "show", "v1")[1])
    assert shown["metrics"] == json.loads(metrics.read_text())["metrics"]
    assert (shown["version"], shown["stage"], shown["path"]) == ("v1", "candidate", path)


@pytest.mark.parametrize(
    ("text", "code", "message"),
    [(None, 3, "eval.json: no such file"), ("{bad", 2, "eval.json: not valid JSON")],
    ids=["missing", "invalid"],
)
def test_a_bad_metrics_file_registers_nothing(
    text: str | None,
    code: int,
    message: str,
    keyed_home: Path,
    model_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    metrics = tmp_path / "eval.json"
    if text is not None:
        metrics.write_text(text)
    got, out, err = run(capsys, "push", str(model_dir), "--metrics", str(metrics))
    assert (got, out) == (code, "")
    assert err.startswith("recdrill: error: ") and message in err and err.count("\n") == 1
    assert json.loads(run(capsys, "list", "--json")[1]) == []


def test_list_of_an_empty_registry_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "list") == (0, "", "")
    code, out, _ = run(capsys, "list", "--json")
    assert (code, json.loads(out)) == (0, [])


def test_list_shows_one_row_per_version(
    keyed_home: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "push", str(model_dir))
    code, out, _ = run(capsys, "list")
    assert code == 0
    assert re.fullmatch(r"v1 +candidate +itemknn +parent=- +\S+ +[0-9a-f]{12}\n", out)
    [row] = json.loads(run(capsys, "list", "--json")[1])
    assert (row["version"], row["stage"], row["model_kind"]) == ("v1", "candidate", "itemknn")
    assert Path(row["path"]).is_dir()


def test_a_stage_and_a_canary_together_are_refused(
    keyed_home: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "push", str(model_dir))
    code, out, err = run(capsys, "promote", "v1", "production", "--canary", "10")
    assert (code, out) == (2, "")
    assert err == "recdrill: error: give a STAGE or --canary/--shadow, not both\n"
    assert json.loads(run(capsys, "show", "v1")[1])["stage"] == "candidate"


@pytest.mark.parametrize(
    "command",
    [
        ["promote", "v1", "--canary", "10"],
        ["promote", "v1", "--shadow"],
        ["canary-status"],
        ["canary-stop"],
    ],
    ids=["canary", "shadow", "status", "stop"],
)
def test_canary_calls_need_a_target_then_an_admin_key(
    command: list[str], closed_port_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, *command)
    assert (code, out) == (2, "")
    assert err == "recdrill: error: --target URL is needed: which server runs the canary?\n"
    code, out, err = run(capsys, *command, "--target", closed_port_url)
    assert (code, out) == (2, "")
    assert (
        err
        == "recdrill: error: RECDRILL_ADMIN_KEY is not set: canary calls need an admin (or operator) key\n"
    )


@pytest.mark.parametrize(
    "command",
    [["promote", "v1", "--canary", "10"], ["canary-status"], ["canary-stop"]],
    ids=["canary", "status", "stop"],
)
def test_an_unreachable_target_is_one_line_and_exit_1(
    command: list[str],
    closed_port_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("RECDRILL_ADMIN_KEY", "operator-key")
    code, out, err = run(capsys, *command, "--target", closed_port_url)
    assert (code, out) == (1, "")
    assert err.startswith(f"recdrill: error: {closed_port_url}: ConnectError") and err.count("\n") == 1
    assert "operator-key" not in err


def test_an_unreadable_ca_bundle_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RECDRILL_ADMIN_KEY", "k")
    bundle = tmp_path / "ca.pem"
    bundle.write_text("no certificate here\n")
    code, _, err = run(capsys, "canary-status", "--target", "https://127.0.0.1:1", "--ca-bundle", str(bundle))
    assert code == 2 and err.startswith(f"recdrill: error: {bundle}: not a readable PEM CA bundle")


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--canary", "0"], "--canary"),
        (["--canary", "101"], "--canary"),
        (["--shadow", "--min-samples", "1"], "--min-samples"),
        (["--shadow", "--max-ndcg-drop", "1"], "--max-ndcg-drop"),
        (["--shadow", "--max-p99-ratio", "0.9"], "--max-p99-ratio"),
    ],
)
def test_canary_knobs_out_of_range_are_usage_errors(
    args: list[str], option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "promote", "v1", *args)
    assert (code, out) == (2, "") and f"Invalid value for '{option}'" in err


def test_verify_watermark_needs_the_secret_and_reports_an_unmarked_model(
    cli_home: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "verify-watermark", str(model_dir))
    assert (code, out) == (6, "") and "no watermark key; run 'recdrill keys init'" in err
    init_keys(cli_home)
    code, out, _ = run(capsys, "verify-watermark", str(model_dir), "--json")
    result = json.loads(out)
    assert code == 0 and result["owned"] is False and result["commitment_matches"] is None
    assert result["p_value"] >= result["alpha"] and result["queries"] > 0
    code, out, _ = run(capsys, "verify-watermark", str(model_dir))
    assert code == 0 and out.startswith(f"{model_dir}: not shown to be owned (p = ")
