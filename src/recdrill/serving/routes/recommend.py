"""``POST /v1/recommend`` (reader): the user's next items through the tier chain.

:func:`serve_recommendation` is the whole request as a plain function of the worker's state: it
routes through the primary's chain (or the canary's, for a user in its share), keeps a primary
answer as the user's last-good list, counts fallbacks and skips, lets the canary observe the
answer, and hands it to the observers (drift, anomalies).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from fastapi import APIRouter, Depends
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from recdrill.security.access import require_role
from recdrill.security.roles import Role
from recdrill.serving.cache import CachedList
from recdrill.serving.generation import Generation
from recdrill.serving.observers import RecommendSeen
from recdrill.serving.router import RoutedAnswer
from recdrill.serving.schemas import RecommendRequest, RecommendResponse
from recdrill.serving.state import ServingState, StateDep
from recdrill.serving.tiers import TierRequest

HISTORY_LENGTH = 50  # the most recent items a tier sees of a history

router = APIRouter()


@router.post(
    "/v1/recommend",
    dependencies=[Depends(require_role(Role.READER))],
    response_model=RecommendResponse,
)
async def recommend(body: RecommendRequest, state: StateDep) -> JSONResponse:
    return JSONResponse(await serve_recommendation(state, body))


async def serve_recommendation(state: ServingState, body: RecommendRequest) -> dict[str, Any]:
    """The response body of one recommendation request (see the module docstring)."""
    started = time.perf_counter()
    metrics = state.metrics
    g = state.generation  # this request's model version, whatever a reload does meanwhile
    request, unknown, user_known = tier_request(g, body)
    arm = state.canary.choose(g, request)  # the primary's chain, or the canary's for this user
    if len(request.history) == 0:
        routed = RoutedAnswer(await g.popular.serve(request), g.popular.name)  # cold start
    else:
        routed = await arm.router.route(request)
        if routed.served_by != arm.router.tiers[0].name:
            metrics.fallbacks.inc()
        elif request.cache_key is not None:  # a primary answer: the user's new last-good list
            state.resources.remember(request.cache_key, CachedList(routed.answer.items, routed.answer.scores))
    metrics.served_by.labels(routed.served_by).inc()
    for tier, reason in routed.skipped:
        metrics.tier_skips.labels(tier, reason).inc()
    items = g.snapshot.item_ids[routed.answer.items].tolist()
    scores = routed.answer.scores.astype(float).tolist()
    latency_s = time.perf_counter() - started
    state.canary.observe(arm, g, request, routed, latency_s)
    if state.observers:
        seen = RecommendSeen(
            time.time(),
            request.history,
            len(body.history),
            unknown,
            user_known,
            routed.answer.items,
            routed.answer.scores,
            routed.served_by,
            arm.router.tiers[0].name,
            g.snapshot,
        )
        for observer in state.observers:
            observer.recommend(seen)
    return {
        "items": [{"item_id": i, "score": v} for i, v in zip(items, scores, strict=True)],
        "served_by": routed.served_by,
        "model_version": arm.version,
        "latency_ms": latency_s * 1000.0,
    }


def tier_request(g: Generation, body: RecommendRequest) -> tuple[TierRequest, int, bool | None]:
    """The request in dense ids, how many of the given history ids the catalogue lacks, and whether
    the user is known (None: anonymous). A known user's stored history comes first.

    Raises:
        RequestValidationError: 422 for a category the catalogue does not have.
    """
    given = g.snapshot.item_index(body.history) if body.history else np.zeros(0, dtype=np.int64)
    history = given[given >= 0]
    unknown = len(given) - len(history)
    user_known: bool | None = None
    if body.user_id is not None:
        user = g.snapshot.user_index(body.user_id)
        user_known = user >= 0
        if user_known:
            history = np.concatenate([g.snapshot.histories.row(user), history])
    allowed = None
    if body.category is not None:
        allowed = g.category_items.get(body.category)
        if allowed is None:
            found = g.snapshot.category_items(body.category)
            if found is None:
                raise RequestValidationError(
                    [
                        {
                            "type": "value_error",
                            "loc": ("body", "category"),
                            "msg": f"unknown category {body.category!r}: not in the served catalogue",
                            "input": body.category,
                        }
                    ]
                )
            allowed = g.category_items.setdefault(body.category, found)
    request = TierRequest(
        history[-HISTORY_LENGTH:].astype(np.int64), body.k, allowed, body.user_id, body.category
    )
    return request, unknown, user_known
