"""The canary pointer file the workers of one server share, and the registry stages a canary moves through."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest

from recdrill._home import HOME_ENV
from recdrill.contract import CANARY_FILE
from recdrill.errors import StageError, VersionNotFoundError
from recdrill.models.itemknn import ItemKNNRecommender
from recdrill.registry import Registry, Stage, init_keys
from recdrill.registry.keys import DATA_KEY_ENV, NEW_DATA_KEY_ENV, SIGNING_KEY_ENV
from recdrill.serving.canary.records import (
    CanaryPointer,
    archive,
    enter_canary_stage,
    record_identity,
    set_stage,
    write_registry,
)
from tests.conftest import make_shop

SPEC = {"version": "v2", "share": 0.1, "mode": "canary"}


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("model") / "itemknn"
    shop = make_shop([[0, 1, 2, 3], [1, 2, 3, 4], [2, 3, 4, 5], [0, 2, 4, 5]], n_items=6)
    ItemKNNRecommender(neighbours=3).fit(shop).save(folder)
    return folder


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, saved_model: Path) -> Registry:
    """The registry ``Registry()`` opens (``RECDRILL_HOME``), holding v1, a candidate."""
    home = tmp_path / "home"
    monkeypatch.setenv(HOME_ENV, str(home))
    for name in (SIGNING_KEY_ENV, DATA_KEY_ENV, NEW_DATA_KEY_ENV):
        monkeypatch.delenv(name, raising=False)
    init_keys(home)
    registry = Registry(home)
    registry.push(saved_model)
    return registry


# --- the pointer file ----------------------------------------------------------------------------


def test_a_published_record_is_read_back_with_the_key_publish_returned(tmp_path: Path) -> None:
    pointer = CanaryPointer(tmp_path, "server-a")
    assert pointer.path == tmp_path / CANARY_FILE
    key = pointer.publish(SPEC, active=True, reason="started")
    record = pointer.read()
    assert record is not None and key == record_identity(record)
    assert {k: record[k] for k in ("group", "active", "spec", "reason")} == {
        "group": "server-a",
        "active": True,
        "spec": SPEC,
        "reason": "started",
    }
    assert isinstance(record["at"], float)
    assert list(tmp_path.iterdir()) == [pointer.path]  # the temporary file was renamed into place


def test_a_later_record_replaces_the_earlier_one(tmp_path: Path) -> None:
    pointer = CanaryPointer(tmp_path, "server-a")
    first = pointer.publish(SPEC, active=True, reason="started")
    second = pointer.publish(SPEC, active=False, reason="rolled back")
    record = pointer.read()
    assert record is not None and record["active"] is False and record["reason"] == "rolled back"
    assert second == record_identity(record) != first


def test_a_peer_of_the_same_server_reads_it_and_another_server_does_not(tmp_path: Path) -> None:
    CanaryPointer(tmp_path, "server-a").publish(SPEC, active=True, reason="started")
    assert CanaryPointer(tmp_path, "server-a").read() is not None
    assert CanaryPointer(tmp_path, "server-b").read() is None  # left by an earlier run


@pytest.mark.parametrize(
    "content",
    [
        None,  # absent
        '{"group": "server-a", "active": tr',  # torn
        '["server-a"]',
        '{"group": "server-a", "active": true, "spec": "v2"}',
        '{"group": "server-a", "active": "yes", "spec": {}}',
    ],
)
def test_an_absent_torn_or_malformed_record_reads_as_none(tmp_path: Path, content: str | None) -> None:
    pointer = CanaryPointer(tmp_path, "server-a")
    if content is not None:
        pointer.path.write_text(content)
    assert pointer.read() is None


def test_a_record_that_cannot_be_written_is_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pointer = CanaryPointer(tmp_path / "no-such-folder", "server-a")
    with caplog.at_level(logging.ERROR, logger="recdrill.serving.canary.records"):
        assert pointer.publish(SPEC, active=True, reason="started") is None
    assert "could not record the canary change for other workers" in caplog.text
    assert pointer.read() is None


def test_record_identity_ignores_key_order_but_not_values() -> None:
    record = {"group": "g", "active": True, "spec": SPEC, "reason": "r", "at": 1.0}
    assert record_identity(record) == record_identity(dict(reversed(list(record.items()))))
    assert record_identity(record) != record_identity({**record, "at": 2.0})
    assert json.loads(record_identity(record)) == record


# --- registry stages -----------------------------------------------------------------------------


def test_a_candidate_enters_canary_once(registry: Registry) -> None:
    enter_canary_stage("v1")
    enter_canary_stage("v1")  # a canary started again stays canary
    assert registry.show("v1").stage is Stage.CANARY
    assert registry.history("v1") == [(None, "candidate", "push"), ("candidate", "canary", "canary started")]


@pytest.mark.parametrize("stage", [Stage.PRODUCTION, Stage.ARCHIVED])
def test_production_and_archived_versions_cannot_enter_canary(registry: Registry, stage: Stage) -> None:
    registry.promote("v1", stage)
    with pytest.raises(StageError, match=f"v1 is {stage.value}: only a candidate can go to canary"):
        enter_canary_stage("v1")
    assert registry.show("v1").stage is stage


def test_an_unknown_version_cannot_enter_canary(registry: Registry) -> None:
    with pytest.raises(VersionNotFoundError, match="'v9'"):
        enter_canary_stage("v9")


def test_set_stage_moves_once_with_its_reason_and_archive_records_why(registry: Registry) -> None:
    enter_canary_stage("v1")
    set_stage("v1", Stage.CANDIDATE, "canary stopped")
    set_stage("v1", Stage.CANDIDATE, "a peer stopped it too")  # already there: nothing recorded
    archive("v1", "judge: ndcg worse")
    archive("v1", "a peer's judge agreed")  # idempotent
    assert registry.history("v1")[1:] == [
        ("candidate", "canary", "canary started"),
        ("canary", "candidate", "canary stopped"),
        ("candidate", "archived", "judge: ndcg worse"),
    ]


def test_write_registry_runs_the_write_and_only_logs_a_failure(
    registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    asyncio.run(write_registry(set_stage, "v1", Stage.PRODUCTION, "promoted by the judge"))
    assert registry.current() == ["v1"]
    with caplog.at_level(logging.ERROR, logger="recdrill.serving.canary.records"):
        asyncio.run(write_registry(archive, "v1", "rollback"))  # production cannot be archived
    assert "registry not updated for the canary (StageError)" in caplog.text
    assert registry.current() == ["v1"]
