"""Run the server: in this process under uvicorn (``recdrill serve``), or as a child process
that tests and the demo start on a free loopback port and stop again.

Several workers (``--workers N``, N > 1) are uvicorn's multiprocess supervisor and N spawned worker
processes sharing one listening socket. The supervisor checks each worker every half second (a ping
answered by a thread in the worker, ``WORKER_HEALTHCHECK_S`` to answer) and starts a replacement for
one that died or stopped answering (so a worker SIGSTOPped for longer than that is killed and
replaced). The replacement loads the model before it accepts connections; until then the kernel
hands every new connection to the surviving workers.

What a client sees when a worker dies (SIGKILL, OOM kill, segfault):

* a request the worker had read and not answered: the connection closes without a response
  (httpx ``RemoteProtocolError: Server disconnected without sending a response``); one still unread
  in the worker's socket buffer: a reset (``ReadError: [Errno 104] Connection reset by peer``);
* an idle keep-alive connection to it: closed; httpx notices before reusing it and reconnects,
  so the next request succeeds (a request racing the close may see the errors above);
* new connections: accepted by the other workers; nothing fails.

So each failure is a transport error, never an HTTP status: an idempotent request
(``/v1/recommend``) can be retried once on a new connection; a feedback post must not be retried
blindly, because "connection closed" does not say whether its commit happened.

Every response of a served worker carries ``X-Recdrill-Worker: <pid>`` so that drills and tests can
tell which worker answered (and when a replacement starts answering).

HTTPS (``ServerTls``): uvicorn terminates TLS in each worker, which loads the certificate and key
itself, so ``--workers N`` serves HTTPS the same way. The probes here verify the server's
certificate against the caller's CA bundle (:func:`recdrill.security.tls.client_ssl_context`);
a certificate they cannot verify stops the start at once, since waiting would not change it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx

from recdrill.errors import ConfigError, RecdrillError
from recdrill.security.tls import client_ssl_context, is_verification_failure
from recdrill.serving.config import ServeConfig
from recdrill.serving.workers import WorkerError, wait_for_workers, worker_pids

SINGLE_THREAD_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
WORKER_HEADER = "X-Recdrill-Worker"
WORKER_HEALTHCHECK_S = 5  # uvicorn's default, named here because drills depend on it

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class WorkerHeader:
    """ASGI wrapper adding ``X-Recdrill-Worker: <pid>`` to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.header = (WORKER_HEADER.lower().encode(), str(os.getpid()).encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def tagged(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), self.header]
            await send(message)

        await self.app(scope, receive, tagged)


def worker_app_from_env() -> WorkerHeader:
    """The factory each uvicorn worker calls: the app of ``RECDRILL_*`` variables, pid-tagged."""
    from recdrill.serving.app import app_from_env  # a worker imports the app; the CLI need not

    return WorkerHeader(app_from_env())


@dataclass(frozen=True)
class ServerTls:
    """The PEM certificate (chain) and private key a server presents for HTTPS."""

    cert: Path
    key: Path


def run_server(
    config: ServeConfig,
    host: str,
    port: int,
    workers: int,
    admin_key: str | None,
    *,
    tls: ServerTls | None = None,
) -> None:
    """Serve until stopped, over HTTPS when ``tls`` is given. Several workers each get one BLAS
    thread (they would fight over cores) and share Prometheus values through a multiprocess
    directory."""
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
        "recdrill.serving.process:worker_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_S,
        log_level="warning",
        access_log=False,
        ssl_certfile=None if tls is None else str(tls.cert),
        ssl_keyfile=None if tls is None else str(tls.key),
    )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class ServerStartError(RecdrillError):
    """The server process exited or did not become ready in time."""


def spawn(command: list[str], env: Mapping[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """Start ``command`` with ``env`` added to this environment, its output appended to ``log_path``.

    It gets its own process group, so that a signal to the group reaches every process it starts
    (uvicorn's workers, Ray's raylet and replicas).
    """
    with log_path.open("ab") as log:
        return subprocess.Popen(
            command, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def wait_ready(
    process: subprocess.Popen[bytes],
    url: str,
    log_path: Path,
    deadline: float,
    *,
    name: str = "server",
    probe_timeout_s: float = 1.0,
    interval_s: float = 0.1,
    verify: ssl.SSLContext | bool = True,
) -> bool:
    """Probe ``url/readyz`` until it answers 200 (True) or ``time.monotonic()`` passes ``deadline``
    (False: the caller decides what to stop). Raises :class:`ServerStartError` naming the log's last
    line as soon as the process exits, or at once when an https ``url`` presents a certificate that
    ``verify`` (an SSL context, see :func:`client_ssl_context`) does not trust."""
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise ServerStartError(f"{name} exited with code {process.returncode}: {tail[0]}")
        try:
            if httpx.get(url + "/readyz", timeout=probe_timeout_s, verify=verify).status_code == 200:
                return True
        except httpx.TransportError as exc:
            if is_verification_failure(exc):
                raise ServerStartError(f"{name} at {url}: certificate not trusted: {exc}") from exc
        time.sleep(interval_s)
    return False


def signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    """``signum`` to the process group ``process`` leads (see :func:`spawn`); none if it is gone."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)


class ChildServer:
    """What :class:`ServerProcess` and the Ray one share: a child process started by ``start``,
    its pid, and use as a context manager that stops it on the way out."""

    _process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self._process is None:
            raise ServerStartError("server is not running")
        return self._process.pid

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self, timeout_s: float = 10.0) -> None:
        raise NotImplementedError

    def _terminate(self, timeout_s: float, *, whole_group: bool) -> None:
        """SIGTERM (to the whole group, or to the server alone so that it can stop what it started
        in order); SIGKILL to the group if it has not exited within ``timeout_s``."""
        if self._process is None or self._process.poll() is not None:
            return
        if whole_group:
            signal_group(self._process, signal.SIGTERM)
        else:
            self._process.terminate()
        try:
            self._process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            signal_group(self._process, signal.SIGKILL)
            self._process.wait()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


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
            except (WorkerError, ServerStartError):
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
