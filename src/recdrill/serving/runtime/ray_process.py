"""``recdrill serve --backend ray`` as a child process on a free loopback port, for tests, benchmarks
and the demo: started, awaited on ``/readyz``, and stopped so that Ray tears itself down."""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from typing import Self

from recdrill.errors import ServerStartError
from recdrill.procs import command_line, descendants
from recdrill.serving.runtime.child import ChildServer, free_port, spawn, wait_ready
from recdrill.serving.runtime.ray_backend import REPLICA_ENV, RayOptions


class RayServerProcess(ChildServer):
    """A Ray Serve deployment of the recdrill app in its own process (with its own local Ray cluster).

    Stopping sends SIGTERM to that process only: it then shuts Serve and Ray down in order, which
    a signal to the whole process group would race. Ray's start takes seconds (``ready_timeout_s``).

    Example (not run here: it starts Ray)::

        with RayServerProcess(model_dir, state_dir, RayOptions(max_replicas=1)) as server:
            httpx.get(server.url + "/readyz")
    """

    def __init__(
        self,
        model_dir: str | Path,
        state_dir: str | Path,
        options: RayOptions | None = None,
        *,
        admin_key: str | None = None,
        ready_timeout_s: float = 180.0,
        log_path: str | Path | None = None,
    ) -> None:
        self.model_dir = Path(model_dir)
        self.state_dir = Path(state_dir)
        base = options or RayOptions()
        self.options = dataclasses.replace(base, http_port=free_port(base.http_host))
        self.admin_key = admin_key
        self.ready_timeout_s = ready_timeout_s
        self.log_path = Path(log_path) if log_path else self.state_dir / "server.log"
        self.start_s = 0.0

    @property
    def url(self) -> str:
        return f"http://{self.options.http_host}:{self.options.http_port}"

    def worker_pids(self) -> list[int]:
        """The replicas' processes (what a drill kills or pauses): descendants of this server."""
        return [pid for pid in descendants(self.pid) if _is_replica(pid)]

    def command(self) -> list[str]:
        """What runs in the child: ``recdrill serve --backend ray`` with these options."""
        o = self.options
        return [
            sys.executable, "-m", "recdrill", "serve", "--backend", "ray",
            "--model", str(self.model_dir), "--state-dir", str(self.state_dir),
            "--host", o.http_host, "--port", str(o.http_port),
            "--min-replicas", str(o.min_replicas), "--max-replicas", str(o.max_replicas),
            "--target-ongoing", str(o.target_ongoing_requests), "--max-queued", str(o.max_queued_requests),
            "--cpus-per-replica", str(o.cpus_per_replica), "--ray-ingress", o.ingress,
        ]  # fmt: skip

    def start(self) -> Self:
        started = time.monotonic()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        env = dict(REPLICA_ENV)
        if self.admin_key:
            env["RECDRILL_ADMIN_KEY"] = self.admin_key
        self._process = spawn(self.command(), env, self.log_path)
        deadline = started + self.ready_timeout_s
        if wait_ready(
            self._process,
            self.url,
            self.log_path,
            deadline,
            name="Ray server",
            probe_timeout_s=2.0,
            interval_s=0.2,
        ):
            self.start_s = time.monotonic() - started
            return self
        self.stop()
        raise ServerStartError(f"Ray server at {self.url} was not ready after {self.ready_timeout_s:.0f} s")

    def stop(self, timeout_s: float = 60.0) -> None:
        """SIGTERM, so the server shuts Ray down; SIGKILL to its process group after ``timeout_s``."""
        self._terminate(timeout_s, whole_group=False)


def _is_replica(pid: int) -> bool:
    """Ray names a replica's process ``ray::ServeReplica:<app>:<deployment>`` (its process title)."""
    return " ".join(command_line(pid)).startswith("ray::ServeReplica")
