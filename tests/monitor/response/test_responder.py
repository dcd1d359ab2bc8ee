"""The automatic drift response: trigger, leak-free fine-tuning, registry outcomes, record, CLI."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from recdrill._home import HOME_ENV
from recdrill.cli import main
from recdrill.data.dataset import Dataset, EventType
from recdrill.data.loading import load_dataset
from recdrill.data.snapshot import ShopSnapshot
from recdrill.errors import ConfigError, RecdrillError
from recdrill.models.base import BaseRecommender
from recdrill.models.factory import load_model
from recdrill.models.itemknn import ItemKNNRecommender
from recdrill.models.sasrec.estimator import SASRecRecommender
from recdrill.monitor.response.apply import RESPONSES_FILE, apply, read_decisions
from recdrill.monitor.response.data import split_recent
from recdrill.monitor.response.responder import DECISION_FILE, AutoResponder, ResponseDecision, ResponsePolicy
from recdrill.monitor.response.tuning import active_sequences
from recdrill.registry.keys import init_keys
from recdrill.registry.registry import Registry
from recdrill.registry.stages import Stage
from recdrill.serving.config import ENV_MODEL_VERSION
from recdrill.serving.runtime.child import free_port
from recdrill.serving.runtime.local_process import ServerProcess

SHOP = "shopsim:n_items=300,n_users=400,n_events=12000,days=30"
QUICK = ResponsePolicy(recent_window_s=30 * 86_400.0, min_recent_events=100, min_holdout_users=20)
ADMIN_KEY = "response-admin-key"
TINY_SASREC = {"dim": 8, "blocks": 1, "heads": 1, "max_len": 10, "max_epochs": 2, "device": "cpu"}


@pytest.fixture(scope="module")
def shop() -> Dataset:
    return load_dataset(SHOP)


def _cut(shop: Dataset, share: float = 0.6) -> tuple[Dataset, Dataset, int]:
    """The shop before and after the time ``share`` of the way through it, and that time."""
    t = shop.interactions.timestamp
    cut = int(t.min() + share * (t.max() - t.min()))
    return (
        shop.with_interactions(shop.interactions.select(t < cut)),
        shop.with_interactions(shop.interactions.select(t >= cut)),
        cut,
    )


@pytest.fixture(scope="module")
def itemknn_case(shop: Dataset) -> tuple[BaseRecommender, Dataset, Dataset]:
    train, recent, _ = _cut(shop)
    return ItemKNNRecommender().fit(train), train, recent


def _registry(tmp_path: Path) -> Registry:
    home = tmp_path / "home"
    init_keys(home)
    return Registry(home)


def _decide(
    case: tuple[BaseRecommender, Dataset, Dataset], tmp_path: Path, min_gain: float
) -> ResponseDecision:
    model, train, recent = case
    policy = dataclasses.replace(QUICK, min_gain=min_gain)
    return AutoResponder(policy, tmp_path / "work").respond(
        model, train, recent, triggered_by=["history_category"]
    )


def test_should_respond_counts_only_features_held_for_sustain_s() -> None:
    responder = AutoResponder(ResponsePolicy(sustain_s=600.0))
    since = {"history_category": 100.0, "top_score": 101.0, "feedback_log_price": 650.0}
    assert responder.should_respond(since, now=700.0) == ["history_category"]  # 600 s exactly counts
    assert responder.should_respond(since, now=699.0) == []
    assert responder.should_respond(since, now=1250.0) == [
        "feedback_log_price",
        "history_category",
        "top_score",
    ]
    assert responder.should_respond({}, now=1e9) == []


def test_policy_names_a_bad_setting() -> None:
    with pytest.raises(
        ConfigError, match=r"'holdout_share' parameter of ResponsePolicy must be in \(0, 1\), got 1.5"
    ):
        ResponsePolicy(holdout_share=1.5)


def _with_unseen_holdout(shop: Dataset) -> tuple[Dataset, Dataset, np.ndarray]:
    """The shop cut at ``cut``, where every event at or after the recent window's split time is on an
    item (from a reserved set) that appears nowhere else: if the held-out slice leaks into training,
    the candidate learns of those items."""
    reserved = np.arange(shop.n_items - 30, shop.n_items)
    inter = shop.interactions
    data = shop.with_interactions(inter.select(~np.isin(inter.item, reserved)))
    train, recent, _ = _cut(data)
    split = split_recent(
        train, recent, now=None, window_s=QUICK.recent_window_s, holdout_share=0.2
    ).split_time
    late = recent.interactions.timestamp >= split
    item = recent.interactions.item.copy()
    item[late] = reserved[item[late] % len(reserved)]
    moved = recent.with_interactions(
        type(recent.interactions)(
            recent.interactions.user, item, recent.interactions.timestamp, recent.interactions.event
        )
    )
    return train, moved, reserved


def test_held_out_slice_never_reaches_fine_tuning(shop: Dataset, tmp_path: Path) -> None:
    train, recent, reserved = _with_unseen_holdout(shop)
    window = split_recent(train, recent, now=None, window_s=QUICK.recent_window_s, holdout_share=0.2)
    assert np.isin(window.held_out.targets, reserved).all() and len(window.held_out) >= 20
    assert not np.isin(window.fine_tune_data.interactions.item, reserved).any()
    assert window.fine_tune_data.interactions.timestamp.max() < window.split_time

    # Refit path: the candidate's own learned state has no trace of the held-out items.
    current = ItemKNNRecommender().fit(train)
    decision = AutoResponder(QUICK, tmp_path / "knn").respond(current, train, recent)
    assert decision.candidate_path is not None
    candidate = load_model(decision.candidate_path)
    assert isinstance(candidate, ItemKNNRecommender)
    assert (candidate.share_[reserved] == 0).all()
    similarity = candidate.similarity_.tocoo()
    assert not np.isin(similarity.row, reserved).any() and not np.isin(similarity.col, reserved).any()
    assert decision.candidate["HR@10"] == 0.0  # it cannot know items it never saw

    # Warm-start path: SASRec is fitted on exactly the active users' data before the split.
    sasrec = SASRecRecommender(**TINY_SASREC).fit(train)
    tuned = AutoResponder(QUICK, tmp_path / "sasrec").respond(sasrec, train, recent)
    assert tuned.candidate_path is not None
    expected = active_sequences(window)
    assert not np.isin(expected.interactions.item, reserved).any()
    assert load_model(tuned.candidate_path).trained_on_ == expected.interactions_digest()


def test_sasrec_warm_start_continues_from_the_current_weights(shop: Dataset) -> None:
    train, _, _ = _cut(shop)
    model = SASRecRecommender(**TINY_SASREC).fit(train)
    histories = train.sequences().take(np.arange(20))
    frozen = copy.deepcopy(model)
    frozen.lr = 0.0  # a step of size 0: any change comes from where training started
    frozen.warm_start = True
    frozen.fit(train)
    np.testing.assert_allclose(frozen.score(histories), model.score(histories), rtol=1e-5, atol=1e-6)
    cold = copy.deepcopy(model)
    cold.lr = 0.0
    cold.seed = 1
    cold.fit(train)  # warm_start off: a fresh random network
    assert not np.allclose(cold.score(histories), model.score(histories), atol=1e-3)


def test_promote_pushes_the_candidate_and_makes_it_production(
    itemknn_case: tuple[BaseRecommender, Dataset, Dataset], tmp_path: Path
) -> None:
    decision = _decide(itemknn_case, tmp_path, min_gain=-1.0)  # any candidate wins
    assert decision.decision == "promote" and decision.n_held_out_users >= 20
    registry = _registry(tmp_path)
    applied = apply(decision, registry)
    assert applied.candidate_version is not None and applied.applied == "production"
    assert registry.current(Stage.PRODUCTION) == [applied.candidate_version]
    assert "auto-response" in registry.history(applied.candidate_version)[-1][2]
    manifest = registry.show(applied.candidate_version).record
    assert manifest.metrics["heldout_NDCG@10"] == pytest.approx(decision.candidate["NDCG@10"])
    stored = registry.materialise(applied.candidate_version, tmp_path / "out")
    assert json.loads((stored / DECISION_FILE).read_text())["reason"] == decision.reason
    [record] = read_decisions(registry.home)
    assert record["decision"] == "promote" and record["applied"] == "production"
    assert record["triggered_by"] == ["history_category"]


def test_keep_pushes_nothing_to_production_and_is_recorded(
    itemknn_case: tuple[BaseRecommender, Dataset, Dataset], tmp_path: Path
) -> None:
    decision = _decide(itemknn_case, tmp_path, min_gain=10.0)  # +1000% is out of reach
    assert decision.decision == "keep" and "< the required" in decision.reason
    registry = _registry(tmp_path)
    applied = apply(decision, registry)
    assert registry.current(Stage.PRODUCTION) == []
    assert applied.candidate_version is not None
    assert registry.show(applied.candidate_version).stage is Stage.ARCHIVED
    [record] = read_decisions(registry.home)
    assert record["decision"] == "keep" and record["reason"] == decision.reason


def test_too_few_recent_events_keeps_without_training(
    itemknn_case: tuple[BaseRecommender, Dataset, Dataset], tmp_path: Path
) -> None:
    model, train, recent = itemknn_case
    policy = ResponsePolicy(recent_window_s=30 * 86_400.0, min_recent_events=10**9)
    decision = AutoResponder(policy).respond(model, train, recent)
    assert decision.decision == "keep" and decision.candidate_path is None
    assert decision.reason.startswith("too few recent events")
    registry = _registry(tmp_path)
    apply(decision, registry)
    assert registry.list() == [] and read_decisions(registry.home)[0]["decision"] == "keep"


def test_a_refused_canary_is_recorded_and_leaves_production_alone(
    itemknn_case: tuple[BaseRecommender, Dataset, Dataset], tmp_path: Path
) -> None:
    decision = _decide(itemknn_case, tmp_path, min_gain=-1.0)
    registry = _registry(tmp_path)
    nobody = f"http://127.0.0.1:{free_port()}"  # a real socket with no server behind it
    with pytest.raises(RecdrillError, match="ConnectError"):
        apply(decision, registry, nobody, admin_key="k")
    assert registry.current(Stage.PRODUCTION) == []
    [record] = read_decisions(registry.home)
    assert str(record["applied"]).startswith("failed: RecdrillError") and record["candidate_version"]
    assert (registry.home / RESPONSES_FILE).read_text().count("\n") == 1


def test_promote_with_a_server_starts_its_canary(
    itemknn_case: tuple[BaseRecommender, Dataset, Dataset], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, train, _ = itemknn_case
    registry = _registry(tmp_path)
    monkeypatch.setenv(HOME_ENV, str(registry.home))  # the server uses this registry
    deployed = tmp_path / "deployed"
    model.save(deployed)
    ShopSnapshot.from_dataset(train).save(deployed)
    base = registry.push(deployed).version
    registry.promote(base, Stage.PRODUCTION)
    monkeypatch.setenv(ENV_MODEL_VERSION, base)
    decision = dataclasses.replace(_decide(itemknn_case, tmp_path, min_gain=-1.0), current_version=base)
    served = registry.materialise(base, tmp_path / "served")
    with ServerProcess(served, tmp_path / "state", admin_key=ADMIN_KEY) as server:
        applied = apply(decision, registry, server.url, ADMIN_KEY)
        status = httpx.get(f"{server.url}/admin/models/canary", headers={"X-API-Key": ADMIN_KEY}).json()
    assert applied.candidate_version is not None and applied.applied is not None
    assert applied.applied.startswith("canary for 10.0% of users")
    assert status["active"] and status["version"] == applied.candidate_version
    assert status["share"] == pytest.approx(0.1) and status["auto_promote"] is True
    assert registry.show(applied.candidate_version).stage is Stage.CANARY
    assert registry.current(Stage.PRODUCTION) == [base]  # the judge decides the rest online
    assert read_decisions(registry.home)[0]["applied"] == applied.applied


def _cli_files(shop: Dataset, tmp_path: Path) -> tuple[Path, Path]:
    """A model trained on the shop's first 60% (saved), and the rest as a feedback export."""
    train, recent, _ = _cut(shop)
    model_dir = tmp_path / "model"
    ItemKNNRecommender().fit(train).save(model_dir)
    inter = recent.interactions
    export = pd.DataFrame(
        {
            "id": np.arange(len(inter)),
            "user_id": recent.user_ids[inter.user].astype(str),
            "item_id": recent.catalog.item_ids[inter.item].astype(str),
            "event": [EventType(e).name.lower() for e in inter.event],
            "timestamp": inter.timestamp.astype(float),
        }
    )
    events = tmp_path / "recent.parquet"
    export.to_parquet(events)
    return model_dir, events


def test_cli_dry_run_prints_the_decision(
    shop: Dataset, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model_dir, events = _cli_files(shop, tmp_path)
    out = tmp_path / "decision.json"
    args = ["monitor", "respond", "--model", str(model_dir), "--data", SHOP, "--recent", str(events)]
    code = main(
        [*args, "--window-days", "30", "--dry-run", "--json", str(out), "--workdir", str(tmp_path / "w")]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    printed = json.loads(captured.out)
    assert printed == json.loads(out.read_text())
    assert printed["decision"] in ("promote", "keep") and printed["applied"] is None
    assert printed["n_held_out_users"] > 0 and set(printed["current"]) == {"NDCG@10", "HR@10"}
    assert not (tmp_path / "home").exists()


@pytest.mark.parametrize(
    ("extra", "code", "message"),
    [
        (["--dry-run"], 2, "--model DIR or --registry-version V"),
        (["--model", "MODEL", "--now", "1000", "--dry-run"], 2, "no recent event lies in the window"),
        (["--model", "MODEL", "--min-gain", "nan", "--dry-run"], 2, "'min_gain' parameter of ResponsePolicy"),
        (["--model", "no/such/model", "--dry-run"], 5, "no such model folder"),
        (["--model", "MODEL", "--target", "http://127.0.0.1:9"], 2, "RECDRILL_ADMIN_KEY is not set"),
    ],
)
def test_cli_bad_input_is_one_line(
    shop: Dataset,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    code: int,
    message: str,
) -> None:
    model_dir, events = _cli_files(shop, tmp_path)
    extra = [str(model_dir) if arg == "MODEL" else arg for arg in extra]
    args = ["monitor", "respond", "--data", SHOP, "--recent", str(events), *extra]
    assert main(args) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1] and err[-1].startswith("recdrill: error:")


def test_cli_missing_recent_file(shop: Dataset, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model_dir, _ = _cli_files(shop, tmp_path)
    args = [
        "monitor",
        "respond",
        "--model",
        str(model_dir),
        "--data",
        SHOP,
        "--recent",
        str(tmp_path / "x.csv"),
    ]
    assert main([*args, "--dry-run"]) == 3
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith("x.csv: no such file")
