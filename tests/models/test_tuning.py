from __future__ import annotations

import json
from pathlib import Path

import pytest

from recdrill.cli import main
from recdrill.data.loading import load_dataset
from recdrill.data.splits import leave_one_out
from recdrill.errors import ConfigError
from recdrill.models.tuning import tune
from tests.conftest import write_sequences_with_last


def test_tune_searches_on_validation_only(tmp_path: Path) -> None:
    # Same shop but for every user's test item: the search must come out the same.
    results = []
    for name, last in (("a.txt", [2] * 40), ("b.txt", [3 + u % 5 for u in range(40)])):
        split = leave_one_out(load_dataset(str(write_sequences_with_last(tmp_path / name, last))))
        results.append(tune("itemknn", split.validation, budget_minutes=1, max_trials=4, seed=1))
    assert [t["value"] for t in results[0].trials] == [t["value"] for t in results[1].trials]
    assert results[0].best_params == results[1].best_params and len(results[0].trials) == 4
    assert results[0].best_value == max(t["value"] for t in results[0].trials)


def test_unknown_model_and_bad_budget_are_refused(tmp_path: Path) -> None:
    split = leave_one_out(load_dataset(str(write_sequences_with_last(tmp_path / "a.txt", [2] * 10))))
    with pytest.raises(ConfigError, match="no search space for 'pop'"):
        tune("pop", split.validation, budget_minutes=1)
    with pytest.raises(ConfigError, match="budget_minutes must be positive"):
        tune("itemknn", split.validation, budget_minutes=0)


def test_tune_then_train_with_the_best_params(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(write_sequences_with_last(tmp_path / "a.txt", [2] * 40))
    best, bad = tmp_path / "best.json", tmp_path / "bad.json"
    tune_args = f"tune --data {data} --model itemknn --minutes 1 --trials 3 --out {best}"
    assert main(tune_args.split()) == 0
    params = json.loads(best.read_text())["best_params"]
    train_args = f"train --data {data} --model itemknn --params {{}} --out {tmp_path}/{{}}"
    assert main(train_args.format(best, "m").split()) == 0
    saved = json.loads((tmp_path / "m" / "model.json").read_text())["params"]
    assert all(saved[k] == v for k, v in params.items())
    bad.write_text(json.dumps({"colour": 3}))
    capsys.readouterr()
    assert main(train_args.format(bad, "m2").split()) == 2
    assert "itemknn has no parameter 'colour'" in capsys.readouterr().err
