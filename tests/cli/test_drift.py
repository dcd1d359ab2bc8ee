"""``recdrill drift check``: the printed table, where the JSON and HTML go, and column selection.

``tests/monitor/test_drift_cli.py`` covers the tests chosen per column and the bad inputs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recdrill.cli import main


@pytest.fixture
def same_shop(tmp_path: Path) -> tuple[Path, Path]:
    """Two samples of one distribution: nothing drifts."""
    rng = np.random.default_rng(0)

    def sample(n: int, path: Path) -> Path:
        frame = pd.DataFrame({"price": rng.normal(20, 3, n).round(2), "category": rng.choice(["a", "b"], n)})
        frame.to_csv(path, index=False)
        return path

    return sample(500, tmp_path / "ref.csv"), sample(400, tmp_path / "cur.csv")


def _check(capsys: pytest.CaptureFixture[str], ref: Path, cur: Path, *extra: str) -> tuple[int, str, str]:
    code = main(["drift", "check", "--reference", str(ref), "--current", str(cur), *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_no_drift_prints_the_table_and_the_verdict(
    same_shop: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _check(capsys, *same_shop)
    lines = out.strip().splitlines()
    assert (code, err) == (0, "")
    assert lines[0].split() == ["column", "kind", "method", "score", "threshold", "drift"]
    assert [line.split()[0] for line in lines[1:3]] == ["price", "category"]
    assert all(line.split()[-1] == "no" for line in lines[1:3])
    assert lines[-1] == "dataset: no drift (0 of 2 columns drifted)"


def test_json_and_html_are_written_into_new_folders(
    same_shop: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, page = tmp_path / "a" / "b" / "drift.json", tmp_path / "c" / "drift.html"
    code, _, err = _check(capsys, *same_shop, "--json", str(out), "--html", str(page))
    assert code == 0 and err == f"wrote {page}\n"
    result = json.loads(out.read_text())
    assert result["dataset_drift"] is False and set(result["columns"]) == {"price", "category"}
    assert out.read_text().endswith("}\n")
    assert page.read_text().lstrip().lower().startswith("<!doctype html")


def test_columns_option_ignores_blanks_and_keeps_the_order_given(
    same_shop: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "d.json"
    code, stdout, _ = _check(capsys, *same_shop, "--columns", " category, ,price,", "--json", str(out))
    assert code == 0 and list(json.loads(out.read_text())["columns"]) == ["category", "price"]
    assert stdout.strip().splitlines()[-1] == "dataset: no drift (0 of 2 columns drifted)"


def test_nothing_is_written_when_the_check_fails(
    same_shop: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, page = tmp_path / "d.json", tmp_path / "d.html"
    code, stdout, err = _check(
        capsys, *same_shop, "--method", "cosine", "--json", str(out), "--html", str(page)
    )
    assert (code, stdout) == (2, "") and err.startswith("recdrill: error: unknown drift method 'cosine'")
    assert not out.exists() and not page.exists()


def test_reference_and_current_are_required(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["drift", "check", "--current", str(tmp_path / "c.csv")]) == 2
    assert "Missing option '--reference'" in capsys.readouterr().err
    assert main(["drift", "check", "--reference", str(tmp_path / "r.csv")]) == 2
    assert "Missing option '--current'" in capsys.readouterr().err
