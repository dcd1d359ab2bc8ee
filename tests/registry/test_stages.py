"""Stages: candidate -> canary -> production -> archived, one production at a time, one-step rollback."""

from __future__ import annotations

from pathlib import Path

import pytest

from recdrill.data.dataset import Dataset
from recdrill.errors import StageError
from recdrill.models.itemknn import ItemKNNRecommender
from recdrill.registry import Registry, Stage
from recdrill.registry.stages import parse_stage


@pytest.fixture
def three(registry: Registry, shop: Dataset, tmp_path: Path) -> Registry:
    """v1, v2, v3: three different models, all candidates."""
    for neighbours in (5, 10, 20):
        folder = tmp_path / f"knn{neighbours}"
        ItemKNNRecommender(neighbours=neighbours).fit(shop).save(folder)
        registry.push(folder)
    return registry


def stages(registry: Registry) -> dict[str, str]:
    return {row.version: row.stage.value for row in registry.list()}


def test_promote_and_rollback_walk_the_exact_stages(three: Registry) -> None:
    reg = three
    assert stages(reg) == {"v1": "candidate", "v2": "candidate", "v3": "candidate"}
    reg.promote("v1", Stage.PRODUCTION)
    assert stages(reg) == {"v1": "production", "v2": "candidate", "v3": "candidate"}
    reg.promote("v2", "canary")
    assert stages(reg) == {"v1": "production", "v2": "canary", "v3": "candidate"}
    reg.promote("v2", Stage.PRODUCTION)
    assert stages(reg) == {"v1": "archived", "v2": "production", "v3": "candidate"}
    reg.promote("v3", Stage.PRODUCTION)
    assert stages(reg) == {"v1": "archived", "v2": "archived", "v3": "production"}

    assert reg.rollback().version == "v2"
    assert stages(reg) == {"v1": "archived", "v2": "production", "v3": "archived"}
    assert reg.rollback().version == "v1"
    assert stages(reg) == {"v1": "production", "v2": "archived", "v3": "archived"}
    with pytest.raises(StageError, match="no previous production version"):
        reg.rollback()
    assert stages(reg) == {"v1": "production", "v2": "archived", "v3": "archived"}
    assert reg.history("v2") == [
        (None, "candidate", "push"),
        ("candidate", "canary", "promote"),
        ("canary", "production", "promote"),
        ("production", "archived", "superseded"),
        ("archived", "production", "rollback"),
        ("production", "archived", "rollback"),
    ]


def test_rollback_after_a_manual_restore_returns_to_the_version_it_replaced(three: Registry) -> None:
    reg = three
    reg.promote("v1", Stage.PRODUCTION)
    reg.promote("v2", Stage.PRODUCTION)
    reg.promote("v1", Stage.PRODUCTION)  # an old good version restored by hand
    assert reg.current() == ["v1"]
    assert reg.rollback().version == "v2"
    assert stages(reg) == {"v1": "archived", "v2": "production", "v3": "candidate"}


def test_rollback_with_nothing_in_production_ever_is_refused(three: Registry) -> None:
    with pytest.raises(StageError, match="no previous production version"):
        three.rollback()
    three.promote("v1", Stage.PRODUCTION)
    with pytest.raises(StageError, match="no previous production version"):
        three.rollback()  # one production version has no predecessor
    assert three.current() == ["v1"]


def test_forbidden_moves_are_refused_and_change_nothing(three: Registry) -> None:
    three.promote("v1", Stage.PRODUCTION)
    with pytest.raises(StageError, match="v1 is production: it can move to archived, not canary"):
        three.promote("v1", Stage.CANARY)
    allowed = "archived, canary, production"
    with pytest.raises(StageError, match=f"v2 is candidate: it can move to {allowed}, not candidate"):
        three.promote("v2", Stage.CANDIDATE)
    with pytest.raises(StageError, match="unknown stage 'live'; choose one of candidate, canary"):
        parse_stage("live")
    with pytest.raises(StageError, match="unknown stage 'live'"):
        three.promote("v2", "live")
    assert stages(three) == {"v1": "production", "v2": "candidate", "v3": "candidate"}


def test_archiving_production_by_hand_leaves_none_and_rollback_restores_the_one_before(
    three: Registry,
) -> None:
    three.promote("v1", Stage.PRODUCTION)
    three.promote("v2", Stage.PRODUCTION)
    three.promote("v2", Stage.ARCHIVED)
    assert three.current() == []
    assert three.rollback().version == "v1"
    assert stages(three) == {"v1": "production", "v2": "archived", "v3": "candidate"}
