"""Run the server: in this process under uvicorn (``recdrill serve``), or as a child process
that tests and the demo start on a free loopback port and stop again."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

from recdrill.errors import RecdrillError
from recdrill.serving.config import ServeConfig

SINGLE_THREAD_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def run_server(config: ServeConfig, host: str, port: int, workers: int, admin_key: str | None) -> None:
    """Serve until stopped. Several workers each get one BLAS thread (they would fight over cores)
    and share Prometheus values through a multiprocess directory."""
    import uvicorn  # imported here: only the serve command needs it

    os.environ.update(config.to_env(admin_key))
    if workers > 1:
        for name, value in SINGLE_THREAD_ENV.items():
            os.environ.setdefault(name, value)
        # Values of a previous run would be added to this one's: start from an empty directory.
        metrics_dir = config.state_dir / "prometheus"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    uvicorn.run(
        "recdrill.serving.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
    )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class ServerStartError(RecdrillError):
    """The server process exited or did not become ready in time."""


class ServerProcess:
    """``recdrill serve`` as a child process on a free loopback port.

    Example (not run here: it starts a server)::

        with ServerProcess(model_dir, state_dir, admin_key="k") as server:
            httpx.get(server.url + "/readyz")
    """

    def __init__(
        self,
        model_dir: str | Path,
        state_dir: str | Path,
        *,
        workers: int = 1,
        deadline_ms: float = 50.0,
        admin_key: str | None = None,
        host: str = "127.0.0.1",
        ready_timeout_s: float = 60.0,
        log_path: str | Path | None = None,
    ) -> None:
        self.model_dir = Path(model_dir)
        self.state_dir = Path(state_dir)
        self.workers = workers
        self.deadline_ms = deadline_ms
        self.admin_key = admin_key
        self.host = host
        self.port = free_port(host)
        self.ready_timeout_s = ready_timeout_s
        self.log_path = Path(log_path) if log_path else self.state_dir / "server.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        if self._process is None:
            raise ServerStartError("server is not running")
        return self._process.pid

    def start(self) -> ServerProcess:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable,
            "-m",
            "recdrill",
            "serve",
            "--model",
            str(self.model_dir),
            "--state-dir",
            str(self.state_dir),
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
            "--deadline-ms",
            str(self.deadline_ms),
        ]
        env = {**os.environ, **SINGLE_THREAD_ENV}
        if self.admin_key:
            env["RECDRILL_ADMIN_KEY"] = self.admin_key
        with self.log_path.open("ab") as log:
            # Its own process group, so stop/kill reach uvicorn's worker processes too.
            self._process = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                tail = self.log_path.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
                raise ServerStartError(f"server exited with code {self._process.returncode}: {tail[0]}")
            try:
                if httpx.get(self.url + "/readyz", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise ServerStartError(f"server at {self.url} was not ready after {self.ready_timeout_s:.0f} s")

    def stop(self, timeout_s: float = 10.0) -> None:
        """Ask the server to shut down; kill it if it has not within ``timeout_s``."""
        if self._process is None or self._process.poll() is not None:
            return
        self._signal_group(signal.SIGTERM)
        try:
            self._process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
            self._process.wait()

    def kill(self) -> None:
        """SIGKILL to the server and its workers, as a crash would: no shutdown code runs."""
        if self._process is not None and self._process.poll() is None:
            self._signal_group(signal.SIGKILL)
            self._process.wait()

    def _signal_group(self, signum: int) -> None:
        if self._process is None:
            return
        with contextlib.suppress(ProcessLookupError):  # already gone
            os.killpg(self._process.pid, signum)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
