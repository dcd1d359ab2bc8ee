"""Traffic-shaped faults: a surge, a hot key, a storm of malformed requests, drifted requests, a
cold-start flood and bots poisoning feedback.

Each is a :class:`~recdrill.drills.faults.side_traffic.SideTraffic` that ``inject`` starts and ``revert``
stops (its summary, plus what the fault is about, goes into the journal). The traffic stops by
itself after ``ttl_s`` (the runner fills it with the step's duration and a margin), so a drill
that dies mid-step leaves nothing sending for long; ``leftovers`` names any of it still running.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
import numpy as np
from pydantic import Field

from recdrill.contract import MAX_HISTORY, MAX_K
from recdrill.data.snapshot import ShopSnapshot
from recdrill.drills.faults.catalogue import FaultParams, FaultType, Observations, register
from recdrill.drills.faults.side_traffic import Observer, RequestFactory, SideRequest, SideTraffic, running
from recdrill.drills.target import DrillTarget
from recdrill.errors import ConfigError

RECOMMEND = "/v1/recommend"
FEEDBACK = "/v1/feedback"
HUGE_BODY_BYTES = 512 * 1024  # far past any valid request, small enough to send a few per second
SMALL_CATEGORY_MIN_ITEMS = 3  # the drifted category's floor: a history of one item repeated is odd


class TrafficParams(FaultParams):
    rate: float = Field(20.0, gt=0, le=2000, description="requests per second")
    ttl_s: float = Field(600.0, gt=0, le=3600, description="the traffic stops by itself after this")


class SurgeParams(FaultParams):
    multiplier: float = Field(5.0, gt=1, le=50, description="total traffic as a multiple of base_rate")
    base_rate: float = Field(20.0, gt=0, le=2000, description="the drill's own rate (filled by the runner)")
    ttl_s: float = Field(600.0, gt=0, le=3600, description="the traffic stops by itself after this")


class HotKeyParams(TrafficParams):
    rate: float = Field(50.0, gt=0, le=2000, description="requests per second for the one user")
    user_id: str | None = Field(
        None, min_length=1, max_length=128, description="the hot user (default: the plan's first)"
    )


class DriftParams(TrafficParams):
    rate: float = Field(40.0, gt=0, le=2000, description="requests per second")
    shift: Literal["category", "price"] = Field(
        "category", description="histories from one small category, or from the top price decile"
    )


class PoisonParams(TrafficParams):
    item_id: str | None = Field(
        None, min_length=1, max_length=128, description="the item (default: a rarely bought one)"
    )
    bots: int = Field(3, ge=1, le=1000, description="bot accounts sharing the clicks")


@dataclass
class TrafficFault:
    """What revert needs: the traffic, and facts about the fault for the journal."""

    traffic: SideTraffic
    facts: dict[str, Any] = field(default_factory=dict)


def _start(
    target: DrillTarget,
    name: str,
    rate: float,
    ttl_s: float,
    make: RequestFactory,
    observe: Observer | None = None,
    **facts: Any,
) -> TrafficFault:
    traffic = SideTraffic(target, rate, make, name=name, ttl_s=ttl_s, observe=observe)
    return TrafficFault(traffic.start(), facts)


def _stop(_: DrillTarget, __: FaultParams, fault: TrafficFault) -> Observations:
    """Stop the traffic (again is fine) and report its counts with the fault's facts."""
    return {**fault.facts, **fault.traffic.stop()}


def _leftovers(target: DrillTarget) -> list[str]:
    """This module's side traffic still sending to ``target``."""
    ours = {"traffic-surge", "hot-key", "malformed-request-storm", "feature-drift",
            "cold-start-flood", "poisoned-feedback"}  # fmt: skip
    return [t.describe() for t in running() if t.name in ours and t.owner == target.base_url]


def _served_by(_: SideRequest, response: httpx.Response) -> str | None:
    """Tag an answer by the tier that served it, or by why it was refused."""
    if response.status_code == 429:
        return "shed:overloaded" if b"overloaded" in response.content else "shed:rate_limit"
    if response.is_success:
        return f"served_by:{response.json().get('served_by')}"
    return None


# --- traffic-surge, hot-key ---------------------------------------------------------------------


def inject_surge(target: DrillTarget, params: SurgeParams) -> TrafficFault:
    users = target.need_plan("traffic-surge").user_ids
    extra = (params.multiplier - 1.0) * params.base_rate

    def make(rng: np.random.Generator, _: int) -> SideRequest:
        return SideRequest("POST", RECOMMEND, {"user_id": users[int(rng.integers(len(users)))], "k": 10})

    return _start(target, "traffic-surge", extra, params.ttl_s, make, _served_by, extra_rate=extra)


def inject_hot_key(target: DrillTarget, params: HotKeyParams) -> TrafficFault:
    user = params.user_id
    if user is None:
        user = target.need_plan("hot-key").user_ids[0]
    body = {"user_id": user, "k": 10}
    return _start(
        target, "hot-key", params.rate, params.ttl_s,
        lambda rng, i: SideRequest("POST", RECOMMEND, body), _served_by, user_id=user,
    )  # fmt: skip


# --- malformed-request-storm --------------------------------------------------------------------


def _malformed(rng: np.random.Generator, i: int) -> SideRequest:
    """The i-th bad request, cycling through the kinds (each answer should be a JSON 4xx)."""
    user = f"storm-{int(rng.integers(1_000_000))}"
    as_text = {"content-type": "text/plain"}
    cases: list[tuple[str, Any, dict[str, str] | None]] = [
        ("invalid_json", b'{"user_id": "' + user.encode() + b'", "k": 10', None),
        ("wrong_types", {"user_id": 12345, "k": "ten", "history": "SKU-1"}, None),
        ("k_out_of_range", {"user_id": user, "k": int(rng.choice([0, -1, MAX_K + 1, 10**9]))}, None),
        ("oversize_history", {"user_id": user, "history": ["SKU-000001"] * (MAX_HISTORY + 1)}, None),
        ("unknown_fields", {"user_id": user, "k": 10, "debug": True, "admin": {"x": 1}}, None),
        ("wrong_content_type", json.dumps({"user_id": user, "k": 10}).encode(), as_text),
        ("huge_body", {"user_id": user, "pad": "x" * HUGE_BODY_BYTES}, None),
        ("deep_nesting", b"[" * 100_000 + b"]" * 100_000, None),
        ("not_an_object", [user, 10], None),
        ("unknown_category", {"user_id": user, "category": "no-such-category-" + user}, None),
        ("bad_feedback_event", {"user_id": user, "item_id": "SKU-1", "event": "teleport"}, None),
        ("negative_ts", {"user_id": user, "item_id": "SKU-1", "event": "click", "ts": -5.0}, None),
    ]
    label, body, headers = cases[i % len(cases)]
    path = FEEDBACK if label in ("bad_feedback_event", "negative_ts") else RECOMMEND
    if isinstance(body, bytes) and headers is None:
        headers = {"content-type": "application/json"}
    return SideRequest("POST", path, body, headers, label)


def _judge_malformed(request: SideRequest, response: httpx.Response) -> str:
    """``LABEL:STATUS``, prefixed ``bad:`` unless the answer is a 4xx with a JSON body."""
    status = response.status_code
    good = 400 <= status < 500
    if good:
        try:
            response.json()
        except ValueError:
            good = False
    return f"{'' if good else 'bad:'}{request.label}:{status}"


def inject_storm(target: DrillTarget, params: TrafficParams) -> TrafficFault:
    return _start(target, "malformed-request-storm", params.rate, params.ttl_s, _malformed, _judge_malformed)


def revert_storm(target: DrillTarget, params: TrafficParams, fault: TrafficFault) -> Observations:
    observations = _stop(target, params, fault)
    assert observations is not None
    tags: dict[str, int] = observations["tags"]
    observations["bad_answers"] = sum(n for tag, n in tags.items() if tag.startswith("bad:"))
    return observations


# --- feature-drift ------------------------------------------------------------------------------


def drift_items(snapshot: ShopSnapshot, shift: str) -> tuple[np.ndarray, str]:
    """Dense ids of the items drifted histories are drawn from, and what they are."""
    if shift == "category":
        sizes = np.bincount(snapshot.item_category[snapshot.item_category >= 0])
        eligible = np.flatnonzero(sizes >= SMALL_CATEGORY_MIN_ITEMS)
        if len(eligible) == 0:
            raise ConfigError(f"feature-drift: no category has {SMALL_CATEGORY_MIN_ITEMS} items or more")
        smallest = int(eligible[np.argmin(sizes[eligible])])
        return np.flatnonzero(snapshot.item_category == smallest), snapshot.category_names[smallest]
    if snapshot.item_price is None or np.isnan(snapshot.item_price).all():
        raise ConfigError("feature-drift: shift 'price' needs a snapshot with item prices")
    prices = snapshot.item_price
    floor = float(np.nanpercentile(prices, 90))
    return np.flatnonzero(prices >= floor), f"price >= {floor:.2f}"


def inject_drift(target: DrillTarget, params: DriftParams) -> TrafficFault:
    """Known users (so ``user_kind`` stays as in training) whose explicit history, appended to
    their stored one by the server, comes from the shifted items."""
    snapshot = target.need_snapshot("feature-drift")
    items, what = drift_items(snapshot, params.shift)
    item_ids = snapshot.item_ids[items].tolist()
    users = snapshot.user_ids[snapshot.histories.lengths > 0].tolist()

    def make(rng: np.random.Generator, _: int) -> SideRequest:
        picks = rng.integers(len(item_ids), size=int(rng.integers(5, 16)))
        history = [item_ids[p] for p in picks]
        return SideRequest("POST", RECOMMEND, {"user_id": users[int(rng.integers(len(users)))],
                                               "history": history, "k": 10})  # fmt: skip

    return _start(
        target, "feature-drift", params.rate, params.ttl_s, make, _served_by,
        shift=params.shift, drawn_from=what, items=len(item_ids),
    )  # fmt: skip


# --- cold-start-flood ---------------------------------------------------------------------------


def _cold_start(rng: np.random.Generator, i: int) -> SideRequest:
    """A user and items no catalogue holds (random suffixes: a real shop's next ids are unknown)."""
    tag = int(rng.integers(1 << 40))
    history = [f"new-item-{tag:x}-{j}" for j in range(int(rng.integers(1, 6)))]
    return SideRequest("POST", RECOMMEND, {"user_id": f"new-user-{tag:x}", "history": history, "k": 10})


def inject_cold_start(target: DrillTarget, params: TrafficParams) -> TrafficFault:
    return _start(target, "cold-start-flood", params.rate, params.ttl_s, _cold_start, _served_by)


# --- poisoned-feedback --------------------------------------------------------------------------


def rarely_bought(snapshot: ShopSnapshot) -> str:
    """The item with the fewest training interactions among those with any (ties: the first)."""
    counts = snapshot.item_counts.astype(np.float64)
    counts[counts <= 0] = np.inf
    if not np.isfinite(counts).any():
        raise ConfigError("poisoned-feedback: the snapshot has no item with interactions")
    return str(snapshot.item_ids[int(np.argmin(counts))])


def inject_poison(target: DrillTarget, params: PoisonParams) -> TrafficFault:
    item = params.item_id
    if item is None:
        item = rarely_bought(target.need_snapshot("poisoned-feedback"))
    bots = [f"bot-{j:03d}" for j in range(params.bots)]

    def make(rng: np.random.Generator, i: int) -> SideRequest:
        return SideRequest(
            "POST", FEEDBACK, {"user_id": bots[i % len(bots)], "item_id": item, "event": "click"}
        )

    return _start(
        target, "poisoned-feedback", params.rate, params.ttl_s, make, item_id=item, bots=params.bots
    )


def revert_poison(target: DrillTarget, params: PoisonParams, fault: TrafficFault) -> Observations:
    observations = _stop(target, params, fault)
    assert observations is not None
    observations["acknowledged"] = observations["ok"]  # committed clicks: what the monitor judges
    return observations


# --- the catalogue ------------------------------------------------------------------------------

register(
    FaultType(
        name="traffic-surge",
        kind="infrastructure",
        summary="(multiplier - 1) x base_rate extra /v1/recommend requests for the plan's users",
        params=SurgeParams,
        inject=inject_surge,
        revert=_stop,
        needs=frozenset({"plan"}),
        effect="admission control sheds the excess with fast 429s; no 5xx",
        detected_by=frozenset({"shedding"}),
        leftovers=_leftovers,
    )
)
register(
    FaultType(
        name="hot-key",
        kind="infrastructure",
        summary="one user hammering /v1/recommend (user_id, or the plan's first user)",
        params=HotKeyParams,
        inject=inject_hot_key,
        revert=_stop,
        effect="served like any user until admission control or the key's rate limit sheds it: 429, no 5xx",
        detected_by=frozenset({"shedding"}),
        leftovers=_leftovers,
    )
)
register(
    FaultType(
        name="malformed-request-storm",
        kind="infrastructure",
        summary="invalid JSON, wrong types, k out of range, oversize history, unknown fields, "
        "wrong content type, huge and deeply nested bodies",
        params=TrafficParams,
        inject=inject_storm,
        revert=revert_storm,
        effect="every answer is a 4xx with a JSON body (bad_answers counts the others: must be 0)",
        detected_by=frozenset({"server-errors"}),
        leftovers=_leftovers,
    )
)
register(
    FaultType(
        name="feature-drift",
        kind="ml",
        summary="known users whose request histories come from one small category or the top price decile",
        params=DriftParams,
        inject=inject_drift,
        revert=_stop,
        needs=frozenset({"snapshot"}),
        effect="the live drift monitor flags history_category (or history_log_price): "
        "recdrill_drift_detected{feature=...} 1",
        detected_by=frozenset({"drift"}),
        leftovers=_leftovers,
    )
)
register(
    FaultType(
        name="cold-start-flood",
        kind="ml",
        summary="unknown users with histories of unknown items",
        params=TrafficParams,
        inject=inject_cold_start,
        revert=_stop,
        effect="answered by the popularity tier (served_by popular); the drift monitor's user_kind "
        "and unknown_items features move",
        detected_by=frozenset({"drift"}),
        leftovers=_leftovers,
    )
)
register(
    FaultType(
        name="poisoned-feedback",
        kind="ml",
        summary="bot accounts posting click feedback on one item (item_id, or a rarely bought one "
        "of the snapshot)",
        params=PoisonParams,
        inject=inject_poison,
        revert=revert_poison,
        effect="the anomaly watch flags the bots (recdrill_anomalies_total{kind=user_burst}) and, "
        "with 5 min of feedback as reference, the item (kind=item_click_spike); flagged clicks "
        "are quarantined",
        detected_by=frozenset({"anomaly", "feedback-quarantined"}),
        leftovers=_leftovers,
    )
)
