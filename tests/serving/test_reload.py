"""Hot model reload on a real server: swap, refuse broken models (changed after their save, or with
their digests rewritten too), no failed request under load."""

from __future__ import annotations

import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from recdrill.cli import main
from recdrill.digests import write_digests
from recdrill.serving.runtime.local_process import ServerProcess
from tests.serving.test_app import metric

KEY = "reload-key"
ADMIN = {"X-API-Key": KEY}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("reload")
    shops = {
        "a": "shopsim:n_items=500,n_users=400,n_events=8000",
        "b": "shopsim:n_items=500,n_users=300,n_events=6000",
    }
    for name, shop in shops.items():
        assert main(["train", "--data", shop, "--model", "itemknn", "--out", str(root / name)]) == 0
    return {name: root / name for name in shops}


@pytest.fixture(scope="module")
def server(models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(
        models["a"], tmp_path_factory.mktemp("state"), admin_key=KEY, deadline_ms=200
    ) as running:
        yield running


@pytest.fixture
def api(server: ServerProcess, models: dict[str, Path]) -> Iterator[httpx.Client]:
    """A client of the shared server, which serves model ``a`` before and after each test."""
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        yield client
        assert client.post("/admin/models/reload", headers=ADMIN).status_code == 200


def reload(client: httpx.Client, folder: Path | None = None) -> httpx.Response:
    body = {"model_dir": str(folder)} if folder is not None else None
    return client.post("/admin/models/reload", json=body, headers=ADMIN)


def version(client: httpx.Client) -> str:
    ready = client.get("/readyz")
    assert ready.status_code == 200
    found: str = ready.json()["model_version"]
    return found


def test_reload_swaps_the_model_and_every_answer_names_it(api: httpx.Client, models: dict[str, Path]) -> None:
    first = version(api)
    swapped = reload(api, models["b"])
    assert swapped.status_code == 200, swapped.text
    body = swapped.json()
    assert body["status"] == "reloaded" and body["previous_version"] == first
    assert body["model_version"] != first and body["model_version"].startswith("itemknn-")
    assert body["model_dir"] == str(models["b"])
    assert version(api) == body["model_version"]
    answer = api.post("/v1/recommend", json={"user_id": "U-000001"}).json()
    assert answer["model_version"] == body["model_version"] and answer["served_by"] == "primary"
    back = reload(api)  # no body: the configured folder
    assert back.status_code == 200 and back.json()["model_version"] == first == version(api)


def truncated_state(folder: Path) -> None:
    state = folder / "state.npz"
    state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])


def garbage_metadata(folder: Path) -> None:
    (folder / "model.json").write_text("{not json")


def no_state(folder: Path) -> None:
    (folder / "state.npz").unlink()


def no_snapshot(folder: Path) -> None:
    (folder / "snapshot.npz").unlink()


def resealed(spoil: Callable[[Path], None]) -> Callable[[Path], None]:
    """``spoil``, then digests rewritten to match: the checks behind the digests still refuse it."""

    def spoil_and_reseal(folder: Path) -> None:
        spoil(folder)
        write_digests(folder)

    return spoil_and_reseal


CHANGED = "SHA-256 differs from the one in digests.json"


@pytest.mark.parametrize(
    ("spoil", "named"),
    [
        (truncated_state, f"state.npz: {CHANGED}"),
        (garbage_metadata, f"model.json: {CHANGED}"),
        (no_state, "missing state.npz"),
        (no_snapshot, "snapshot.npz: missing: digests.json lists it"),
        (resealed(truncated_state), "state.npz: corrupt model state"),
        (resealed(garbage_metadata), "model.json: corrupt metadata"),
        (resealed(no_snapshot), "no shop snapshot"),
    ],
    ids=[
        "truncated-state",
        "garbage-metadata",
        "no-state",
        "no-snapshot",
        "resealed-truncated-state",
        "resealed-garbage-metadata",
        "resealed-no-snapshot",
    ],
)
def test_a_broken_model_is_refused_and_the_old_one_keeps_serving(
    api: httpx.Client, models: dict[str, Path], tmp_path: Path, spoil: Callable[[Path], None], named: str
) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(models["b"], broken)
    spoil(broken)
    serving = version(api)
    before = api.get("/metrics").text
    refused = reload(api, broken)
    assert refused.status_code == 422
    assert named in refused.json()["error"] and refused.json()["model_version"] == serving
    assert version(api) == serving
    answer = api.post("/v1/recommend", json={"user_id": "U-000001"})
    assert answer.status_code == 200
    assert answer.json()["model_version"] == serving and answer.json()["served_by"] == "primary"
    after = api.get("/metrics").text
    assert (
        metric(after, "recdrill_model_reloads_total", outcome="refused")
        - metric(before, "recdrill_model_reloads_total", outcome="refused")
        == 1
    )


def test_a_folder_that_does_not_exist_is_refused_by_name(api: httpx.Client, tmp_path: Path) -> None:
    refused = reload(api, tmp_path / "nowhere")
    assert refused.status_code == 404 and "no such model folder" in refused.json()["error"]


@pytest.mark.parametrize(("headers", "status"), [({}, 401), ({"X-API-Key": "wrong"}, 401)])
def test_reload_needs_the_admin_key(api: httpx.Client, headers: dict[str, str], status: int) -> None:
    serving = version(api)
    response = api.post("/admin/models/reload", headers=headers)
    assert response.status_code == status and response.json()["error"]
    assert version(api) == serving


def test_no_request_fails_while_models_are_reloaded_under_load(
    api: httpx.Client, server: ServerProcess, models: dict[str, Path], tmp_path: Path
) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(models["b"], broken)
    truncated_state(broken)
    versions = {name: "" for name in models}
    stop = threading.Event()
    outcomes: Counter[tuple[int, str]] = Counter()
    lock = threading.Lock()

    def hammer(worker: int) -> None:
        with httpx.Client(base_url=server.url, timeout=30.0) as client:
            i = 0
            while not stop.is_set():
                i += 1
                body: dict[str, Any] = {"user_id": f"U-{(worker * 997 + i) % 300:06d}", "k": 10}
                response = client.post("/v1/recommend", json=body)
                seen = response.json().get("model_version", "") if response.status_code == 200 else ""
                with lock:
                    outcomes[(response.status_code, seen)] += 1

    with ThreadPoolExecutor(max_workers=4) as pool:
        running = [pool.submit(hammer, w) for w in range(4)]
        try:
            time.sleep(0.5)
            versions["a"] = version(api)
            for step in ("b", "a", "broken", "b"):
                response = reload(api, broken if step == "broken" else models[step])
                assert response.status_code == (422 if step == "broken" else 200), response.text
                if step != "broken":
                    versions[step] = response.json()["model_version"]
                time.sleep(0.5)
        finally:
            stop.set()
            for future in running:
                future.result()
    statuses = Counter(status for status, _ in outcomes.elements())
    assert set(statuses) == {200}, statuses
    served = Counter(v for _, v in outcomes.elements())
    assert set(served) == {versions["a"], versions["b"]}, served
    assert sum(statuses.values()) >= 40
    assert version(api) == versions["b"]


def test_every_worker_follows_a_reload_made_through_one(models: dict[str, Path], tmp_path: Path) -> None:
    with ServerProcess(models["a"], tmp_path / "state", workers=2, admin_key=KEY) as server:
        with httpx.Client(base_url=server.url, timeout=30.0) as admin:
            old = version(admin)
            swapped = reload(admin, models["b"])
            assert swapped.status_code == 200, swapped.text
            new = swapped.json()["model_version"]
        assert new != old
        # Fresh connections reach either worker; within a few follow periods both answer with b.
        latest: dict[str, str] = {}
        deadline = time.monotonic() + 20.0
        while time.monotonic() < deadline and (len(latest) < 2 or set(latest.values()) != {new}):
            with httpx.Client(base_url=server.url, timeout=30.0, headers={"Connection": "close"}) as client:
                response = client.post("/v1/recommend", json={"user_id": "U-000001"})
            assert response.status_code == 200
            latest[response.headers["x-recdrill-worker"]] = response.json()["model_version"]
            time.sleep(0.05)
        assert len(latest) == 2 and set(latest.values()) == {new}, latest


def test_a_restarted_server_serves_its_configured_model_again(
    models: dict[str, Path], tmp_path: Path
) -> None:
    state = tmp_path / "state"
    with (
        ServerProcess(models["a"], state, admin_key=KEY) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        configured = version(client)
        assert reload(client, models["b"]).status_code == 200
        assert version(client) != configured
    assert (state / "served_model.json").exists()  # left behind, but it names the old server
    with (
        ServerProcess(models["a"], state, admin_key=KEY) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        assert version(client) == configured
