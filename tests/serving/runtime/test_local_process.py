"""ServerProcess: ``recdrill serve`` as a child on a free loopback port: its options, the ways a start
fails, and one real server started, probed and stopped."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from recdrill.contract import WORKER_HEADER
from recdrill.errors import ConfigError, ServerStartError
from recdrill.procs import command_line, is_running
from recdrill.serving.runtime.local_process import ServerProcess
from tests.serving.routes.conftest import chain_dataset, save_model


def test_a_certificate_without_its_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="tls_cert and tls_key go together: give both or neither"):
        ServerProcess(tmp_path / "model", tmp_path / "state", tls_cert=tmp_path / "cert.pem")
    with pytest.raises(ConfigError, match="tls_cert and tls_key go together"):
        ServerProcess(tmp_path / "model", tmp_path / "state", tls_key=tmp_path / "key.pem")


def test_the_url_is_http_on_its_own_port_or_https_with_a_certificate(tmp_path: Path) -> None:
    plain = ServerProcess(tmp_path / "model", tmp_path / "state")
    other = ServerProcess(tmp_path / "model", tmp_path / "state")
    assert plain.url == f"http://127.0.0.1:{plain.port}"
    assert plain.port != other.port  # each gets a free port of its own
    secure = ServerProcess(
        tmp_path / "m", tmp_path / "s", tls_cert=tmp_path / "c.pem", tls_key=tmp_path / "k.pem"
    )
    assert secure.url == f"https://127.0.0.1:{secure.port}"
    assert secure.tls is not None and secure.tls.cert == tmp_path / "c.pem"


def test_the_log_goes_to_the_state_folder_unless_told_otherwise(tmp_path: Path) -> None:
    assert ServerProcess(tmp_path / "m", tmp_path / "state").log_path == tmp_path / "state" / "server.log"
    assert (
        ServerProcess(tmp_path / "m", tmp_path / "s", log_path=tmp_path / "x.log").log_path
        == tmp_path / "x.log"
    )


def test_a_server_not_started_has_no_pid(tmp_path: Path) -> None:
    with pytest.raises(ServerStartError, match="server is not running"):
        _ = ServerProcess(tmp_path / "model", tmp_path / "state").pid


def test_a_server_that_cannot_start_is_an_error_naming_why_and_leaves_no_process(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "no-model", tmp_path / "state")
    with pytest.raises(
        ServerStartError, match=r"server exited with code \d+: .*no-model: no such model folder"
    ):
        server.start()
    assert not is_running(server.pid)
    assert "no such model folder" in server.log_path.read_text()


def test_a_server_not_ready_in_time_is_stopped_and_named(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "model", tmp_path / "state", ready_timeout_s=0)
    with pytest.raises(ServerStartError, match=rf"server at {server.url} was not ready after 0 s"):
        server.start()
    assert not is_running(server.pid)


def test_a_started_server_answers_as_configured_and_stops_cleanly(tmp_path: Path) -> None:
    model = save_model(tmp_path / "model", chain_dataset())
    server = ServerProcess(
        model, tmp_path / "state", admin_key="process-key", deadline_ms=5000, extra_args=["--no-monitor"]
    )
    with server:
        arguments = command_line(server.pid)
        assert arguments[1:4] == ["-m", "recdrill", "serve"]
        assert arguments[arguments.index("--deadline-ms") + 1] == "5000"
        assert arguments[arguments.index("--model") + 1] == str(model)
        assert arguments[-1] == "--no-monitor"  # the extra options come last
        assert server.worker_pids() == [server.pid]  # one worker: the server itself
        assert server.answering_pids({server.pid}, timeout_s=30) == {server.pid}
        with httpx.Client(base_url=server.url, timeout=10) as client:
            ready = client.get("/readyz")
            assert ready.status_code == 200 and int(ready.headers[WORKER_HEADER]) == server.pid
            assert client.get("/admin/faults", headers={"X-API-Key": "process-key"}).json() == []
            assert client.get("/admin/faults", headers={"X-API-Key": "wrong"}).status_code == 401
            assert client.post(
                "/v1/feedback", json={"user_id": "u1", "item_id": "i2", "event": "view"}
            ).is_success
        assert sorted(p.name for p in server.state_dir.glob("*.db-wal")) == [
            "audit.db-wal",
            "faults.db-wal",
            "feedback.db-wal",
        ]
        pid = server.pid
    # Stopped on the way out by SIGTERM (uvicorn re-raises it once shut down), not killed after the
    # timeout: the app shut down in order, and closing its SQLite files checkpointed their WALs away.
    assert server._process is not None and server._process.returncode == -signal.SIGTERM
    assert not is_running(pid)
    assert sorted(p.name for p in server.state_dir.glob("*.db-wal")) == []
    assert (server.state_dir / "feedback.db").is_file()
    server.kill()  # already gone: nothing to kill
    assert server._process.returncode == -signal.SIGTERM
