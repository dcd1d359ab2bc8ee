"""``POST /v1/feedback`` (writer): a user action, acknowledged only once committed to disk; and
``POST /admin/feedback/lookup`` (operator): which client event ids the log holds."""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter, Depends, HTTPException
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from recdrill.errors import FeedbackLogError
from recdrill.security.access import require_role
from recdrill.security.roles import Role
from recdrill.serving.feedback.schema import FeedbackEvent
from recdrill.serving.observers import FeedbackSeen
from recdrill.serving.schemas import FeedbackLookupRequest, FeedbackRequest
from recdrill.serving.state import ServingState, StateDep

router = APIRouter()


@router.post("/v1/feedback", dependencies=[Depends(require_role(Role.WRITER))])
async def feedback(body: FeedbackRequest, state: StateDep) -> JSONResponse:
    check_event_time(body.ts, time.time(), state.config.feedback_past_s, state.config.feedback_future_s)
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


@router.post("/admin/feedback/lookup", dependencies=[Depends(require_role(Role.OPERATOR))])
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


def check_event_time(ts: float, now: float, past_s: float, future_s: float) -> None:
    """Refuse (422 naming ``ts``) an event time outside ``[now - past_s, now + future_s]``: a client
    clock far off, or a value sent to push the monitors' clocks (which judge receive time anyway).

    >>> check_event_time(1_000.0, now=1_000.5, past_s=60, future_s=5)
    >>> check_event_time(2_000.0, now=1_000.0, past_s=60, future_s=5)
    Traceback (most recent call last):
    fastapi.exceptions.RequestValidationError: ...
    """
    if now - past_s <= ts <= now + future_s:
        return
    raise RequestValidationError(
        [
            {
                "type": "value_error",
                "loc": ("body", "ts"),
                "msg": f"ts {ts:.0f} is outside the accepted window: {past_s:.0f} s before to "
                f"{future_s:.0f} s after the server's clock ({now:.0f})",
                "input": ts,
            }
        ]
    )


def _client_safe(exc: FeedbackLogError, state: ServingState) -> str:
    """What went wrong, without the server's file path (a client has no business knowing it)."""
    return str(exc).removeprefix(f"{state.feedback.path}: ")
