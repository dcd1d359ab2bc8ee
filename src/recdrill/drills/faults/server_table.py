"""The server's fault table, reached through the admin API: what every fault held there shares.

Model, cache and feedback-store faults live in the server's own table (``POST /admin/faults``), each
with a TTL, so a drill that dies before it reverts one leaves nothing behind for long: the server
drops it by itself. This module adds, removes and lists those entries.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from recdrill.drills.faults.catalogue import Observations
from recdrill.drills.target import DrillTarget
from recdrill.errors import FaultRefusedError


@dataclass(frozen=True)
class ServerFault:
    id: str


def add_server_fault(target: DrillTarget, body: dict[str, object]) -> ServerFault:
    """POST ``/admin/faults``; the server's fault id. Shared by every fault held in the server's table."""
    with target.admin() as admin:
        response = admin.post("/admin/faults", json=body)
    if response.status_code != 201:
        raise FaultRefusedError(
            f"target refused fault {body.get('point')}/{body.get('kind')}: "
            f"HTTP {response.status_code} {response.text[:200]}"
        )
    return ServerFault(str(response.json()["id"]))


def remove_server_fault(target: DrillTarget, _: object, fault: ServerFault) -> Observations:
    """DELETE the fault; a 404 means it already expired, which is reverted too."""
    with target.admin() as admin:
        response = admin.delete(f"/admin/faults/{fault.id}")
    if response.status_code not in (200, 404):
        raise FaultRefusedError(f"could not remove fault {fault.id}: HTTP {response.status_code}")
    return None


def active_server_faults(target: DrillTarget) -> list[str]:
    """Faults the server still holds, as ``point/kind (id)``; unreachable servers say so."""
    try:
        with target.admin(timeout_s=5.0) as admin:
            response = admin.get("/admin/faults")
    except httpx.HTTPError as exc:
        return [f"cannot list the server's faults: {type(exc).__name__}"]
    if response.status_code != 200:
        return [f"cannot list the server's faults: HTTP {response.status_code}"]
    return [f"{f['point']}/{f['kind']} ({f['id']})" for f in response.json()]


def server_faults_at(target: DrillTarget, point: str, kind: str) -> list[str]:
    """The server's active ``point/kind`` faults (and any failure to list them)."""
    return [f for f in active_server_faults(target) if f.startswith((f"{point}/{kind} ", "cannot "))]
