"""One trained model and one live server on loopback, shared by the Chaos Toolkit tests."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from recdrill.chaos.probes import fallback_share
from recdrill.cli import main
from recdrill.serving.runtime.local_process import ServerProcess

DATA = "shopsim:n_items=600,n_users=500,n_events=10000"
KEY = "chaos-test-key"
USERS = [f"U-{i:06d}" for i in range(8)]  # shopsim's first users: known to the model


@pytest.fixture(scope="session")
def chaos_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("chaos") / "model"
    assert main(["train", "--data", DATA, "--model", "itemknn", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="session")
def chaos_server(chaos_model_dir: Path) -> Iterator[ServerProcess]:
    with ServerProcess(chaos_model_dir, chaos_model_dir.parent / "state", admin_key=KEY) as running:
        yield running


@pytest.fixture
def server(chaos_server: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> Iterator[ServerProcess]:
    """The live server, serving from its primary tier again, with the admin key in the environment; no
    fault left behind by a failed test."""
    monkeypatch.setenv("RECDRILL_ADMIN_KEY", KEY)
    wait_for_primary(chaos_server.url)
    yield chaos_server
    with httpx.Client(base_url=chaos_server.url, headers={"X-API-Key": KEY}, timeout=5) as admin:
        for fault in admin.get("/admin/faults").json():
            admin.delete(f"/admin/faults/{fault['id']}")


def wait_for_primary(url: str, timeout_s: float = 30.0) -> None:
    """Wait out the primary's circuit breaker (opened by an earlier test's fault, 3 s cool-down)."""
    deadline = time.monotonic() + timeout_s
    while fallback_share(url, requests=3, user_ids=USERS) > 0:
        if time.monotonic() > deadline:
            pytest.fail(f"the primary tier did not serve again within {timeout_s} s")
        time.sleep(0.5)


def server_faults(url: str) -> list[dict[str, object]]:
    with httpx.Client(base_url=url, headers={"X-API-Key": KEY}, timeout=5) as admin:
        response = admin.get("/admin/faults")
    assert response.status_code == 200
    faults: list[dict[str, object]] = response.json()
    return faults
