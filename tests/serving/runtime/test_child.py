"""What every child-process server shares: free_port, spawn, wait_ready, signal_group and ChildServer,
with real processes (``python -c``) and real loopback HTTP(S) servers in threads."""

from __future__ import annotations

import http.server
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Self

import pytest

from recdrill.errors import ServerStartError
from recdrill.procs import is_running
from recdrill.security.tls import client_ssl_context, make_dev_certificate
from recdrill.serving.runtime.child import ChildServer, free_port, signal_group, spawn, wait_ready

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]
# Prints the pid of a grandchild it starts, then waits: a server and one of its workers.
PARENT_OF_ONE = [
    sys.executable,
    "-c",
    "import subprocess, sys, time\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
    "print(child.pid, flush=True)\n"
    "time.sleep(120)",
]
# Ignores SIGTERM (once it has said so): only SIGKILL stops it.
STUBBORN = [
    sys.executable,
    "-c",
    "import signal, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('ignoring SIGTERM', flush=True)\n"
    "time.sleep(120)",
]


def eventually(check: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    """Poll ``check`` until it holds; fail naming ``what`` after a bound no healthy run comes near."""
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.02)


def log_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


@contextmanager
def started(
    command: list[str], log_path: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """``spawn`` a process, and SIGKILL its whole group on the way out whatever the test did."""
    process = spawn(command, env or {}, log_path)
    try:
        yield process
    finally:
        signal_group(process, signal.SIGKILL)
        process.wait()


class _Ready(http.server.BaseHTTPRequestHandler):
    status = 200
    probes: list[str]

    def do_GET(self) -> None:
        self.probes.append(self.path)
        self.send_response(self.status if self.path == "/readyz" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def readyz_server(status: int, tls: ssl.SSLContext | None = None) -> Iterator[tuple[str, list[str]]]:
    """A loopback server answering ``/readyz`` with ``status`` (over TLS with ``tls``): its URL and
    the paths it was asked for."""
    probes: list[str] = []
    handler = type("Handler", (_Ready,), {"status": status, "probes": probes})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    scheme = "http" if tls is None else "https"
    try:
        yield f"{scheme}://127.0.0.1:{server.server_address[1]}", probes
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def unused_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


# --- free_port and spawn --------------------------------------------------------------------------


def test_free_port_is_a_loopback_port_that_can_be_bound() -> None:
    port = free_port()
    assert 1024 <= port <= 65535
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", port))  # nobody holds it
        assert sock.getsockname()[1] == port


def test_spawn_adds_to_the_environment_and_appends_both_streams_to_the_log(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text("an earlier run\n")
    command = [
        sys.executable,
        "-c",
        "import os, sys\n"
        "print(os.environ['RECDRILL_MARK'], 'PATH' in os.environ)\n"
        "print('oops', file=sys.stderr)",
    ]
    with started(command, log, {"RECDRILL_MARK": "marked"}) as process:
        assert process.wait() == 0
    assert log_lines(log) == ["an earlier run", "marked True", "oops"]


def test_a_spawned_process_leads_a_process_group_of_its_own(tmp_path: Path) -> None:
    with started(SLEEPER, tmp_path / "log") as process:
        assert os.getpgid(process.pid) == process.pid
        assert os.getpgid(process.pid) != os.getpgid(0)
        assert os.getsid(process.pid) == process.pid  # a new session: no signal from our terminal


# --- signal_group ---------------------------------------------------------------------------------


def test_a_signal_to_the_group_reaches_the_processes_the_child_started(tmp_path: Path) -> None:
    log = tmp_path / "log"
    with started(PARENT_OF_ONE, log) as process:
        eventually(lambda: len(log_lines(log)) == 1, "the child printed its worker's pid")
        worker = int(log_lines(log)[0])
        assert is_running(worker)
        signal_group(process, signal.SIGTERM)
        assert process.wait() == -signal.SIGTERM
        eventually(lambda: not is_running(worker), "the worker stopped too")
        signal_group(process, signal.SIGTERM)  # the group is gone: nothing to signal, no error
        assert process.returncode == -signal.SIGTERM


# --- wait_ready -----------------------------------------------------------------------------------


def test_a_process_that_exits_is_a_start_error_naming_its_last_line(tmp_path: Path) -> None:
    log = tmp_path / "log"
    command = [sys.executable, "-c", "import sys; print('starting'); sys.exit('fatal: port taken')"]
    refused = pytest.raises(ServerStartError, match=r"^server exited with code 1: fatal: port taken$")
    with started(command, log) as process, refused:
        wait_ready(process, unused_url(), log, time.monotonic() + 60)


def test_a_start_error_names_the_server_and_says_when_there_was_no_output(tmp_path: Path) -> None:
    log = tmp_path / "log"
    refused = pytest.raises(ServerStartError, match=r"^Ray server exited with code 7: no output$")
    with started([sys.executable, "-c", "raise SystemExit(7)"], log) as process, refused:
        wait_ready(process, unused_url(), log, time.monotonic() + 60, name="Ray server")


def test_ready_once_readyz_answers_200(tmp_path: Path) -> None:
    with started(SLEEPER, tmp_path / "log") as process, readyz_server(200) as (url, probes):
        assert wait_ready(process, url, tmp_path / "log", time.monotonic() + 60) is True
        assert probes == ["/readyz"]


def test_a_readyz_that_never_says_200_runs_out_the_deadline(tmp_path: Path) -> None:
    with started(SLEEPER, tmp_path / "log") as process, readyz_server(503) as (url, probes):
        assert wait_ready(process, url, tmp_path / "log", time.monotonic() + 1.5, interval_s=0.05) is False
        assert probes and set(probes) == {"/readyz"}
        assert process.poll() is None  # the caller decides what to stop


def test_a_deadline_already_past_probes_nothing(tmp_path: Path) -> None:
    with started(SLEEPER, tmp_path / "log") as process, readyz_server(200) as (url, probes):
        assert wait_ready(process, url, tmp_path / "log", time.monotonic() - 1.0) is False
        assert probes == []


def test_an_untrusted_certificate_stops_the_wait_at_once_and_a_trusted_one_is_ready(tmp_path: Path) -> None:
    files = make_dev_certificate(tmp_path / "tls")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(files.cert, files.key)
    with started(SLEEPER, tmp_path / "log") as process, readyz_server(200, tls=context) as (url, probes):
        assert url.startswith("https://")
        with pytest.raises(ServerStartError, match=rf"^server at {url}: certificate not trusted"):
            wait_ready(process, url, tmp_path / "log", time.monotonic() + 60)  # the system store
        assert probes == []  # the handshake failed: no request was made
        assert wait_ready(
            process, url, tmp_path / "log", time.monotonic() + 60, verify=client_ssl_context(files.ca_cert)
        )
        assert probes == ["/readyz"]


# --- ChildServer ----------------------------------------------------------------------------------


class _Spawned(ChildServer):
    """The smallest ChildServer: ``start`` spawns ``command``; ``stop`` terminates as asked."""

    def __init__(
        self, command: list[str], log_path: Path, *, whole_group: bool = True, timeout_s: float = 10.0
    ) -> None:
        self.command = command
        self.log_path = log_path
        self.whole_group = whole_group
        self.timeout_s = timeout_s

    def start(self) -> Self:
        self._process = spawn(self.command, {}, self.log_path)
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        self._terminate(self.timeout_s, whole_group=self.whole_group)


def test_the_base_server_has_no_pid_before_it_starts_and_no_start_or_stop_of_its_own() -> None:
    server = ChildServer()
    with pytest.raises(ServerStartError, match="server is not running"):
        _ = server.pid
    with pytest.raises(NotImplementedError):
        server.start()
    with pytest.raises(NotImplementedError):
        server.stop()


def test_as_a_context_manager_the_server_runs_inside_and_is_stopped_on_the_way_out(tmp_path: Path) -> None:
    with _Spawned(SLEEPER, tmp_path / "log") as server:
        pid = server.pid
        assert is_running(pid)
    assert server._process is not None and server._process.returncode == -signal.SIGTERM
    assert not is_running(pid)
    server.stop()  # stopping a stopped server changes nothing
    assert server._process.returncode == -signal.SIGTERM


def test_a_server_that_ignores_sigterm_is_killed_after_the_timeout(tmp_path: Path) -> None:
    log = tmp_path / "log"
    server = _Spawned(STUBBORN, log, timeout_s=0.2).start()
    try:
        eventually(lambda: log_lines(log) == ["ignoring SIGTERM"], "the handler is in place")
        server.stop()
        assert server._process is not None and server._process.returncode == -signal.SIGKILL
    finally:
        assert server._process is not None
        signal_group(server._process, signal.SIGKILL)


def test_terminating_the_server_alone_leaves_its_children_to_it(tmp_path: Path) -> None:
    log = tmp_path / "log"
    server = _Spawned(PARENT_OF_ONE, log, whole_group=False).start()
    assert server._process is not None
    try:
        eventually(lambda: len(log_lines(log)) == 1, "the child printed its worker's pid")
        worker = int(log_lines(log)[0])
        server.stop()
        assert server._process.returncode == -signal.SIGTERM
        assert is_running(worker)  # a server stopping in order stops its own workers; this one did not
    finally:
        signal_group(server._process, signal.SIGKILL)
