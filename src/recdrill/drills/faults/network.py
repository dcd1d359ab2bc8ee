"""Network faults between traffic and server: latency, dropped requests and resets.

They act on the loopback proxy the drill runner puts between its traffic and the server
(``target.proxy``, a running :class:`recdrill.drills.faults.proxy.LoopbackProxy`; ``needs: proxy``).
Injecting adds a toxic to the proxy; reverting removes it and reports what it did (requests
dropped or reset, chunks delayed). Only traffic through ``target.traffic_url`` is affected: the
admin API and health probes go straight to the server.

The proxy lives in the drill's own process, so a toxic cannot outlive the drill; it also ends by
itself after ``ttl_s``.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import Field

from recdrill.drills.faults.catalogue import FaultParams, FaultType, Observations, register
from recdrill.drills.target import DrillTarget


class NetworkParams(FaultParams):
    ttl_s: float = Field(600.0, gt=0, le=3600, description="the proxy drops the toxic after this")


class LatencyParams(NetworkParams):
    latency_ms: float = Field(200.0, gt=0, le=60_000, description="added to each response chunk")
    jitter_ms: float = Field(0.0, ge=0, le=60_000, description="uniform +- spread around latency_ms")


class RateParams(NetworkParams):
    rate: float = Field(1.0, ge=0, le=1, description="share of requests hit")


@dataclass(frozen=True)
class Toxic:
    """A toxic this fault added to the target's proxy."""

    id: str
    kind: str


def _add(target: DrillTarget, name: str, kind: str, params: NetworkParams) -> Toxic:
    proxy = target.need_proxy(name)
    values = params.model_dump(exclude={"ttl_s"})
    return Toxic(proxy.add_toxic(kind, ttl_s=params.ttl_s, **values), kind)


def _remove(target: DrillTarget, _: NetworkParams, toxic: Toxic) -> Observations:
    """Remove the toxic (a second call, or an expired toxic, removes nothing) and report its counts."""
    if target.proxy is None:  # the runner stopped the proxy: the toxic went with it
        return {"toxic": toxic.id, "removed": False}
    removed = target.proxy.remove_toxic(toxic.id)
    stats = target.proxy.toxic(toxic.id) or {}
    observed = {"toxic": toxic.id, "removed": removed, "seen": stats.get("seen", 0)}
    observed[{"latency": "delayed_chunks", "drop": "dropped", "reset": "reset"}[toxic.kind]] = stats.get(
        "hits", 0
    )
    return observed


def inject_latency(target: DrillTarget, params: LatencyParams) -> Toxic:
    return _add(target, "network-latency", "latency", params)


def inject_drop(target: DrillTarget, params: RateParams) -> Toxic:
    return _add(target, "network-drop", "drop", params)


def inject_reset(target: DrillTarget, params: RateParams) -> Toxic:
    return _add(target, "network-reset", "reset", params)


def latency_leftovers(target: DrillTarget) -> list[str]:
    return _active(target, "latency")


def drop_leftovers(target: DrillTarget) -> list[str]:
    return _active(target, "drop")


def reset_leftovers(target: DrillTarget) -> list[str]:
    return _active(target, "reset")


def _active(target: DrillTarget, kind: str) -> list[str]:
    """The proxy's active toxics of ``kind`` (whoever added them): the cleanliness check reads these."""
    if target.proxy is None:
        return []
    return [f"proxy toxic {t['id']}" for t in target.proxy.toxics() if t["kind"] == kind]


register(
    FaultType(
        name="network-latency",
        kind="infrastructure",
        summary="the loopback proxy holds every response for latency_ms (+- jitter_ms)",
        params=LatencyParams,
        inject=inject_latency,
        revert=_remove,
        needs=frozenset({"proxy"}),
        effect="client-side latency rises by latency_ms; the server's own latency stays flat",
        detected_by=frozenset(),
        leftovers=latency_leftovers,
    )
)
register(
    FaultType(
        name="network-drop",
        kind="infrastructure",
        summary="the loopback proxy swallows a share of requests and closes their connection",
        params=RateParams,
        inject=inject_drop,
        revert=_remove,
        needs=frozenset({"proxy"}),
        effect="that share fails with 'server disconnected without a response'; a retry succeeds",
        detected_by=frozenset(),
        leftovers=drop_leftovers,
    )
)
register(
    FaultType(
        name="network-reset",
        kind="infrastructure",
        summary="the loopback proxy resets (TCP RST) the connection of a share of requests",
        params=RateParams,
        inject=inject_reset,
        revert=_remove,
        needs=frozenset({"proxy"}),
        effect="that share fails with 'connection reset by peer'; a retry succeeds",
        detected_by=frozenset(),
        leftovers=reset_leftovers,
    )
)
