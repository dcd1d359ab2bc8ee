"""The local backend: the worker factory in process, and run_server with two uvicorn workers in a
child process (what each worker is told, where their metrics go) on loopback."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import FrozenInstanceError
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from recdrill.contract import WORKER_HEADER
from recdrill.errors import ConfigError
from recdrill.procs import environ, wait_for_workers
from recdrill.serving.middleware.worker_header import WorkerHeader
from recdrill.serving.runtime.child import free_port, signal_group, spawn, wait_ready
from recdrill.serving.runtime.local_backend import SINGLE_THREAD_ENV, ServerTls, worker_app_from_env
from tests.serving.routes.conftest import chain_dataset, save_model

ADMIN_KEY = "backend-admin-key"
# run_server in a child of its own, as `recdrill serve` runs it.
RUN_SERVER = """
import sys
from pathlib import Path
from recdrill.serving.config import ServeConfig
from recdrill.serving.runtime.local_backend import run_server
model, state, port, key = sys.argv[1:]
run_server(ServeConfig(Path(model), Path(state), deadline_ms=5000.0), "127.0.0.1", int(port), 2, key)
"""


def test_single_thread_env_gives_each_blas_library_one_thread() -> None:
    assert SINGLE_THREAD_ENV == {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def test_server_tls_names_a_certificate_and_its_key_and_is_frozen(tmp_path: Path) -> None:
    tls = ServerTls(tmp_path / "cert.pem", tmp_path / "key.pem")
    assert (tls.cert.name, tls.key.name) == ("cert.pem", "key.pem")
    with pytest.raises(FrozenInstanceError):
        tls.cert = tmp_path / "other.pem"  # type: ignore[misc]


def test_the_worker_factory_builds_the_app_of_the_environment_tagged_with_the_pid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECDRILL_MODEL", str(tmp_path / "model"))
    monkeypatch.setenv("RECDRILL_STATE_DIR", str(tmp_path / "state"))
    worker = worker_app_from_env()
    assert isinstance(worker, WorkerHeader) and isinstance(worker.app, FastAPI)
    assert worker.header[0] == WORKER_HEADER.lower().encode()
    assert set(worker.app.openapi()["paths"]) == {
        "/v1/recommend",
        "/v1/feedback",
        "/admin/feedback/lookup",
        "/healthz",
        "/readyz",
        "/metrics",
        "/admin/faults",
        "/admin/faults/{fault_id}",
        "/admin/models/reload",
        "/admin/models/canary",
    }


def test_the_worker_factory_refuses_an_environment_without_a_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RECDRILL_MODEL", raising=False)
    monkeypatch.delenv("RECDRILL_MODEL_VERSION", raising=False)
    with pytest.raises(ConfigError, match="neither RECDRILL_MODEL nor RECDRILL_MODEL_VERSION is set"):
        worker_app_from_env()


@pytest.fixture(scope="module")
def two_workers(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[subprocess.Popen[bytes], str, Path, Path]]:
    """run_server with two workers; a stale metrics file of "an earlier run" waits in the state folder."""
    root = tmp_path_factory.mktemp("backend")
    model = save_model(root / "model", chain_dataset())
    state = root / "state"
    (state / "prometheus").mkdir(parents=True)
    (state / "prometheus" / "counter_999999.db").write_bytes(b"an earlier run's counts")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = root / "server.log"
    command = [sys.executable, "-c", RUN_SERVER, str(model), str(state), str(port), ADMIN_KEY]
    process = spawn(command, {}, log)
    try:
        assert wait_ready(process, url, log, time.monotonic() + 120), log.read_text()
        yield process, url, model, state
    finally:
        signal_group(process, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            signal_group(process, signal.SIGKILL)
            process.wait()


def test_several_workers_are_spawned_and_each_answer_names_one_of_them(
    two_workers: tuple[subprocess.Popen[bytes], str, Path, Path],
) -> None:
    process, url, _, _ = two_workers
    workers = wait_for_workers(process.pid, 2, timeout_s=60)
    assert process.pid not in workers
    answered = set()
    for _ in range(10):
        response = httpx.get(url + "/readyz", headers={"Connection": "close"}, timeout=10)
        assert response.status_code == 200
        answered.add(int(response.headers[WORKER_HEADER]))
    assert answered <= set(workers)


def test_each_worker_gets_the_config_one_blas_thread_and_the_shared_metrics_folder(
    two_workers: tuple[subprocess.Popen[bytes], str, Path, Path],
) -> None:
    process, _, model, state = two_workers
    for worker in wait_for_workers(process.pid, 2, timeout_s=60):
        env = environ(worker)
        assert env is not None
        assert env["RECDRILL_MODEL"] == str(model) and env["RECDRILL_STATE_DIR"] == str(state)
        assert env["RECDRILL_DEADLINE_MS"] == "5000.0"
        assert env["RECDRILL_ADMIN_KEY"] == ADMIN_KEY
        assert env["PROMETHEUS_MULTIPROC_DIR"] == str(state / "prometheus")
        assert {name: env[name] for name in SINGLE_THREAD_ENV} == SINGLE_THREAD_ENV


def test_the_metrics_folder_starts_empty_and_the_metrics_add_up_across_workers(
    two_workers: tuple[subprocess.Popen[bytes], str, Path, Path],
) -> None:
    _, url, _, state = two_workers
    assert not (state / "prometheus" / "counter_999999.db").exists()  # an earlier run's values are gone
    with httpx.Client(base_url=url, timeout=10) as client:
        for _ in range(4):
            assert client.post("/v1/recommend", json={"user_id": "u0", "k": 2}).status_code == 200
        text = client.get("/metrics").text
    assert 'recdrill_served_by_total{tier="primary"} 4.0' in text
    assert sorted(p.name for p in (state / "prometheus").glob("counter_*.db"))  # the workers' own files
