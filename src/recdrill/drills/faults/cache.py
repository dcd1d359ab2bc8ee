"""Last-good cache faults through the admin API: the cache is emptied, or stale in front of the model.

``cache-empty``: lookups miss and nothing is stored, so a user whose models fail falls past the
cache to category or global best-sellers. ``cache-stale``: a misconfigured cache in front of the
model answers first for every user it holds, so their answers ignore what they did since (quality
drops while every request is still a 200). Both live in the server's fault table with a TTL, like
the model faults (``faults.model``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import Field

from recdrill.drills.faults.catalogue import FaultParams, FaultType, register
from recdrill.drills.faults.server_table import (
    ServerFault,
    add_server_fault,
    remove_server_fault,
    server_faults_at,
)
from recdrill.drills.target import DrillTarget

POINT = "cache"


class CacheFaultParams(FaultParams):
    rate: float = Field(1.0, ge=0, le=1, description="share of cache lookups (and stores) hit")
    ttl_s: float = Field(600.0, gt=0, le=3600, description="the server drops the fault after this")


def _inject(kind: str) -> Callable[[DrillTarget, Any], ServerFault]:
    def inject(target: DrillTarget, params: CacheFaultParams) -> ServerFault:
        body: dict[str, object] = {"point": POINT, "kind": kind, "rate": params.rate, "ttl_s": params.ttl_s}
        return add_server_fault(target, body)

    return inject


def _leftovers(kind: str) -> Callable[[DrillTarget], list[str]]:
    def leftovers(target: DrillTarget) -> list[str]:
        return server_faults_at(target, POINT, kind)

    return leftovers


register(
    FaultType(
        name="cache-empty",
        kind="ml",
        summary="the last-good cache is emptied: lookups miss and nothing is stored",
        params=CacheFaultParams,
        inject=_inject("empty"),
        revert=remove_server_fault,
        effect="with the models failing too, answers fall past the cache to category or popularity",
        detected_by=frozenset(),
        leftovers=_leftovers("empty"),
    )
)
register(
    FaultType(
        name="cache-stale",
        kind="ml",
        summary="a stale cache in front of the model: users it holds get their old list first",
        params=CacheFaultParams,
        inject=_inject("stale"),
        revert=remove_server_fault,
        effect="served_by=cache for users answered before, even with a healthy primary: quality drops",
        detected_by=frozenset(),
        leftovers=_leftovers("stale"),
    )
)
