"""``recdrill monitor respond``: option checks, and what an applied decision leaves in the registry home.

``tests/monitor/response/test_responder.py`` covers the decision itself and ``--dry-run``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recdrill.cli import main
from recdrill.data.dataset import EventType
from recdrill.data.loading import load_dataset
from recdrill.models.itemknn import ItemKNNRecommender
from recdrill.registry.keys import init_keys
from recdrill.registry.registry import Registry
from recdrill.registry.stages import Stage
from recdrill.serving.runtime.child import free_port

SHOP = "shopsim:n_items=300,n_users=400,n_events=12000,days=30"  # a month: a recent window to tune on


@pytest.fixture(scope="module")
def model_and_events(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """An item-to-item model fitted on the shop's first 60% of time, the rest as a feedback export."""
    folder = tmp_path_factory.mktemp("respond")
    shop = load_dataset(SHOP)
    t = shop.interactions.timestamp
    cut = int(t.min() + 0.6 * (t.max() - t.min()))
    train = shop.with_interactions(shop.interactions.select(t < cut))
    recent = shop.with_interactions(shop.interactions.select(t >= cut))
    ItemKNNRecommender().fit(train).save(folder / "model")
    inter = recent.interactions
    pd.DataFrame(
        {
            "id": np.arange(len(inter)),
            "user_id": recent.user_ids[inter.user].astype(str),
            "item_id": recent.catalog.item_ids[inter.item].astype(str),
            "event": [EventType(e).name.lower() for e in inter.event],
            "timestamp": inter.timestamp.astype(float),
        }
    ).to_parquet(folder / "recent.parquet")
    return folder / "model", folder / "recent.parquet"


def respond(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, list[str]]:
    code = main(["monitor", "respond", "--data", SHOP, *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err.strip().splitlines()


def test_model_and_registry_version_together_are_refused(
    model_and_events: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    model, events = model_and_events
    args = ["--model", str(model), "--registry-version", "v1", "--recent", str(events), "--dry-run"]
    code, out, err = respond(capsys, *args)
    assert (code, out) == (2, "")
    assert err == [
        "recdrill: error: give the current model as --model DIR or --registry-version V (one of them)"
    ]


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--canary", "0"], "--canary"),
        (["--canary", "100.5"], "--canary"),
        (["--window-days", "0"], "--window-days"),
    ],
)
def test_out_of_range_settings_are_usage_errors(
    args: list[str], option: str, model_and_events: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    model, events = model_and_events
    code, out, err = respond(capsys, "--model", str(model), "--recent", str(events), *args)
    assert (code, out) == (2, "") and f"Invalid value for '{option}'" in err[-1]


def test_an_unknown_registry_version_exits_6(
    model_and_events: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, events = model_and_events
    code, out, err = respond(capsys, "--registry-version", "v9", "--recent", str(events), "--dry-run")
    assert (code, out) == (6, "")
    assert err[-1] == "recdrill: error: no registered version 'v9'; 'recdrill registry list' shows them"


def test_a_kept_candidate_is_archived_and_the_decision_recorded(
    model_and_events: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, events = model_and_events
    home = tmp_path / "registry-home"
    init_keys(home)
    args = ["--model", str(model), "--recent", str(events), "--window-days", "30", "--min-gain", "10"]
    code, out, err = respond(
        capsys, *args, "--triggered-by", "price, history_category", "--home", str(home), "--workdir", "w"
    )
    decision = json.loads(out)
    assert code == 0 and decision["decision"] == "keep"
    assert decision["applied"] == "archived: kept the current model" and decision["candidate_version"] == "v1"
    assert decision["triggered_by"] == ["price", "history_category"]
    assert err[-1] == f"keep: {decision['reason']} (archived: kept the current model)"
    [recorded] = [json.loads(line) for line in (home / "responses.jsonl").read_text().splitlines()]
    assert recorded == decision
    registry = Registry(home)
    assert registry.show("v1").stage is Stage.ARCHIVED and registry.current(Stage.PRODUCTION) == []


def test_a_winner_without_a_target_becomes_production(
    model_and_events: tuple[Path, Path], cli_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, events = model_and_events
    init_keys(cli_home)  # RECDRILL_HOME, the default registry
    args = ["--model", str(model), "--recent", str(events), "--window-days", "30", "--min-gain", "-1"]
    code, out, _ = respond(capsys, *args)
    decision = json.loads(out)
    assert code == 0 and (decision["decision"], decision["applied"]) == ("promote", "production")
    assert Registry(cli_home).current(Stage.PRODUCTION) == [decision["candidate_version"]]


def test_a_target_without_the_admin_key_is_refused_before_training(
    model_and_events: tuple[Path, Path], cli_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, events = model_and_events
    args = ["--model", str(model), "--recent", str(events), "--target", "http://127.0.0.1:1"]
    code, out, err = respond(capsys, *args)
    assert (code, out) == (2, "")
    assert err == [
        "recdrill: error: RECDRILL_ADMIN_KEY is not set: starting a canary on --target needs an admin key"
    ]
    assert not cli_home.exists()  # nothing pushed, nothing recorded


def test_an_unreachable_target_fails_in_one_line_and_is_recorded(
    model_and_events: tuple[Path, Path],
    cli_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    model, events = model_and_events
    init_keys(cli_home)
    monkeypatch.setenv("RECDRILL_ADMIN_KEY", "respond-key")
    nobody = f"http://127.0.0.1:{free_port()}"
    args = ["--model", str(model), "--recent", str(events), "--window-days", "30", "--min-gain", "-1"]
    code, out, err = respond(capsys, *args, "--target", nobody)
    assert (code, out) == (1, "")
    assert err[-1].startswith(f"recdrill: error: {nobody}: ConnectError")
    [recorded] = [json.loads(line) for line in (cli_home / "responses.jsonl").read_text().splitlines()]
    assert str(recorded["applied"]).startswith("failed: RecdrillError")
    registry = Registry(cli_home)
    assert registry.current(Stage.PRODUCTION) == []
    assert registry.show(str(recorded["candidate_version"])).stage is Stage.CANDIDATE
