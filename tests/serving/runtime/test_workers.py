"""Multi-worker serving: real ``recdrill serve --workers 2`` processes, real signals, loopback HTTP."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from recdrill.cli import main
from recdrill.contract import WORKER_HEADER
from recdrill.procs import ProcessRef, is_stopped, wait_for_workers, worker_pids
from recdrill.serving.runtime.local_backend import WORKER_HEALTHCHECK_S
from recdrill.serving.runtime.local_process import ServerProcess

SHOP = "shopsim:n_items=500,n_users=400,n_events=8000"
USER = {"user_id": "U-000001", "k": 5}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("model") / "itemknn"
    assert main(["train", "--data", SHOP, "--model", "itemknn", "--out", str(out)]) == 0
    return out


@pytest.fixture
def server(model_dir: Path, tmp_path: Path) -> Iterator[ServerProcess]:
    with ServerProcess(model_dir, tmp_path / "state", workers=2) as running:
        yield running


def fresh_request(server: ServerProcess) -> httpx.Response:
    """One request on a new connection, so any waiting worker may take it."""
    return httpx.post(server.url + "/v1/recommend", json=USER, headers={"Connection": "close"}, timeout=10)


def test_workers_are_the_spawned_children_and_each_answers(server: ServerProcess) -> None:
    pids = server.worker_pids()
    assert len(pids) == 2 and server.pid not in pids
    assert worker_pids(pids[0]) == []  # a worker has no workers: the supervisor is the parent
    answered = {int(fresh_request(server).headers[WORKER_HEADER]) for _ in range(40)}
    assert answered <= set(pids)
    assert server.answering_pids(set(pids), timeout_s=30) == set(pids)


def test_a_killed_worker_is_replaced_and_the_other_keeps_serving(server: ServerProcess) -> None:
    victim, survivor = server.worker_pids()
    assert ProcessRef.of(victim).signal(signal.SIGKILL)
    killed_at = time.monotonic()
    answered_by = []
    while time.monotonic() - killed_at < 2.0:  # new connections go to live workers meanwhile
        response = fresh_request(server)
        assert response.status_code == 200
        answered_by.append(int(response.headers[WORKER_HEADER]))
    assert answered_by[0] == survivor and victim not in answered_by

    pids = wait_for_workers(server.pid, 2, timeout_s=60, without=frozenset({victim}))
    assert survivor in pids
    (replacement,) = set(pids) - {survivor}
    assert server.answering_pids({replacement}, timeout_s=60) >= {replacement}
    assert fresh_request(server).status_code == 200


def test_a_client_whose_worker_dies_mid_request_sees_a_transport_error(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        # Keep-alive: this client's one connection stays with the worker that answered first.
        victim = int(client.post("/v1/recommend", json=USER).headers[WORKER_HEADER])
        ref = ProcessRef.of(victim)
        ref.signal(signal.SIGSTOP)  # the next request sits unanswered on the victim's connection
        outcome: list[BaseException | httpx.Response] = []

        def send() -> None:
            try:
                outcome.append(client.post("/v1/recommend", json=USER))
            except httpx.HTTPError as exc:
                outcome.append(exc)

        sender = threading.Thread(target=send)
        sender.start()
        time.sleep(0.5)
        assert not outcome  # still waiting on the stopped worker
        ref.signal(signal.SIGKILL)
        sender.join(timeout=30)
    (error,) = outcome
    # Unread request: reset; read but unanswered: closed without a response. Never an HTTP status.
    assert isinstance(error, httpx.ReadError | httpx.RemoteProtocolError), repr(error)
    assert fresh_request(server).status_code == 200  # a retry on a new connection succeeds


def test_a_worker_stopped_past_the_healthcheck_is_replaced(server: ServerProcess) -> None:
    victim, survivor = server.worker_pids()
    ref = ProcessRef.of(victim)
    ref.signal(signal.SIGSTOP)
    try:
        deadline = time.monotonic() + 10  # the kernel stops it when next scheduled: soon, not at once
        while ref.alive() and not is_stopped(victim) and time.monotonic() < deadline:
            time.sleep(0.01)
        # Stopped, or (on a very slow machine) already replaced by the supervisor: both say the same
        # worker was frozen; a running one would not be.
        assert is_stopped(victim) or not ref.alive()
        pids = wait_for_workers(
            server.pid, 2, timeout_s=WORKER_HEALTHCHECK_S + 60, without=frozenset({victim})
        )
    finally:
        ref.signal(signal.SIGCONT)  # no-op (returns False) once the supervisor has killed it
    assert survivor in pids and not ref.alive()
