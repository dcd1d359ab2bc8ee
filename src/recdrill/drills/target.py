"""What a drill acts on: a recdrill deployment's HTTP API, plus whatever else is within reach.

Every fault reaches the deployment through a :class:`DrillTarget`. Faults that work through the
API (model faults, reloads, side traffic) need only the URL and an operator/admin key; the others
need more, and say so in their ``needs`` (see ``recdrill.drills.catalogue``): worker pids for
process faults, the state folder for a locked feedback store, the served model folder for a
corrupted artifact, the shop's snapshot for drifted or cold-start traffic, the loopback proxy for
network faults, and ``local`` (the deployment shares this machine) for CPU and memory pressure.
``require`` turns a missing one into one clear error before anything is injected.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from recdrill.errors import RecdrillError
from recdrill.security.tls import client_ssl_context

if TYPE_CHECKING:
    from recdrill.data.snapshot import ShopSnapshot
    from recdrill.drills.process_faults import WorkerSource
    from recdrill.drills.replayer import ReplayPlan

API_KEY_HEADER = "X-API-Key"

NEED_HELP = {
    "workers": "the server's worker pids (recdrill drill run --server-pid PID, or no --target)",
    "state_dir": "the server's state folder on this machine (--state-dir)",
    "model_dir": "the served model's folder on this machine (--model-dir)",
    "snapshot": "the shop's snapshot (--model-dir, or --data)",
    "proxy": "the loopback proxy between traffic and server (the runner starts it for network faults)",
    "plan": "a replay plan of users and their true next items (--data)",
    "local": "a deployment on this machine (CPU and memory pressure act on this host)",
}


class FaultUnavailableError(RecdrillError):
    """A fault needs something of the target that this drill does not have."""


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
    proxy: Any = None  # a running ``LoopbackProxy`` (recdrill.drills.proxy) while network faults may act
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
