"""Request and response bodies of the HTTP API (pydantic: strict types, unknown fields refused)."""

from __future__ import annotations

import time
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from recdrill.contract import MAX_HISTORY, MAX_ID_CHARS, MAX_K, MAX_LOOKUP
from recdrill.serving.fault_points import FaultKind, FaultPointName, validate_fault

EventId = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS)]  # as FeedbackRequest.event_id


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class RecommendRequest(Strict):
    user_id: str | None = Field(None, min_length=1, max_length=MAX_ID_CHARS)
    history: list[str] = Field(default_factory=list, max_length=MAX_HISTORY)
    k: int = Field(10, ge=1, le=MAX_K)
    category: str | None = Field(None, min_length=1, max_length=MAX_ID_CHARS)


class ScoredItem(BaseModel):
    item_id: str
    score: float


class RecommendResponse(BaseModel):
    items: list[ScoredItem]
    served_by: str
    model_version: str
    latency_ms: float


class FeedbackRequest(Strict):
    user_id: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    item_id: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    event: Literal["view", "click", "cart", "purchase"]
    # Finite, and checked at run time to lie within the server's window around its clock
    # (ServeConfig.feedback_past_s / feedback_future_s: 30 days back, 5 minutes ahead by default).
    ts: float = Field(
        default_factory=time.time,
        ge=0,
        allow_inf_nan=False,
        description="When the event happened (epoch seconds; the server's receive time if left out). "
        "Must lie within the server's window around its clock (by default 30 days back to 5 minutes "
        "ahead), checked at run time: outside it, 422 naming `ts`.",
    )
    # A client key that makes a retried post safe: the log stores each event_id once.
    event_id: str | None = Field(None, min_length=1, max_length=MAX_ID_CHARS)
    # The price the user saw, when the client knows it: monitoring watches the price level for drift.
    price: float | None = Field(None, ge=0, allow_inf_nan=False)


class FeedbackResponse(BaseModel):
    status: Literal["committed"]
    id: int


class FaultRequest(Strict):
    point: FaultPointName = "ranker"
    kind: FaultKind
    latency_ms: float = Field(0.0, ge=0, le=60_000)
    rate: float = Field(1.0, ge=0, le=1)
    ttl_s: float = Field(gt=0, le=3600)

    @model_validator(mode="after")
    def _kind_fits_point(self) -> Self:
        validate_fault(self.point, self.kind)  # a ValueError: a 422 naming the kind and the point
        return self


class FeedbackLookupRequest(Strict):
    """``POST /admin/feedback/lookup``: which of these client event ids the feedback log holds."""

    event_ids: list[EventId] = Field(min_length=1, max_length=MAX_LOOKUP)


class ReloadRequest(Strict):
    """``POST /admin/models/reload``: the folder or the registry version to load (one of them);
    the configured model when both are left out."""

    model_dir: str | None = Field(None, min_length=1, max_length=4096)
    version: str | None = Field(None, min_length=1, max_length=64)


class ReloadResponse(BaseModel):
    status: Literal["reloaded"]
    model_dir: str
    model_version: str
    previous_version: str
    load_ms: float


class CanaryRequest(Strict):
    """``POST /admin/models/canary``: serve registry ``version`` to a sticky ``share`` of users
    (``canary``), or score it beside the primary without serving it (``shadow``). The judge's knobs
    are optional (``canary_judge.py`` has the defaults); ``auto_promote`` makes a passing candidate
    production instead of only reporting it."""

    version: str = Field(min_length=1, max_length=64)
    share: float = Field(gt=0, le=1)
    mode: Literal["canary", "shadow"] = "canary"
    auto_promote: bool = False
    min_samples: int | None = Field(None, ge=2, le=1_000_000)
    max_ndcg_drop: float | None = Field(None, ge=0, lt=1)
    max_p99_ratio: float | None = Field(None, ge=1, le=100)
