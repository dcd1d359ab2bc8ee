"""Model faults through the admin API: the primary (``ranker-*``) or the second tier
(``fallback-*``) gets slow, fails, or returns NaN scores.

The server holds each fault with a TTL (``ttl_s``): if the drill dies before it reverts one, the
server drops it by itself.
"""

from __future__ import annotations

from pydantic import Field

from recdrill.drills.faults.catalogue import FaultParams, FaultType, register
from recdrill.drills.faults.server_table import (
    ServerFault,
    active_server_faults,
    add_server_fault,
    remove_server_fault,
)
from recdrill.drills.target import DrillTarget


class ModelFaultParams(FaultParams):
    rate: float = Field(1.0, ge=0, le=1, description="share of model calls hit")
    ttl_s: float = Field(600.0, gt=0, le=3600, description="the server drops the fault after this")


class LatencyParams(ModelFaultParams):
    latency_ms: float = Field(250.0, gt=0, le=60_000, description="added to each call hit")


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
            # The primary failing sends traffic to the fallback; the fallback failing shows only
            # in its breaker (the primary still answers most requests).
            detected_by=frozenset({"fallback", "breaker-open"} if point == "ranker" else {"breaker-open"}),
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
