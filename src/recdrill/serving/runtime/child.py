"""What a server started as a child process needs, whichever backend serves: a free loopback port,
a process group of its own, readiness probes, and stopping it on every way out.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

from recdrill.errors import ServerStartError
from recdrill.security.tls import is_verification_failure


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


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
