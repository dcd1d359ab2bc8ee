"""The Ray Serve backend: option checks and the missing-extra error run everywhere; the smoke test
(marked ``ray``) deploys the real app on a local Ray cluster on loopback and needs the ``ray`` extra."""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from recdrill.cli import main
from recdrill.data.snapshot import ShopSnapshot
from recdrill.errors import ConfigError, RayNotInstalledError
from recdrill.serving.runtime.ray_backend import (
    MAX_TEMP_DIR_CHARS,
    RayOptions,
    ensure_ray_installed,
    require_ray,
)
from recdrill.serving.runtime.ray_process import RayServerProcess

# The smallest ShopSim with every category populated (as in test_app.py).
SHOP = "shopsim:n_items=500,n_users=400,n_events=8000"


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ray-model") / "itemknn"
    assert main(["train", "--data", SHOP, "--model", "itemknn", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def ray_server(model_dir: Path) -> Iterator[RayServerProcess]:
    """One replica on a local Ray cluster: 13-30 s to start on a busy 2-core machine, ~5 s to stop,
    about 1.8 GiB while it runs (Ray's agents, controller, proxy, HAProxy, the replica). Stopped when
    this module's tests are done: two clusters on one machine at once interfere, and
    test_ray_process.py starts its own."""
    pytest.importorskip("ray")
    # Not under pytest's basetemp: Ray's unix socket paths limit how long its folder's path may be.
    state_dir = Path(tempfile.mkdtemp(prefix="rdt-", dir="/tmp"))
    try:
        with RayServerProcess(model_dir, state_dir, RayOptions(min_replicas=1, max_replicas=1)) as server:
            yield server
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)


@pytest.mark.ray
def test_the_app_answers_through_ray_serve(ray_server: RayServerProcess, model_dir: Path) -> None:
    snapshot = ShopSnapshot.load(model_dir)
    user = str(snapshot.user_ids[int(snapshot.histories.lengths.argmax())])
    response = httpx.post(ray_server.url + "/v1/recommend", json={"user_id": user, "k": 5}, timeout=30.0)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["served_by"] == "primary"
    assert len(answer["items"]) == 5
    assert "x-request-id" in response.headers  # Ray Serve's replica answered, not some other server
    bad = httpx.post(ray_server.url + "/v1/recommend", json={"k": 0}, timeout=30.0)
    assert bad.status_code == 422 and "error" in bad.json()
    assert len(ray_server.worker_pids()) == 1  # the one replica, found for drills that kill it


def test_options_name_the_bad_value() -> None:
    with pytest.raises(ConfigError, match="max_replicas must be a count >= min_replicas, got 1"):
        RayOptions(min_replicas=2, max_replicas=1)
    with pytest.raises(ConfigError, match="cpus_per_replica"):
        RayOptions(cpus_per_replica=0)


def test_a_temp_dir_too_long_for_unix_sockets_is_refused(tmp_path: Path) -> None:
    long_dir = Path("/tmp") / ("x" * MAX_TEMP_DIR_CHARS)
    with pytest.raises(ConfigError, match="--state-dir"):
        RayOptions().ray_temp_dir(long_dir)
    assert RayOptions().ray_temp_dir(Path("/tmp/s")) == Path("/tmp/s/ray")


def test_without_ray_the_cli_says_how_to_install_it_before_loading_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # what an import sees when the extra is absent
    with pytest.raises(RayNotInstalledError):
        ensure_ray_installed()
    with pytest.raises(RayNotInstalledError):
        require_ray()
    no_model = tmp_path / "not-trained-yet"
    code = main(["serve", "--backend", "ray", "--model", str(no_model), "--state-dir", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == RayNotInstalledError.exit_code
    assert err == ["recdrill: error: Ray Serve is not installed: pip install 'recdrill[ray]'"]


def test_replicas_share_the_servers_reload_group(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RECDRILL_SERVER_ID", raising=False)
    assert "RECDRILL_SERVER_ID" not in RayOptions().actor_options()["runtime_env"]["env_vars"]
    monkeypatch.setenv("RECDRILL_SERVER_ID", "ray-123-abcd")
    env = RayOptions().actor_options()["runtime_env"]["env_vars"]
    assert env["RECDRILL_SERVER_ID"] == "ray-123-abcd" and env["OMP_NUM_THREADS"] == "1"
