"""Carrying out a drift response through a real registry: promote, keep, nothing to push, refused
canary and failed push, each recorded once in ``responses.jsonl``."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from recdrill.errors import ConfigError, ModelFileError
from recdrill.models.popularity import PopularityRecommender
from recdrill.monitor.response.apply import RESPONSES_FILE, apply, read_decisions, record_decision
from recdrill.monitor.response.policy import ResponsePolicy
from recdrill.monitor.response.responder import ResponseDecision
from recdrill.registry.keys import init_keys
from recdrill.registry.registry import Registry
from recdrill.registry.stages import Stage
from tests.conftest import make_shop

REASON = (
    "candidate NDCG@10 0.3000 vs current 0.2000 on 100 held-out events of 50 users: "
    "+50.0% >= the required +2.0%"
)


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    home = tmp_path / "home"
    init_keys(home)
    return Registry(home)


def _model_dir(tmp_path: Path, name: str, sequences: list[list[int]]) -> Path:
    folder = tmp_path / name
    PopularityRecommender().fit(make_shop(sequences, n_items=6)).save(folder)
    return folder


def _decision(candidate_path: Path | None, decision: str = "promote", **changes: object) -> ResponseDecision:
    base = ResponseDecision(
        decision="promote" if decision == "promote" else "keep",
        reason=REASON,
        triggered_by=("history_category", "top_score"),
        model_kind="pop",
        now=1000.0,
        window_start=0.0,
        split_time=800.0,
        n_recent_events=500,
        n_fine_tune_events=400,
        n_held_out_events=100,
        n_held_out_users=50,
        n_dropped_events=0,
        current={"NDCG@10": 0.2, "HR@10": 0.4},
        candidate={"NDCG@10": 0.3, "HR@10": 0.5},
        gain=0.5,
        candidate_path=None if candidate_path is None else str(candidate_path),
        fine_tune_seconds=1.5,
        policy=dataclasses.asdict(ResponsePolicy()),
        decided_at="2024-05-01T12:00:00Z",
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def _production_base(registry: Registry, tmp_path: Path) -> str:
    version = registry.push(_model_dir(tmp_path, "base", [[0, 1], [1, 2]])).version
    registry.promote(version, Stage.PRODUCTION)
    return version


def test_promote_without_a_server_makes_the_candidate_production(registry: Registry, tmp_path: Path) -> None:
    base = _production_base(registry, tmp_path)
    decision = _decision(_model_dir(tmp_path, "candidate", [[3, 4], [4, 5]]), current_version=base)
    applied = apply(decision, registry)
    assert applied.applied == "production" and applied.candidate_version not in (None, base)
    assert registry.current(Stage.PRODUCTION) == [applied.candidate_version]
    assert registry.show(base).stage is Stage.ARCHIVED
    assert registry.history(str(applied.candidate_version))[-1] == (
        "candidate",
        "production",
        f"auto-response: {REASON}",
    )
    record = registry.show(str(applied.candidate_version)).record
    assert record.parent == base
    assert record.metrics == {
        "heldout_NDCG@10": 0.3,
        "heldout_HR@10": 0.5,
        "current_heldout_NDCG@10": 0.2,
        "current_heldout_HR@10": 0.4,
    }
    assert read_decisions(registry.home) == [applied.to_dict()]


def test_keep_archives_the_candidate_and_leaves_production_alone(registry: Registry, tmp_path: Path) -> None:
    base = _production_base(registry, tmp_path)
    decision = _decision(_model_dir(tmp_path, "candidate", [[3, 4]]), "keep", reason="gain -1.0% < +2.0%")
    applied = apply(decision, registry)
    assert applied.applied == "archived: kept the current model"
    version = str(applied.candidate_version)
    assert registry.show(version).stage is Stage.ARCHIVED
    assert registry.history(version)[-1] == ("candidate", "archived", "auto-response: gain -1.0% < +2.0%")
    assert registry.current(Stage.PRODUCTION) == [base]
    [recorded] = read_decisions(registry.home)
    assert (recorded["decision"], recorded["candidate_version"]) == ("keep", version)


def test_a_decision_without_a_candidate_pushes_nothing_and_is_recorded(registry: Registry) -> None:
    applied = apply(
        _decision(None, "keep", reason="too few recent events to judge a candidate: 5 < 1000"), registry
    )
    assert applied.applied == "nothing to push: no candidate was trained"
    assert applied.candidate_version is None and registry.list() == []
    [recorded] = read_decisions(registry.home)
    assert recorded["applied"] == applied.applied and recorded["reason"].startswith("too few recent events")


def test_a_long_reason_is_cut_to_500_characters_in_the_history(registry: Registry, tmp_path: Path) -> None:
    applied = apply(_decision(_model_dir(tmp_path, "candidate", [[0, 5]]), reason="x" * 2000), registry)
    reason = registry.history(str(applied.candidate_version))[-1][2]
    assert len(reason) == 500 and reason.startswith("auto-response: xxx")
    assert read_decisions(registry.home)[0]["reason"] == "x" * 2000  # the record keeps it whole


def test_a_canary_refused_before_any_call_is_recorded_and_the_candidate_stays(
    registry: Registry, tmp_path: Path
) -> None:
    decision = _decision(_model_dir(tmp_path, "candidate", [[1, 2]]))
    with pytest.raises(ConfigError, match="RECDRILL_ADMIN_KEY is not set"):
        apply(decision, registry, "http://127.0.0.1:9", admin_key=None)
    [row] = registry.list()
    assert row.stage is Stage.CANDIDATE and registry.current(Stage.PRODUCTION) == []
    [recorded] = read_decisions(registry.home)
    assert recorded["candidate_version"] == row.version
    assert str(recorded["applied"]).startswith("failed: ConfigError: RECDRILL_ADMIN_KEY is not set")


def test_a_failed_push_is_recorded_then_raised(registry: Registry, tmp_path: Path) -> None:
    not_a_model = tmp_path / "empty"
    not_a_model.mkdir()
    with pytest.raises(ModelFileError):
        apply(_decision(not_a_model), registry)
    assert registry.list() == []
    [recorded] = read_decisions(registry.home)
    assert recorded["candidate_version"] is None and str(recorded["applied"]).startswith(
        "failed: ModelFileError: "
    )


def test_decisions_are_appended_one_json_line_each_oldest_first(tmp_path: Path) -> None:
    home = tmp_path / "new" / "home"
    assert read_decisions(home) == []  # nothing recorded yet
    first = _decision(None, "keep", reason="first")
    second = _decision(None, "promote", reason="second", applied="production")
    path = record_decision(home, first)
    assert path == home / RESPONSES_FILE and record_decision(home, second) == path
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["reason"] for line in lines] == ["first", "second"]
    assert lines[0] == json.dumps(first.to_dict(), sort_keys=True)
    assert json.loads(lines[0])["triggered_by"] == ["history_category", "top_score"]
    with path.open("a", encoding="utf-8") as handle:
        handle.write("\n   \n")  # blank lines are skipped
    assert read_decisions(home) == [first.to_dict(), second.to_dict()]
    assert read_decisions(home)[1]["gain"] == 0.5
