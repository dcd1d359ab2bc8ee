"""``recdrill serve`` as a child process on a free loopback port, as tests, drills and the demo
start it and stop it again.

It runs in a process group of its own, so stopping it (or killing it, as a crash would) reaches
every worker. What a client of it sees when one of its workers dies is described in
:mod:`recdrill.serving.runtime.local_backend`.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Self

import httpx

from recdrill.contract import WORKER_HEADER
from recdrill.errors import ConfigError, ProcessGoneError, ServerStartError
from recdrill.procs import wait_for_workers, worker_pids
from recdrill.security.tls import client_ssl_context
from recdrill.serving.runtime.child import ChildServer, free_port, signal_group, spawn, wait_ready
from recdrill.serving.runtime.local_backend import SINGLE_THREAD_ENV, ServerTls


class ServerProcess(ChildServer):
    """``recdrill serve`` as a child process on a free loopback port.

    With ``tls_cert`` and ``tls_key`` it serves HTTPS; ``verify`` (the context its own probes use,
    built from ``ca_bundle``, else the system store) is for clients of it to share.

    Example (not run here: it starts a server)::

        with ServerProcess(model_dir, state_dir, admin_key="k") as server:
            httpx.get(server.url + "/readyz")
        with ServerProcess(model_dir, state_dir, tls_cert=c, tls_key=k, ca_bundle=ca) as server:
            httpx.get(server.url + "/readyz", verify=server.verify)
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
        tls_cert: str | Path | None = None,
        tls_key: str | Path | None = None,
        ca_bundle: str | Path | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        if (tls_cert is None) != (tls_key is None):
            raise ConfigError("tls_cert and tls_key go together: give both or neither")
        self.tls = None if tls_cert is None or tls_key is None else ServerTls(Path(tls_cert), Path(tls_key))
        self.verify = client_ssl_context(ca_bundle)
        self.model_dir = Path(model_dir)
        self.state_dir = Path(state_dir)
        self.workers = workers
        self.deadline_ms = deadline_ms
        self.admin_key = admin_key
        self.host = host
        self.port = free_port(host)
        self.ready_timeout_s = ready_timeout_s
        self.log_path = Path(log_path) if log_path else self.state_dir / "server.log"
        self.extra_args = tuple(extra_args)  # more ``recdrill serve`` options, e.g. ``--no-monitor``

    @property
    def url(self) -> str:
        scheme = "http" if self.tls is None else "https"
        return f"{scheme}://{self.host}:{self.port}"

    def worker_pids(self) -> list[int]:
        """The processes that answer requests: the spawned workers, or the server itself with one."""
        if self.workers == 1:
            return [self.pid]
        return worker_pids(self.pid)

    def answering_pids(self, expected: set[int], timeout_s: float = 60.0) -> set[int]:
        """Probe ``/readyz`` on fresh connections until each pid in ``expected`` has answered.

        A worker answers only once its model is loaded, so this tells when a replacement is serving.
        Returns every pid seen. Raises :class:`ServerStartError` after ``timeout_s``.
        """
        seen: set[int] = set()
        deadline = time.monotonic() + timeout_s
        while not expected <= seen:
            if time.monotonic() > deadline:
                raise ServerStartError(f"workers {sorted(expected - seen)} did not answer in {timeout_s} s")
            try:
                # A new connection each time: the kernel gives it to any worker waiting in accept().
                response = httpx.get(
                    self.url + "/readyz", headers={"Connection": "close"}, timeout=2.0, verify=self.verify
                )
            except httpx.TransportError:
                continue
            if response.status_code == 200 and WORKER_HEADER in response.headers:
                seen.add(int(response.headers[WORKER_HEADER]))
        return seen

    def start(self) -> Self:
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
        if self.tls is not None:
            command += ["--tls-cert", str(self.tls.cert), "--tls-key", str(self.tls.key)]
        command += self.extra_args
        env = dict(SINGLE_THREAD_ENV)
        if self.admin_key:
            env["RECDRILL_ADMIN_KEY"] = self.admin_key
        self._process = spawn(command, env, self.log_path)  # its group: stop/kill reach the workers
        self._wait_ready(self._process)
        return self

    def _wait_ready(self, process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + self.ready_timeout_s
        try:
            ready = wait_ready(process, self.url, self.log_path, deadline, verify=self.verify)
        except ServerStartError:
            self.stop()
            raise
        if not ready:
            self.stop()
            raise ServerStartError(f"server at {self.url} was not ready after {self.ready_timeout_s:.0f} s")
        if self.workers > 1:  # one worker answering is not all of them: wait for every one
            try:
                remaining = max(1.0, deadline - time.monotonic())
                pids = wait_for_workers(self.pid, self.workers, remaining)
                self.answering_pids(set(pids), max(1.0, deadline - time.monotonic()))
            except (ProcessGoneError, ServerStartError):
                self.stop()
                raise

    def stop(self, timeout_s: float = 10.0) -> None:
        """Ask the server to shut down; kill it if it has not within ``timeout_s``."""
        self._terminate(timeout_s, whole_group=True)

    def kill(self) -> None:
        """SIGKILL to the server and its workers, as a crash would: no shutdown code runs."""
        if self._process is not None and self._process.poll() is None:
            signal_group(self._process, signal.SIGKILL)
            self._process.wait()
