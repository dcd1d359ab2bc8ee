"""RayServerProcess: the command it runs, how it finds the replicas and how it stops, without Ray
(small stand-in processes); the real deployment is marked ``ray``."""

from __future__ import annotations

import dataclasses
import importlib.util
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from recdrill.errors import ServerStartError
from recdrill.procs import descendants, is_running
from recdrill.serving.runtime.child import signal_group
from recdrill.serving.runtime.ray_backend import RayOptions
from recdrill.serving.runtime.ray_process import RayServerProcess
from tests.serving.routes.conftest import chain_dataset, save_model

RAY_INSTALLED = importlib.util.find_spec("ray") is not None
REPLICA_TITLE = "ray::ServeReplica:recdrill:Recdrill"
# Stands in for `recdrill serve --backend ray`: answers /readyz, with a helper process below it and,
# when asked, one named as Ray names a replica (argv[0] is the process title Ray sets).
STAND_IN = f"""
import http.server, shutil, subprocess, sys
port, replica = int(sys.argv[1]), sys.argv[2] == "replica"
subprocess.Popen(["sleep", "120"])
if replica:
    subprocess.Popen([{REPLICA_TITLE!r}, "120"], executable=shutil.which("sleep"))
class Ready(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/readyz" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
print("stand-in ready", flush=True)
http.server.HTTPServer(("127.0.0.1", port), Ready).serve_forever()
"""


class StandInServer(RayServerProcess):
    """The real start, readiness wait, replica lookup and stop, around a stand-in for Ray Serve."""

    def __init__(self, state_dir: Path, *, replica: bool) -> None:
        super().__init__(state_dir / "model", state_dir, ready_timeout_s=60)
        self.replica = replica

    def command(self) -> list[str]:
        mode = "replica" if self.replica else "none"
        return [sys.executable, "-c", STAND_IN, str(self.options.http_port), mode]


def test_the_command_serves_the_ray_backend_with_every_option(tmp_path: Path) -> None:
    options = RayOptions(
        min_replicas=2,
        max_replicas=3,
        target_ongoing_requests=2.5,
        max_queued_requests=-1,
        cpus_per_replica=0.25,
        ingress="proxy",
    )
    server = RayServerProcess(tmp_path / "model", tmp_path / "state", options)
    port = server.options.http_port
    assert server.command() == [
        sys.executable, "-m", "recdrill", "serve", "--backend", "ray",
        "--model", str(tmp_path / "model"), "--state-dir", str(tmp_path / "state"),
        "--host", "127.0.0.1", "--port", str(port),
        "--min-replicas", "2", "--max-replicas", "3",
        "--target-ongoing", "2.5", "--max-queued", "-1",
        "--cpus-per-replica", "0.25", "--ray-ingress", "proxy",
    ]  # fmt: skip


def test_the_port_is_a_free_one_and_the_other_options_are_kept(tmp_path: Path) -> None:
    options = RayOptions(max_replicas=4, http_port=8000)
    server = RayServerProcess(tmp_path / "model", tmp_path / "state", options)
    port = server.options.http_port
    assert server.options == dataclasses.replace(options, http_port=port)  # only the port is replaced
    assert 1024 <= port <= 65535 and options.http_port == 8000  # by a free one; the caller's copy unchanged
    assert server.url == f"http://127.0.0.1:{server.options.http_port}"
    assert server.log_path == tmp_path / "state" / "server.log"
    assert server.start_s == 0.0
    default = RayServerProcess(tmp_path / "model", tmp_path / "state", log_path=tmp_path / "ray.log")
    assert (
        default.options.min_replicas == RayOptions().min_replicas and default.log_path == tmp_path / "ray.log"
    )


def test_a_server_not_started_has_no_pid_and_no_replicas_to_find(tmp_path: Path) -> None:
    server = RayServerProcess(tmp_path / "model", tmp_path / "state")
    with pytest.raises(ServerStartError, match="server is not running"):
        server.worker_pids()


def test_without_replicas_no_process_below_the_server_is_a_worker(tmp_path: Path) -> None:
    server = StandInServer(tmp_path / "state", replica=False).start()
    assert server._process is not None
    try:
        assert server.start_s > 0
        assert httpx.get(server.url + "/readyz", timeout=10).status_code == 200
        assert len(descendants(server.pid)) == 1  # the helper is there, but it is no replica
        assert server.worker_pids() == []
    finally:
        server.stop()
        signal_group(server._process, signal.SIGKILL)


def test_replicas_are_found_by_their_process_title_and_stop_signals_the_server_alone(tmp_path: Path) -> None:
    server = StandInServer(tmp_path / "state", replica=True).start()
    assert server._process is not None
    try:
        [replica] = server.worker_pids()
        assert replica in descendants(server.pid) and len(descendants(server.pid)) == 2
        server.stop()
        # SIGTERM went to the server only, so that it can shut Ray down in order: its children are
        # left to it (this stand-in does not stop them).
        assert server._process.returncode == -signal.SIGTERM
        assert is_running(replica)
    finally:
        signal_group(server._process, signal.SIGKILL)


@pytest.mark.skipif(RAY_INSTALLED, reason="Ray is installed: this would start a real Ray cluster")
def test_without_ray_the_start_fails_naming_the_missing_extra(tmp_path: Path) -> None:
    server = RayServerProcess(tmp_path / "model", tmp_path / "state", ready_timeout_s=120)
    with pytest.raises(
        ServerStartError, match=r"^Ray server exited with code \d+: .*pip install 'recdrill\[ray\]'"
    ):
        server.start()
    assert not is_running(server.pid)


@pytest.mark.ray
def test_a_real_deployment_has_one_replica_and_stopping_tears_ray_down(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    model = save_model(tmp_path / "model", chain_dataset())
    # Not under pytest's basetemp: Ray's unix socket paths limit how long its folder's path may be.
    state_dir = Path(tempfile.mkdtemp(prefix="rdp-", dir="/tmp"))
    try:
        server = RayServerProcess(model, state_dir, RayOptions(min_replicas=1, max_replicas=1))
        with server:
            assert server.start_s > 0
            # Ray names the replica's process (ray::ServeReplica:...) a moment after it first answers:
            # wait for the title, as LocalDeployment does before a drill that kills replicas.
            deadline = time.monotonic() + 60.0
            while not server.worker_pids() and time.monotonic() < deadline:
                time.sleep(0.5)
            [replica] = server.worker_pids()
            response = httpx.post(server.url + "/v1/recommend", json={"user_id": "u0", "k": 3}, timeout=30)
            assert response.status_code == 200 and response.json()["served_by"] == "primary"
            pid = server.pid
        assert not is_running(pid) and not is_running(replica)
        assert descendants(pid) == []
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)
