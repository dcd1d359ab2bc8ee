"""ServingState, load_state, first_generation and StateDep: real model folders and SQLite files, no server."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from recdrill.contract import FAULTS_DB, FEEDBACK_DB, SERVED_MODEL_FILE
from recdrill.data.dataset import Dataset
from recdrill.data.snapshot import ShopSnapshot
from recdrill.errors import ConfigError, FeedbackLogError, ModelFileError, VersionNotFoundError
from recdrill.models.itemknn import ItemKNNRecommender
from recdrill.serving.cache import LastGoodCache
from recdrill.serving.config import ServeConfig
from recdrill.serving.error_handlers import install_error_handlers
from recdrill.serving.fault_points import FaultStore
from recdrill.serving.feedback.schema import FeedbackEvent
from recdrill.serving.generation import Generation, WorkerResources, load_generation
from recdrill.serving.metrics import ServingMetrics
from recdrill.serving.middleware.admission import WorkerLoad
from recdrill.serving.observers import FeedbackSeen, RecommendSeen
from recdrill.serving.reload import ModelReloader
from recdrill.serving.state import STATE_KEY, ServingState, StateDep, first_generation, load_state

GROUP = "test-server"


def save_model(folder: Path, dataset: Dataset, neighbours: int = 10) -> Path:
    """An item-to-item model and its shop snapshot in ``folder``: what ``recdrill train`` writes."""
    ItemKNNRecommender(neighbours=neighbours).fit(dataset).save(folder)
    ShopSnapshot.from_dataset(dataset).save(folder)
    return folder


def point_to(state_dir: Path, model_dir: Path, group: str = GROUP) -> None:
    """The reload pointer a peer worker of ``group`` leaves after reloading to ``model_dir``."""
    state_dir.mkdir(parents=True, exist_ok=True)
    record = {"model_dir": str(model_dir), "version": "pointed", "group": group}
    (state_dir / SERVED_MODEL_FILE).write_text(json.dumps(record))


@pytest.fixture
def model_dir(tmp_path: Path, chain_shop: Dataset) -> Path:
    return save_model(tmp_path / "model", chain_shop)


@pytest.fixture
def other_model_dir(tmp_path: Path, chain_shop: Dataset) -> Path:
    """Another valid model of the same shop: its files, so its version, differ."""
    return save_model(tmp_path / "other", chain_shop, neighbours=3)


@pytest.fixture
def resources(tmp_path: Path, model_dir: Path) -> Iterator[WorkerResources]:
    config = ServeConfig(model_dir, tmp_path / "state")
    config.state_dir.mkdir()
    faults = FaultStore(config.state_dir / FAULTS_DB)
    yield WorkerResources(config, ServingMetrics(), faults, LastGoodCache())
    faults.close()


def served_folder(generation: Generation) -> Path:
    generation.close()
    return generation.model_dir


class RecordingObserver:
    """An observer that only notes whether it was closed."""

    def __init__(self) -> None:
        self.closed = 0

    def recommend(self, seen: RecommendSeen) -> None:
        pass

    def feedback(self, seen: FeedbackSeen) -> None:
        pass

    async def run(self) -> None:
        pass

    def close(self) -> None:
        self.closed += 1


# --- load_state -----------------------------------------------------------------------------------


def test_load_state_opens_the_state_folder_and_serves_the_configured_model(
    tmp_path: Path, model_dir: Path
) -> None:
    config = ServeConfig(model_dir, tmp_path / "nested" / "state")
    metrics, load = ServingMetrics(), WorkerLoad(16)
    state = load_state(config, metrics, load)
    try:
        assert (config.state_dir / FAULTS_DB).is_file() and (config.state_dir / FEEDBACK_DB).is_file()
        assert state.config is config and state.metrics is metrics and state.resources.load is load
        assert state.faults is state.resources.faults
        assert state.generation.model_dir == model_dir
        expected = load_generation(model_dir, state.resources)
        expected.close()
        assert state.model_version == state.generation.version == expected.version
        assert state.model_version.startswith("itemknn-")
        assert state.observers == []
    finally:
        state.close()


def test_the_state_fault_table_is_the_file_every_worker_reads(tmp_path: Path, model_dir: Path) -> None:
    state = load_state(ServeConfig(model_dir, tmp_path / "state"), ServingMetrics(), WorkerLoad(4))
    peer = FaultStore(tmp_path / "state" / FAULTS_DB)
    try:
        fault = state.faults.add("ranker", "error", ttl_s=60)
        assert [f.id for f in peer.active(fresh=True)] == [fault.id]
    finally:
        peer.close()
        state.close()


def test_the_feedback_log_commits_into_the_state_folder(tmp_path: Path, model_dir: Path) -> None:
    state = load_state(ServeConfig(model_dir, tmp_path / "state"), ServingMetrics(), WorkerLoad(4))
    try:
        row = asyncio.run(state.feedback.submit(FeedbackEvent("u1", "i3", "click", 1.0, event_id="e-1")))
        assert row == 1
        assert state.feedback.present(["e-1", "e-2"]) == {"e-1"}
    finally:
        state.close()


def test_load_state_follows_the_reload_pointer_of_its_server(
    tmp_path: Path, model_dir: Path, other_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECDRILL_SERVER_ID", GROUP)
    point_to(tmp_path / "state", other_model_dir)
    state = load_state(ServeConfig(model_dir, tmp_path / "state"), ServingMetrics(), WorkerLoad(4))
    try:
        assert state.generation.model_dir == other_model_dir
        configured = load_generation(model_dir, state.resources)
        configured.close()
        assert state.model_version != configured.version  # not the configured model's version
    finally:
        state.close()


def test_a_missing_model_folder_stops_start_up_by_name(tmp_path: Path) -> None:
    config = ServeConfig(tmp_path / "no-model", tmp_path / "state")
    with pytest.raises(ModelFileError, match="no-model: no such model folder"):
        load_state(config, ServingMetrics(), WorkerLoad(4))
    assert (tmp_path / "state" / FAULTS_DB).is_file()  # opened first, then closed again
    assert not (tmp_path / "state" / FEEDBACK_DB).exists()  # the log is only opened for a model


def test_close_releases_observers_the_feedback_log_and_the_fault_table(
    tmp_path: Path, model_dir: Path
) -> None:
    state = load_state(ServeConfig(model_dir, tmp_path / "state"), ServingMetrics(), WorkerLoad(4))
    observer = RecordingObserver()
    state.observers.append(observer)
    state.close()
    assert observer.closed == 1 and state.observers == []
    with pytest.raises(FeedbackLogError, match="the feedback log is closed"):
        state.feedback.append(FeedbackEvent("u1", "i3", "view", 1.0))
    with pytest.raises(sqlite3.ProgrammingError, match="closed database"):
        state.faults.active(fresh=True)


# --- first_generation -----------------------------------------------------------------------------


def test_without_a_pointer_the_configured_folder_is_served(
    resources: WorkerResources, model_dir: Path
) -> None:
    reloader = ModelReloader(resources, group=GROUP)
    assert served_folder(first_generation(resources.config, resources, reloader)) == model_dir


def test_a_replacement_worker_serves_what_its_peers_reloaded_to(
    resources: WorkerResources, other_model_dir: Path
) -> None:
    point_to(resources.config.state_dir, other_model_dir)
    reloader = ModelReloader(resources, group=GROUP)
    assert served_folder(first_generation(resources.config, resources, reloader)) == other_model_dir


def test_a_pointer_left_by_an_earlier_server_is_ignored(
    resources: WorkerResources, model_dir: Path, other_model_dir: Path
) -> None:
    point_to(resources.config.state_dir, other_model_dir, group="an-earlier-server")
    reloader = ModelReloader(resources, group=GROUP)
    assert served_folder(first_generation(resources.config, resources, reloader)) == model_dir


def test_a_pointer_to_a_model_that_does_not_load_falls_back_to_the_configured_one(
    resources: WorkerResources, model_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    point_to(resources.config.state_dir, tmp_path / "deleted-meanwhile")
    reloader = ModelReloader(resources, group=GROUP)
    with caplog.at_level(logging.ERROR, logger="recdrill.serving.state"):
        generation = first_generation(resources.config, resources, reloader)
    assert served_folder(generation) == model_dir
    assert [r.getMessage() for r in caplog.records] == [
        f"cannot load the reloaded model ({tmp_path / 'deleted-meanwhile'}: no such model folder): "
        f"serving {model_dir}"
    ]


def test_a_configured_registry_version_is_verified_and_refused_at_start_up(
    resources: WorkerResources, model_dir: Path
) -> None:
    reloader = ModelReloader(resources, group=GROUP)
    unknown = ServeConfig(model_dir, resources.config.state_dir, model_version="v404")
    with pytest.raises(VersionNotFoundError, match="no registered version 'v404'"):
        first_generation(unknown, resources, reloader)
    not_a_name = ServeConfig(model_dir, resources.config.state_dir, model_version="../v1")
    with pytest.raises(ConfigError, match=r"'\.\./v1' is not a registry version name"):
        first_generation(not_a_name, resources, reloader)


# --- StateDep ---------------------------------------------------------------------------------------


def test_the_state_dependency_is_a_503_until_the_state_is_set(tmp_path: Path, model_dir: Path) -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/version")
    async def version(state: StateDep) -> dict[str, str]:
        return {"version": state.model_version}

    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://worker") as client:
            return await client.get("/version")

    loading = asyncio.run(get())
    assert loading.status_code == 503 and loading.json() == {"error": "model not loaded"}
    state: ServingState = load_state(
        ServeConfig(model_dir, tmp_path / "state"), ServingMetrics(), WorkerLoad(4)
    )
    try:
        setattr(app.state, STATE_KEY, state)
        ready = asyncio.run(get())
        assert ready.status_code == 200 and ready.json() == {"version": state.model_version}
    finally:
        state.close()


def test_a_feedback_log_that_cannot_open_closes_what_start_up_opened(tmp_path: Path, model_dir: Path) -> None:
    state_dir = tmp_path / "state"
    (state_dir / FEEDBACK_DB).mkdir(parents=True)  # a folder where the log's file should be
    with pytest.raises(FeedbackLogError, match="cannot open the feedback log"):
        load_state(ServeConfig(model_dir, state_dir), ServingMetrics(), WorkerLoad(4))
    (state_dir / FEEDBACK_DB).rmdir()
    state = load_state(
        ServeConfig(model_dir, state_dir), ServingMetrics(), WorkerLoad(4)
    )  # the table reopens
    state.close()
