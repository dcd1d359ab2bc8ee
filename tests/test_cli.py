"""The command line: help everywhere, stable JSON, and one-line errors with non-zero exits."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import click
import pandas as pd
import pytest

from recdrill.cli import cli, main


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix]
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found += _commands(command, (*prefix, name))
        else:
            found.append((*prefix, name))
    return found


@pytest.mark.parametrize("command", _commands(cli), ids=lambda c: " ".join(c) or "recdrill")
def test_every_command_has_help(command: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*command, "--help"]) == 0
    assert "Usage: recdrill" in capsys.readouterr().out


@pytest.fixture
def sequence_file(tmp_path: Path) -> Path:
    # 30 users walking an 8-item cycle: item-to-item must beat popularity here.
    lines = [f"{u + 1} " + " ".join(str((u + j) % 8 + 1) for j in range(6)) for u in range(30)]
    path = tmp_path / "cycle.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def _eval_json(tmp_path: Path, data: Path, model: str) -> dict[str, object]:
    out = tmp_path / f"{Path(model).name}.json"
    assert main(["eval", "--data", str(data), "--model", model, "--json", str(out)]) == 0
    result: dict[str, object] = json.loads(out.read_text())
    return result


def test_eval_writes_the_stable_json_shape(tmp_path: Path, sequence_file: Path) -> None:
    result = _eval_json(tmp_path, sequence_file, "itemknn")
    assert result["dataset"] == "cycle" and result["model"] == "itemknn"
    metrics = result["metrics"]
    assert isinstance(metrics, dict)
    assert set(metrics) == {"HR@5", "NDCG@5", "HR@10", "NDCG@10", "HR@20", "NDCG@20", "MRR"}
    assert metrics["HR@5"] == 1.0  # the next item of a cycle is always its strongest neighbour
    assert isinstance(result["seconds"], float)
    assert result["metrics"] != _eval_json(tmp_path, sequence_file, "pop")["metrics"]


def test_train_then_eval_saved_model_matches_direct_eval(tmp_path: Path, sequence_file: Path) -> None:
    model_dir = tmp_path / "saved-catpop"
    assert main(["train", "--data", str(sequence_file), "--model", "catpop", "--out", str(model_dir)]) == 0
    assert (model_dir / "model.json").is_file()
    saved = _eval_json(tmp_path, sequence_file, str(model_dir))
    direct = _eval_json(tmp_path, sequence_file, "catpop")
    assert saved["metrics"] == direct["metrics"]


def test_saved_model_from_another_split_is_flagged(
    tmp_path: Path, sequence_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model_dir = tmp_path / "saved-pop"
    assert main(["train", "--data", str(sequence_file), "--model", "pop", "--out", str(model_dir)]) == 0
    assert main(["eval", "--data", str(sequence_file), "--model", str(model_dir)]) == 0
    assert "warning" not in capsys.readouterr().err
    assert (
        main(["eval", "--data", str(sequence_file), "--model", str(model_dir), "--fold", "validation"]) == 0
    )
    assert "was not fitted on this fold's training data" in capsys.readouterr().err


def _write_truncated_parquet(tmp_path: Path) -> Path:
    path = tmp_path / "cut.parquet"
    pd.DataFrame({"user_id": ["a", "b"], "item_id": ["x", "y"], "timestamp": [1, 2]}).to_parquet(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _writer(name: str, text: str) -> Callable[[Path], Path]:
    def write(folder: Path) -> Path:
        (folder / name).write_text(text)
        return folder / name

    return write


BAD_INPUTS = {
    "empty file": (_writer("empty.txt", ""), 4, "empty.txt: file is empty"),
    "non-integer id": (_writer("bad.txt", "1 2 3\n2 4 x9\n"), 4, "bad.txt:2: item id 'x9' is not an integer"),
    "missing column": (_writer("cols.csv", "uid,item_id\n1,2\n"), 4, "user_id"),
    "truncated parquet": (_write_truncated_parquet, 4, "cut.parquet"),
    "missing file": (lambda p: p / "nope.txt", 3, "nope.txt: no such file"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_gives_one_line_and_nonzero_exit(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make, code, fragment = BAD_INPUTS[case]
    path = make(tmp_path)
    assert main(["eval", "--data", str(path), "--model", "pop"]) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and err[0].startswith("loading")  # progress line, then the error
    assert err[1].startswith("recdrill: error: ") and fragment in err[1]


def test_unknown_model_is_a_usage_error(sequence_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "--data", str(sequence_file), "--model", "bert"]) == 2
    assert "unknown model 'bert'" in capsys.readouterr().err


def test_installed_script_exits_non_zero_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("1 2 3\nu2 4\n")
    script = Path(sys.executable).with_name("recdrill")
    run = subprocess.run(
        [str(script), "data", "report", "--data", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 4
    assert run.stderr.count("\n") == 1 and "bad.txt:2" in run.stderr and run.stdout == ""
