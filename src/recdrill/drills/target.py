"""What a drill acts on: a recdrill deployment's HTTP API, plus whatever else is within reach.

Every fault reaches the deployment through a :class:`DrillTarget`. Faults that work through the
API (model faults, reloads, side traffic) need only the URL and an operator/admin key; the others
need more, and say so in their ``needs`` (see ``recdrill.drills.faults.catalogue``): worker pids for
process faults, the state folder for a locked feedback store, the served model folder for a
corrupted artifact, the shop's snapshot for drifted or cold-start traffic, the loopback proxy for
network faults, and ``local`` (the deployment shares this machine) for CPU and memory pressure.
``require`` turns a missing one into one clear error before anything is injected.
"""

from __future__ import annotations

import re
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

import httpx

from recdrill.contract import API_KEY_HEADER, WORKER_HEADER
from recdrill.errors import FaultUnavailableError
from recdrill.procs import worker_pids
from recdrill.security.tls import client_ssl_context

if TYPE_CHECKING:
    from recdrill.data.snapshot import ShopSnapshot
    from recdrill.drills.faults.proxy import LoopbackProxy
    from recdrill.drills.replayer import ReplayPlan

CONVERGE_S = 30.0  # followers poll the pointer file every second, then load: generous on a busy host
RELOAD_TIMEOUT_S = 120.0
_REGISTRY_VERSION = re.compile(r"v\d+")
_T = TypeVar("_T")

NEED_HELP = {
    "workers": "the server's worker pids (recdrill drill run --server-pid PID, or no --target)",
    "state_dir": "the server's state folder on this machine (--state-dir)",
    "model_dir": "the served model's folder on this machine (--model-dir)",
    "snapshot": "the shop's snapshot (--model-dir, or --data)",
    "proxy": "the loopback proxy between traffic and server (the runner starts it for network faults)",
    "plan": "a replay plan of users and their true next items (--data)",
    "local": "a deployment on this machine (CPU and memory pressure act on this host)",
}


class WorkerSource(Protocol):
    """Anything that can list the pids of a server's workers (``ServerProcess`` does)."""

    def worker_pids(self) -> list[int]: ...


@dataclass(frozen=True)
class LocalServer:
    """A ``recdrill serve --workers N`` running on this machine, named by its supervisor's pid."""

    pid: int

    def worker_pids(self) -> list[int]:
        return worker_pids(self.pid)


@dataclass
class DrillTarget:
    """A deployment and what the drill can reach of it. Only ``base_url`` and ``admin_key`` are
    always needed; the rest is None where the drill does not have it."""

    base_url: str
    admin_key: str
    verify: ssl.SSLContext = field(default_factory=client_ssl_context)
    plan: ReplayPlan | None = None
    workers: WorkerSource | None = None
    state_dir: Path | None = None
    model_dir: Path | None = None
    snapshot: ShopSnapshot | None = None
    local: bool = False
    proxy: LoopbackProxy | None = None  # running while network faults may act
    scratch_dir: Path | None = None  # where faults may write files (a corrupted artifact copy)
    # User traffic (recommend and feedback requests, judged or not) stands for many shoppers, not one
    # caller: sent under the admin key it would hit that key's own rate limit. ``traffic_key`` names a
    # reader/writer key for it; ``anonymous_traffic`` sends it with no key (a server without a key
    # store leaves those endpoints open); neither: the admin key.
    traffic_key: str | None = None
    anonymous_traffic: bool = False

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")

    @property
    def traffic_url(self) -> str:
        """Where user traffic goes: through the proxy while there is one, else straight to the server."""
        return self.proxy.url if self.proxy is not None else self.base_url

    @property
    def headers(self) -> dict[str, str]:
        return {API_KEY_HEADER: self.admin_key}

    @property
    def traffic_headers(self) -> dict[str, str]:
        """Headers of user traffic (see ``traffic_key``)."""
        if self.anonymous_traffic:
            return {}
        return {API_KEY_HEADER: self.traffic_key} if self.traffic_key else self.headers

    def admin(self, timeout_s: float = 10.0) -> httpx.Client:
        """A client for the admin API, straight to the server (never through the proxy)."""
        return httpx.Client(
            base_url=self.base_url, headers=self.headers, timeout=timeout_s, verify=self.verify
        )

    def require(self, fault: str, *needs: str) -> None:
        """Raise :class:`FaultUnavailableError` naming the first of ``needs`` this target lacks."""
        have = {
            "workers": self.workers is not None,
            "state_dir": self.state_dir is not None,
            "model_dir": self.model_dir is not None,
            "snapshot": self.snapshot is not None,
            "proxy": self.proxy is not None,
            "plan": self.plan is not None,
            "local": self.local,
        }
        for need in needs:
            if not have[need]:
                raise FaultUnavailableError(f"fault {fault!r} needs {NEED_HELP[need]}")

    # Typed accessors: a fault takes what it needs through these, so a missing one is one clear
    # error (not an ``assert``), and the value comes back typed.
    def need_workers(self, fault: str) -> WorkerSource:
        return _needed(fault, "workers", self.workers)

    def need_state_dir(self, fault: str) -> Path:
        return _needed(fault, "state_dir", self.state_dir)

    def need_model_dir(self, fault: str) -> Path:
        return _needed(fault, "model_dir", self.model_dir)

    def need_snapshot(self, fault: str) -> ShopSnapshot:
        return _needed(fault, "snapshot", self.snapshot)

    def need_plan(self, fault: str) -> ReplayPlan:
        return _needed(fault, "plan", self.plan)

    def need_proxy(self, fault: str) -> LoopbackProxy:
        return _needed(fault, "proxy", self.proxy)

    def need_local(self, fault: str) -> None:
        self.require(fault, "local")

    def model_version(self) -> str | None:
        """The version ``/readyz`` says is served, or None when the server does not answer."""
        try:
            with self.admin(timeout_s=5.0) as client:
                response = client.get("/readyz")
        except httpx.HTTPError:
            return None
        if response.status_code != 200:
            return None
        version = response.json().get("model_version")
        return None if version is None else str(version)

    def served_versions(self, probes: int = 24) -> dict[str, str]:
        """``{worker pid: version}`` from ``/readyz`` on fresh connections, which the kernel hands
        to any worker; stops once every known worker answered (``"?"``: a server without the
        worker header, such as a Ray Serve proxy)."""
        expected = {str(p) for p in self.workers.worker_pids()} if self.workers is not None else set()
        seen: dict[str, str] = {}
        for _ in range(max(probes, 4 * len(expected))):
            try:
                url, close = self.base_url + "/readyz", {"Connection": "close"}
                response = httpx.get(url, headers=close, timeout=5.0, verify=self.verify)
                version = response.json().get("model_version") if response.status_code == 200 else None
            except (httpx.HTTPError, ValueError):
                continue
            if version is not None:
                seen[response.headers.get(WORKER_HEADER, "?")] = str(version)
            if expected and expected <= seen.keys():
                break
        return seen

    def wait_converged(self, version: str, timeout_s: float = CONVERGE_S) -> dict[str, str]:
        """Poll until every worker serves ``version`` (or the timeout); the last probe's answer.
        With known workers each must have answered: a follower still loading answers no probe,
        and one worker's word is not convergence."""
        expected = {str(p) for p in self.workers.worker_pids()} if self.workers is not None else set()
        deadline = time.monotonic() + timeout_s
        while True:
            seen = self.served_versions()
            whole = expected <= seen.keys()
            if (seen and whole and set(seen.values()) == {version}) or time.monotonic() > deadline:
                return seen
            time.sleep(0.25)

    def reload(self, body: dict[str, str] | None) -> httpx.Response:
        """``POST /admin/models/reload`` (``None``: the configured model)."""
        with self.admin(timeout_s=RELOAD_TIMEOUT_S) as admin:
            return admin.post("/admin/models/reload", json=body)

    def restore_model(self, version: str) -> dict[str, str]:
        """Serve ``version`` again on every worker: by registry version when it is one, else the
        configured model (a reload without a body), else the target's model folder. Returns what
        each worker serves afterwards."""
        bodies: list[dict[str, str] | None] = (
            [{"version": version}] if _REGISTRY_VERSION.fullmatch(version) else []
        )
        bodies.append(None)
        if self.model_dir is not None:
            bodies.append({"model_dir": str(self.model_dir)})
        seen: dict[str, str] = {}
        for body in bodies:
            if self.reload(body).status_code == 200:
                seen = self.wait_converged(version)
                if set(seen.values()) == {version}:
                    break
        return seen


def _needed(fault: str, need: str, value: _T | None) -> _T:
    if value is None:
        raise FaultUnavailableError(f"fault {fault!r} needs {NEED_HELP[need]}")
    return value
