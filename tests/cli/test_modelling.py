"""``recdrill eval``, ``train``, ``tune``, ``seal`` and ``data report``: stable JSON, saved folders, one-line
errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from recdrill.cli import main
from recdrill.data.snapshot import ShopSnapshot
from tests.cli.conftest import SHOP


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


def test_eval_of_a_missing_model_folder_is_one_line(
    sequence_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gone = tmp_path / "models" / "gone"
    assert main(["eval", "--data", str(sequence_file), "--model", str(gone)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"recdrill: error: model {str(gone)!r}: no such model folder"


def test_eval_json_records_the_split_and_makes_its_folder(tmp_path: Path) -> None:
    out = tmp_path / "reports" / "nested" / "eval.json"
    args = ["eval", "--data", SHOP, "--model", "pop", "--split", "time", "--json", str(out)]
    assert main(args) == 0
    result = json.loads(out.read_text())
    assert result["split"] == "time" and result["fold"] == "test" and result["model"] == "pop"
    assert result["seconds"] == result["fit_seconds"] + result["eval_seconds"]


def test_train_saves_model_and_snapshot_and_says_where(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "knn"
    assert main(["train", "--data", SHOP, "--model", "itemknn", "--out", str(out)]) == 0
    assert capsys.readouterr().out.startswith(f"saved itemknn to {out} (fit ")
    assert json.loads((out / "model.json").read_text())["kind"] == "itemknn"
    assert ShopSnapshot.load(out) is not None
    assert not (out / "training-checkpoint.pt").exists()


def test_tune_output_feeds_train_params(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tuned = tmp_path / "tuned" / "best.json"
    args = ["tune", "--data", SHOP, "--model", "itemknn", "--trials", "2", "--minutes", "0.5"]
    assert main([*args, "--out", str(tuned)]) == 0
    result = json.loads(tuned.read_text())
    assert result["model"] == "itemknn" and 1 <= len(result["trials"]) <= 2
    assert result["best_value"] == max(t["value"] for t in result["trials"] if t["value"] is not None)
    assert capsys.readouterr().out.startswith(f"best validation NDCG@10 {result['best_value']:.4f}")
    out = tmp_path / "trained"
    assert (
        main(["train", "--data", SHOP, "--model", "itemknn", "--out", str(out), "--params", str(tuned)]) == 0
    )
    saved = json.loads((out / "model.json").read_text())["params"]
    assert {name: saved[name] for name in result["best_params"]} == result["best_params"]


def test_train_with_a_parameter_the_model_lacks_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    params = tmp_path / "p.json"
    params.write_text(json.dumps({"neighbors": 10}))
    args = [
        "train",
        "--data",
        SHOP,
        "--model",
        "itemknn",
        "--out",
        str(tmp_path / "m"),
        "--params",
        str(params),
    ]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("recdrill: error: itemknn has no parameter 'neighbors'; it has neighbours")
    assert not (tmp_path / "m").exists()


def test_tune_only_takes_tunable_models(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tune", "--data", SHOP, "--model", "pop", "--out", "t.json"]) == 2
    assert "'pop' is not one of 'itemknn', 'sasrec'" in capsys.readouterr().err


def test_data_report_prints_quality_and_writes_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = tmp_path / "q.csv"
    table.write_text("user_id,item_id,timestamp\na,x,1\nb,,2\nc,y,3\na,y,4\nb,x,5\nc,x,6\n")
    out = tmp_path / "quality.json"
    assert main(["data", "report", "--data", str(table), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "missing item" in printed and printed.strip().splitlines()[-1].startswith("q: 3 users")
    report = json.loads(out.read_text())
    assert report["dataset"] == "q"
    quality = report["quality"]
    assert (quality["rows_read"], quality["rows_kept"], quality["rows_dropped"]) == (6, 5, 1)


def test_seal_gives_an_older_model_folder_digests_and_refuses_a_changed_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "knn"
    assert main(["train", "--data", SHOP, "--model", "itemknn", "--out", str(out)]) == 0
    (out / "digests.json").unlink()  # as saved before recdrill wrote digests
    capsys.readouterr()
    assert main(["eval", "--data", SHOP, "--model", str(out)]) == 5
    assert f"'recdrill seal {out}'" in capsys.readouterr().err
    assert main(["seal", str(out)]) == 0
    assert capsys.readouterr().out == f"sealed {out}: digests.json lists its files\n"
    assert set(json.loads((out / "digests.json").read_text())["files"]) == {
        "model.json",
        "snapshot.npz",
        "state.npz",
    }
    assert main(["seal", str(out)]) == 0
    assert capsys.readouterr().out == f"{out}: already sealed, and its files match their digests\n"
    (out / "snapshot.npz").write_bytes(b"another shop")
    assert main(["seal", str(out)]) == 5
    err = capsys.readouterr().err
    assert (
        err == f"recdrill: error: {out / 'snapshot.npz'}: SHA-256 differs from the one in digests.json: "
        "the file changed after it was saved\n"
    )
