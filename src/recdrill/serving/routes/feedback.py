"""``POST /v1/feedback`` (writer): a user action, acknowledged only once committed to disk; and
``POST /admin/feedback/lookup`` (operator): which client event ids the log holds."""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import JSONResponse

from recdrill.errors import FeedbackLogError
from recdrill.security.access import require_role
from recdrill.security.roles import Role
from recdrill.serving.event_time import check_event_time, event_time_window
from recdrill.serving.feedback.schema import FeedbackEvent
from recdrill.serving.observers import FeedbackSeen
from recdrill.serving.schemas import (
    FeedbackLookupRequest,
    FeedbackLookupResponse,
    FeedbackRequest,
    FeedbackResponse,
)
from recdrill.serving.state import ServingState, StateDep

router = APIRouter()


@router.post(
    "/v1/feedback", dependencies=[Depends(require_role(Role.WRITER))], response_model=FeedbackResponse
)
async def feedback(body: FeedbackRequest, state: StateDep) -> JSONResponse:
    config = state.config
    check_event_time(
        body.ts, event_time_window(time.time(), config.feedback_past_s, config.feedback_future_s)
    )
    event = FeedbackEvent(body.user_id, body.item_id, body.event, body.ts, body.event_id)
    try:
        row = await state.feedback.submit(event)  # returns after the group commit, holding no thread
    except FeedbackLogError as exc:
        # Not committed, so not acknowledged: the client may retry (safely, with an event_id).
        raise HTTPException(503, detail=f"feedback not recorded: {_client_safe(exc, state)}") from exc
    state.metrics.feedback.labels(body.event).inc()
    state.canary.feedback(body.user_id, body.item_id, body.event)  # a label for the canary judge
    for observer in state.observers:
        observer.feedback(FeedbackSeen(time.time(), body.item_id, body.event, body.price, row))
    return JSONResponse({"status": "committed", "id": row})


@router.post(
    "/admin/feedback/lookup",
    dependencies=[Depends(require_role(Role.OPERATOR))],
    response_model=FeedbackLookupResponse,
)
async def lookup_feedback(body: FeedbackLookupRequest, state: StateDep) -> JSONResponse:
    """Which of these client event ids are committed: a drill's proof that no acknowledged event
    was lost. ``asked`` counts distinct ids; ``missing`` keeps the order they were given in."""
    try:
        present = await asyncio.to_thread(state.feedback.present, body.event_ids)
    except FeedbackLogError as exc:
        raise HTTPException(503, detail=f"feedback log not readable: {_client_safe(exc, state)}") from exc
    asked = list(dict.fromkeys(body.event_ids))
    missing = [event_id for event_id in asked if event_id not in present]
    return JSONResponse({"asked": len(asked), "present": len(asked) - len(missing), "missing": missing})


def _client_safe(exc: FeedbackLogError, state: ServingState) -> str:
    """What went wrong, without the server's file path (a client has no business knowing it)."""
    return str(exc).removeprefix(f"{state.feedback.path}: ")
