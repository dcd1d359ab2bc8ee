"""Reload by registry version on a real server: verified models load, tampered ones are refused, and
a server started with ``--require-signed`` serves versions only.

The registry lives in a temporary ``RECDRILL_HOME`` that the server inherits. After pushing, the
private signing key is moved out of it, so the server verifies with the public key alone.
"""

from __future__ import annotations

import shutil
import stat
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Self

import httpx
import pytest

from recdrill._home import HOME_ENV
from recdrill.cli import main
from recdrill.registry import Registry, init_keys
from recdrill.registry.keys import DATA_KEY_ENV, SIGNING_KEY_ENV, KeyFiles
from recdrill.serving.registry_source import materialise_version
from recdrill.serving.runtime.child import spawn
from recdrill.serving.runtime.local_backend import SINGLE_THREAD_ENV
from recdrill.serving.runtime.local_process import ServerProcess
from tests.registry.test_tamper import (
    edit_metrics,
    flip_bit,
    remove_signature,
    sign_with_another_key,
    truncate,
)
from tests.serving.test_app import metric

KEY = "registry-reload-key"
ADMIN = {"X-API-Key": KEY}
SHOPS = {
    "a": "shopsim:n_items=300,n_users=250,n_events=5000",
    "b": "shopsim:n_items=300,n_users=200,n_events=4000",
}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A registry holding v1 (model a) and v2 (model b); only the public signing key stays in it."""
    root = tmp_path_factory.mktemp("registry-home")
    models = tmp_path_factory.mktemp("models")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(HOME_ENV, str(root))
        for name in (SIGNING_KEY_ENV, DATA_KEY_ENV, "RECDRILL_MODEL_VERSION"):
            patch.delenv(name, raising=False)
        init_keys(root)
        registry = Registry(root)
        for name, shop in SHOPS.items():
            out = models / name
            assert main(["train", "--data", shop, "--model", "itemknn", "--out", str(out)]) == 0
            registry.push(out)
        assert [row.version for row in registry.list()] == ["v1", "v2"]
        KeyFiles(root).signing.rename(root.parent / f"{root.name}-signing.pem")  # verify, not sign
        yield root


@pytest.fixture(scope="module")
def model_a(home: Path) -> Path:
    """v1 decrypted to a folder: the server's configured model (what it starts on)."""
    return Registry(home).materialise("v1", home.parent / f"{home.name}-plain-v1")


@pytest.fixture(scope="module")
def server(home: Path, model_a: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(model_a, tmp_path_factory.mktemp("state"), admin_key=KEY, deadline_ms=200) as running:
        yield running


@pytest.fixture
def api(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        yield client


def reload_version(client: httpx.Client, version: str) -> httpx.Response:
    return client.post("/admin/models/reload", json={"version": version}, headers=ADMIN)


def served_version(client: httpx.Client) -> str:
    ready = client.get("/readyz")
    assert ready.status_code == 200
    found: str = ready.json()["model_version"]
    return found


def test_reload_by_version_serves_it_and_every_answer_names_it(
    api: httpx.Client, server: ServerProcess
) -> None:
    first = served_version(api)
    assert first.startswith("itemknn-")  # the configured folder: named by its digest
    swapped = reload_version(api, "v2")
    assert swapped.status_code == 200, swapped.text
    body = swapped.json()
    assert body["model_version"] == "v2" and body["previous_version"] == first
    folder = server.state_dir / "models" / "v2"
    assert Path(body["model_dir"]) == folder.resolve()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700  # decrypted weights: this user only
    assert served_version(api) == "v2"
    answer = api.post("/v1/recommend", json={"user_id": "U-000001"})
    assert answer.status_code == 200
    assert answer.json()["model_version"] == "v2" and answer.json()["served_by"] == "primary"
    back = reload_version(api, "v1")
    assert back.status_code == 200 and back.json()["model_version"] == "v1" == served_version(api)
    again = reload_version(api, "v2")  # reuses the decrypted folder, verified again
    assert again.status_code == 200 and again.json()["model_version"] == "v2"


TAMPERS: list[tuple[Callable[[Path], None], str]] = [
    (flip_bit, "digest mismatch"),
    (truncate, "truncated file"),
    (remove_signature, "unsigned"),
    (sign_with_another_key, "signed by another key"),
    (edit_metrics, "manifest edited"),
]


@pytest.mark.parametrize(("tamper", "reason"), TAMPERS, ids=[t.__name__ for t, _ in TAMPERS])
def test_a_tampered_version_is_refused_and_traffic_stays_on_the_old_model(
    api: httpx.Client,
    server: ServerProcess,
    home: Path,
    tmp_path: Path,
    tamper: Callable[[Path], None],
    reason: str,
) -> None:
    assert reload_version(api, "v1").status_code == 200
    assert reload_version(api, "v2").status_code == 200  # v2 verified and decrypted before the tampering
    assert reload_version(api, "v1").status_code == 200
    artifact = Registry(home).artifact_path("v2")
    backup = tmp_path / "artifact"
    shutil.copytree(artifact, backup)
    before = api.get("/metrics").text
    try:
        tamper(artifact)
        outcomes, refused = _traffic_around(server, lambda: reload_version(api, "v2"))
    finally:
        shutil.rmtree(artifact)
        shutil.copytree(backup, artifact)
    assert refused.status_code == 422, refused.text
    error = refused.json()
    assert error["reason"] == reason and f"({reason})" in error["error"]
    assert error["model_version"] == "v1" == served_version(api)
    assert set(outcomes) == {(200, "v1")}, outcomes  # every answer during the refusal: the old model
    assert sum(outcomes.values()) >= 10
    after = api.get("/metrics").text
    assert (
        metric(after, "recdrill_model_refusals_total", reason=reason)
        - metric(before, "recdrill_model_refusals_total", reason=reason)
        == 1
    )
    log = server.log_path.read_text()
    assert f"model refused ({reason}): v2: refused ({reason})" in log
    for secret in _secrets(home):
        assert secret not in log


def test_an_unknown_version_or_an_ambiguous_body_is_refused(api: httpx.Client) -> None:
    serving = served_version(api)
    unknown = reload_version(api, "v99")
    assert unknown.status_code == 404 and unknown.json()["reason"] == "unknown version"
    both = api.post("/admin/models/reload", json={"version": "v1", "model_dir": "/tmp"}, headers=ADMIN)
    assert both.status_code == 422 and "not both" in both.json()["detail"][0]["msg"]
    odd = reload_version(api, "../v1")  # refused by the schema's version pattern
    assert odd.status_code == 422 and odd.json()["detail"][0]["loc"] == ["body", "version"]
    assert api.post("/admin/models/reload", json={"version": "v2"}).status_code == 401
    assert served_version(api) == serving


def test_every_worker_follows_a_version_reload(home: Path, model_a: Path, tmp_path: Path) -> None:
    with ServerProcess(model_a, tmp_path / "state", workers=2, admin_key=KEY) as server:
        with httpx.Client(base_url=server.url, timeout=30.0) as admin:
            assert reload_version(admin, "v2").status_code == 200
        latest: dict[str, str] = {}
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline and (len(latest) < 2 or set(latest.values()) != {"v2"}):
            with httpx.Client(base_url=server.url, timeout=30.0, headers={"Connection": "close"}) as client:
                response = client.post("/v1/recommend", json={"user_id": "U-000001"})
            assert response.status_code == 200
            latest[response.headers["x-recdrill-worker"]] = response.json()["model_version"]
            time.sleep(0.05)
        assert len(latest) == 2 and set(latest.values()) == {"v2"}, latest


def test_a_server_started_on_a_version_serves_it(
    home: Path, model_a: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECDRILL_MODEL_VERSION", "v2")
    with (
        ServerProcess(model_a, tmp_path / "state", admin_key=KEY) as server,
        httpx.Client(base_url=server.url, timeout=30.0) as client,
    ):
        assert served_version(client) == "v2"
        assert reload_version(client, "v1").status_code == 200
        back = client.post("/admin/models/reload", headers=ADMIN)  # no body: the configured version
        assert back.status_code == 200 and back.json()["model_version"] == "v2"


class SignedOnlyServer(ServerProcess):
    """``recdrill serve --require-signed --registry-version VERSION``: no ``--model`` at all."""

    def __init__(self, version: str, state_dir: Path) -> None:
        super().__init__(Path(), state_dir, admin_key=KEY, extra_args=["--no-monitor"])
        self.version = version

    def start(self) -> Self:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "recdrill", "serve", "--require-signed"]
        command += ["--registry-version", self.version, "--state-dir", str(self.state_dir)]
        command += ["--host", self.host, "--port", str(self.port), *self.extra_args]
        self._process = spawn(command, {**SINGLE_THREAD_ENV, "RECDRILL_ADMIN_KEY": KEY}, self.log_path)
        self._wait_ready(self._process)
        return self


def test_a_server_that_requires_signed_models_serves_versions_and_refuses_folders(
    home: Path, model_a: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(HOME_ENV, str(home))
    with (
        SignedOnlyServer("v2", tmp_path / "state") as server,
        httpx.Client(base_url=server.url, timeout=30.0) as client,
    ):
        assert served_version(client) == "v2"
        assert reload_version(client, "v1").status_code == 200  # a version that verifies: served
        refused = client.post("/admin/models/reload", json={"model_dir": str(model_a)}, headers=ADMIN)
        assert refused.status_code == 422, refused.text  # a genuine model, but a plain folder
        assert refused.json() == {
            "error": f"reload refused: {model_a}: refused (unsigned): a plain model folder; this server "
            "serves only registry versions that verify (--require-signed): push it with "
            "'recdrill registry push' and reload it by version",
            "reason": "unsigned",
            "model_version": "v1",
        }
        assert served_version(client) == "v1"
        assert metric(client.get("/metrics").text, "recdrill_model_refusals_total", reason="unsigned") == 1
        back = client.post("/admin/models/reload", headers=ADMIN)  # no body: the configured version
        assert back.status_code == 200 and back.json()["model_version"] == "v2"


def test_a_decrypted_folder_is_reused_only_while_it_matches_the_signed_manifest(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(HOME_ENV, str(home))
    folder = materialise_version("v2", tmp_path)
    state = folder / "state.npz"
    first_inode = state.stat().st_ino
    assert materialise_version("v2", tmp_path) == folder and state.stat().st_ino == first_inode  # reused
    genuine = state.read_bytes()
    state.write_bytes(genuine[:-10])  # the plaintext altered on disk after it was verified
    assert materialise_version("v2", tmp_path) == folder
    assert state.read_bytes() == genuine  # replaced by a freshly verified copy, not served as found
    (folder / "extra.npz").write_bytes(b"planted")
    materialise_version("v2", tmp_path)
    assert not (folder / "extra.npz").exists()
    assert not [p for p in (tmp_path / "models").iterdir() if p.name.startswith(".")]  # no staging left


def _traffic_around(
    server: ServerProcess, action: Callable[[], httpx.Response]
) -> tuple[Counter[tuple[int, str]], httpx.Response]:
    """Recommendation traffic from 3 clients for 0.5 s before ``action`` until 0.5 s after it."""
    stop = threading.Event()
    outcomes: Counter[tuple[int, str]] = Counter()
    lock = threading.Lock()

    def hammer(worker: int) -> None:
        with httpx.Client(base_url=server.url, timeout=30.0) as client:
            i = 0
            while not stop.is_set():
                i += 1
                response = client.post("/v1/recommend", json={"user_id": f"U-{(worker * 97 + i) % 200:06d}"})
                seen = response.json().get("model_version", "") if response.status_code == 200 else ""
                with lock:
                    outcomes[(response.status_code, seen)] += 1

    with ThreadPoolExecutor(max_workers=3) as pool:
        running = [pool.submit(hammer, w) for w in range(3)]
        try:
            time.sleep(0.5)
            result = action()
            time.sleep(0.5)
        finally:
            stop.set()
            for future in running:
                future.result()
    return outcomes, result


def _secrets(home: Path) -> list[str]:
    """The data key and the private signing key's base64 lines, as they would appear if leaked."""
    private = (home.parent / f"{home.name}-signing.pem").read_text().splitlines()
    return [KeyFiles(home).data.read_text().strip(), *(line for line in private if "-----" not in line)]
