"""Model faults through the admin API: the primary (``ranker-*``) or the second tier
(``fallback-*``) gets slow, fails, or returns NaN scores.

The server holds each fault with a TTL (``ttl_s``): if the drill dies before it reverts one, the
server drops it by itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from pydantic import Field

from recdrill.drills.catalogue import FaultParams, FaultType, Observations, register
from recdrill.drills.target import DrillTarget
from recdrill.errors import RecdrillError


class FaultRefusedError(RecdrillError):
    """The target refused to inject a fault (bad key, unknown point, not a recdrill server)."""


class ModelFaultParams(FaultParams):
    rate: float = Field(1.0, ge=0, le=1, description="share of model calls hit")
    ttl_s: float = Field(600.0, gt=0, le=3600, description="the server drops the fault after this")


class LatencyParams(ModelFaultParams):
    latency_ms: float = Field(250.0, gt=0, le=60_000, description="added to each call hit")


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


def _model_fault(
    point: str, kind: str, params_type: type[ModelFaultParams], summary: str, effect: str
) -> None:
    def inject(target: DrillTarget, params: ModelFaultParams) -> ServerFault:
        body: dict[str, object] = {"point": point, "kind": kind, "rate": params.rate, "ttl_s": params.ttl_s}
        if isinstance(params, LatencyParams):
            body["latency_ms"] = params.latency_ms
        return add_server_fault(target, body)

    name = f"{'ranker' if point == 'ranker' else 'fallback'}-{kind}"
    register(
        FaultType(
            name=name,
            kind="ml",
            summary=summary,
            params=params_type,
            inject=inject,
            revert=remove_server_fault,
            effect=effect,
            leftovers=active_server_faults,
        )
    )


_model_fault(
    "ranker",
    "latency",
    LatencyParams,
    "the primary model answers late",
    "past the tier's deadline share the chain skips to the fallback: failover, quality may drop",
)
_model_fault(
    "ranker",
    "error",
    ModelFaultParams,
    "the primary model raises on a share of calls",
    "failed calls fall over to the next tier; the breaker opens at its error threshold",
)
_model_fault(
    "ranker",
    "nan",
    ModelFaultParams,
    "the primary model returns NaN scores",
    "the chain refuses non-finite scores and skips the tier (tier_skips{reason=nan})",
)
_model_fault(
    "fallback",
    "latency",
    LatencyParams,
    "the second-tier model answers late",
    "matters only while the primary fails too: the chain falls to cache and popularity",
)
_model_fault(
    "fallback",
    "error",
    ModelFaultParams,
    "the second-tier model raises on a share of calls",
    "matters only while the primary fails too",
)
_model_fault(
    "fallback",
    "nan",
    ModelFaultParams,
    "the second-tier model returns NaN scores",
    "matters only while the primary fails too",
)
