"""``recdrill drift check`` on real CSV and Parquet files: the stable JSON, forcing, bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from recdrill.cli import main


def _tables(n_ref: int, n_cur: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Price and basket size drift, category mix and weekday do not."""
    rng = np.random.default_rng(seed)

    def table(n: int, price_mean: float, basket_mean: float) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "price": rng.normal(price_mean, 3.0, n).round(2),
                "basket": rng.poisson(basket_mean, n),
                "category": rng.choice(["books", "toys", "food"], n, p=[0.5, 0.3, 0.2]),
                "weekday": rng.integers(0, 7, n),
            }
        )

    return table(n_ref, 20.0, 3.0), table(n_cur, 23.0, 6.0)


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["drift", "check", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _check(
    tmp_path: Path, ref: Path, cur: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> dict[str, Any]:
    out = tmp_path / "drift.json"
    code, stdout, _ = _run(
        ["--reference", str(ref), "--current", str(cur), "--json", str(out), *extra], capsys
    )
    assert code == 0
    assert "dataset: DRIFT (2 of 4 columns drifted)" in stdout
    result: dict[str, Any] = json.loads(out.read_text())
    return result


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_small_reference_gets_ks_and_chi2_with_the_exact_json_shape(
    tmp_path: Path, suffix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ref, cur = _tables(800, 600)
    paths = [tmp_path / f"reference{suffix}", tmp_path / f"current{suffix}"]
    for frame, path in zip((ref, cur), paths, strict=True):
        frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path, index=False)
    result = _check(tmp_path, *paths, capsys)
    assert set(result) == {"columns", "dataset_drift"} and result["dataset_drift"] is True
    assert list(result["columns"]) == ["price", "basket", "category", "weekday"]
    for entry in result["columns"].values():
        assert set(entry) == {"method", "score", "threshold", "drift", "kind"}
        assert isinstance(entry["score"], float) and isinstance(entry["drift"], bool)
    methods = {name: (e["method"], e["threshold"], e["drift"]) for name, e in result["columns"].items()}
    assert methods == {
        "price": ("ks", 0.05, True),
        "basket": ("ks", 0.05, True),
        "category": ("chi2", 0.05, False),
        "weekday": ("ks", 0.05, False),  # 7 distinct numbers: more than 5, so a numeric test
    }


def test_large_reference_gets_wasserstein_and_js(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ref, cur = _tables(3000, 1000, seed=1)
    ref.to_csv(tmp_path / "ref.csv", index=False)
    cur.to_csv(tmp_path / "cur.csv", index=False)
    result = _check(tmp_path, tmp_path / "ref.csv", tmp_path / "cur.csv", capsys)
    methods = {name: (e["method"], e["threshold"], e["drift"]) for name, e in result["columns"].items()}
    assert methods == {
        "price": ("wasserstein", 0.1, True),
        "basket": ("wasserstein", 0.1, True),
        "category": ("js", 0.1, False),
        "weekday": ("wasserstein", 0.1, False),
    }


def test_method_is_forced_where_it_fits(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ref, cur = _tables(800, 600, seed=2)
    ref.to_parquet(tmp_path / "ref.parquet")
    cur.to_parquet(tmp_path / "cur.parquet")
    files = (tmp_path / "ref.parquet", tmp_path / "cur.parquet")
    psi = _check(tmp_path, *files, capsys, "--method", "psi")["columns"]
    assert {e["method"] for e in psi.values()} == {"psi"} and all(e["forced"] for e in psi.values())
    wasserstein = _check(tmp_path, *files, capsys, "--method", "wasserstein")["columns"]
    assert [e["method"] for e in wasserstein.values()] == [
        "wasserstein",
        "wasserstein",
        "chi2",
        "wasserstein",
    ]
    assert wasserstein["category"]["forced"] is False  # categorical: it kept its default test
    chi2 = _check(tmp_path, *files, capsys, "--method", "chi2")["columns"]
    assert [e["method"] for e in chi2.values()] == ["ks", "ks", "chi2", "ks"]


def test_columns_option_and_html_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ref, cur = _tables(800, 600, seed=3)
    ref.to_csv(tmp_path / "ref.csv", index=False)
    cur.to_csv(tmp_path / "cur.csv", index=False)
    out, page = tmp_path / "d.json", tmp_path / "report" / "drift.html"
    args = ["--reference", str(tmp_path / "ref.csv"), "--current", str(tmp_path / "cur.csv")]
    code, stdout, _ = _run(
        [*args, "--columns", "price,category", "--json", str(out), "--html", str(page)], capsys
    )
    assert code == 0
    assert stdout.splitlines()[1].split()[:3] == ["price", "numeric", "ks"]
    result = json.loads(out.read_text())
    assert list(result["columns"]) == ["price", "category"]
    assert result["dataset_drift"] is True  # 1 of 2 columns: the share reaches 0.5
    text = page.read_text()
    assert text.count("data:image/png;base64,") == 2 and "<td>price</td>" in text
    assert "http" not in text  # self-contained


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("make_current", "extra", "code", "message"),
    [
        (lambda d: d / "absent.csv", [], 3, "absent.csv: no such file"),
        (lambda d: _write(d / "empty.csv", ""), [], 4, "empty.csv: file is empty"),
        (lambda d: _write(d / "header.csv", "price,category\n"), [], 4, "header.csv: no rows"),
        (
            lambda d: _write(d / "other.csv", "price,colour\n1.0,red\n"),
            [],
            4,
            "columns differ from the reference",
        ),
        (lambda d: _write(d / "data.json", "{}"), [], 4, "unsupported file type '.json'"),
        (lambda d: _write(d / "bad.parquet", "not parquet"), [], 4, "cannot read Parquet file"),
        (lambda d: d / "ref.csv", ["--method", "cosine"], 2, "unknown drift method 'cosine'"),
        (lambda d: d / "ref.csv", ["--method", "mmd"], 2, "'mmd' compares embedding vectors"),
        (lambda d: d / "ref.csv", ["--columns", "price,size"], 2, "column 'size' is not in both tables"),
        (
            lambda d: _write(d / "text.csv", "price,category\nabc,books\n"),
            [],
            4,
            "numbers in the reference but not",
        ),
        (
            lambda d: _write(d / "nulls.csv", "price,category\n,books\n"),
            [],
            4,
            "column 'price' has no values",
        ),
    ],
)
def test_bad_input_exits_non_zero_with_one_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    make_current: Any,
    extra: list[str],
    code: int,
    message: str,
) -> None:
    reference = _write(tmp_path / "ref.csv", "price,category\n1.5,books\n2.5,toys\n3.5,books\n")
    current = make_current(tmp_path)
    got, _, stderr = _run(["--reference", str(reference), "--current", str(current), *extra], capsys)
    assert got == code
    assert stderr.startswith("recdrill: error: ") and message in stderr
    assert len(stderr.strip().splitlines()) == 1
