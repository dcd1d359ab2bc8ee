"""Request and response bodies of the HTTP API (pydantic: strict types, unknown fields refused)."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from recdrill.contract import MAX_HISTORY, MAX_ID_CHARS, MAX_K, MAX_LOOKUP, MAX_VERSION_CHARS, VERSION_PATTERN
from recdrill.serving.fault_points import KINDS_BY_POINT, FaultKind, FaultPointName, validate_fault

EventId = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS)]  # as FeedbackRequest.event_id
ItemId = Annotated[str, Field(max_length=MAX_ID_CHARS)]  # in a history: unknown ids are counted, not refused
VersionName = Annotated[str, Field(min_length=1, max_length=MAX_VERSION_CHARS, pattern=VERSION_PATTERN)]


def _integral(value: object) -> object:
    """JSON Schema counts ``1.0`` as an integer; strict pydantic does not: take whole floats."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# Int fields as JSON Schema defines "integer" (1 and 1.0; never true, "1" or 1.5). The bounds go
# before the validator, or pydantic writes them into the schema as "ge"/"le", not JSON Schema's words.
ListLength = Annotated[int, Field(ge=1, le=MAX_K), BeforeValidator(_integral)]
SampleCount = Annotated[int, Field(ge=2, le=1_000_000), BeforeValidator(_integral)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class RecommendRequest(Strict):
    user_id: str | None = Field(None, min_length=1, max_length=MAX_ID_CHARS)
    history: list[ItemId] = Field(default_factory=list, max_length=MAX_HISTORY)
    k: ListLength = 10
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


def _kinds_per_point() -> dict[str, Any]:
    """The schema's statement of ``validate_fault``: each point with the kinds that fit it (the
    default point, ranker, also when the point is left out)."""
    branches = []
    for point, kinds in KINDS_BY_POINT.items():
        branch: dict[str, Any] = {"properties": {"point": {"const": point}, "kind": {"enum": list(kinds)}}}
        if point != "ranker":
            branch["required"] = ["point"]
        branches.append(branch)
    return {"anyOf": branches}


class FaultRequest(Strict):
    model_config = ConfigDict(json_schema_extra=_kinds_per_point())

    point: FaultPointName = "ranker"
    kind: FaultKind
    latency_ms: float = Field(0.0, ge=0, le=60_000)
    rate: float = Field(1.0, ge=0, le=1)
    ttl_s: float = Field(ge=1, le=3600)  # a fault shorter than a second expires before a client sees it

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

    # Both at once is refused; the schema says so too ("not" both strings), for generated clients.
    model_config = ConfigDict(
        json_schema_extra={
            "not": {
                "properties": {"model_dir": {"type": "string"}, "version": {"type": "string"}},
                "required": ["model_dir", "version"],
            }
        }
    )

    model_dir: str | None = Field(None, min_length=1, max_length=4096)
    version: VersionName | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if self.model_dir is not None and self.version is not None:
            raise ValueError("give model_dir or version, not both")
        return self


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

    version: VersionName
    share: float = Field(gt=0, le=1)
    mode: Literal["canary", "shadow"] = "canary"
    auto_promote: bool = False
    min_samples: SampleCount | None = None
    max_ndcg_drop: float | None = Field(None, ge=0, lt=1)
    max_p99_ratio: float | None = Field(None, ge=1, le=100)


# -- response bodies of the other routes (documented in the OpenAPI document; see openapi.py) ------


class Fault(BaseModel):
    """An active in-process fault: where, what, and until when (epoch seconds)."""

    id: str
    point: str
    kind: str
    latency_ms: float
    rate: float
    created_at: float
    expires_at: float
    ttl_left_s: float


class FaultRemoved(BaseModel):
    status: Literal["removed"]
    id: str


class FeedbackLookupResponse(BaseModel):
    """How many distinct ids were asked, how many are stored, and the missing ones in asked order."""

    asked: int
    present: int
    missing: list[str]


class CanaryStatus(BaseModel):
    """This worker's canary: per-arm samples, NDCG@10 and p99, the judge's verdict and decisions
    (more fields while one runs: version, share, mode, judge, auto_promote)."""

    model_config = ConfigDict(extra="allow")

    active: bool
    worker: int
    arms: dict[str, Any]
    unmatched_labels: int
    verdict: dict[str, Any] | None
    decisions: list[Any]
    last_change: Any = None


class CanaryStarted(CanaryStatus):
    status: Literal["started"]


class CanaryStopped(BaseModel):
    status: Literal["stopped"]
    version: str


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    """``ready`` with the served version (200), or ``loading`` (503)."""

    status: Literal["ready", "loading"]
    model_version: str | None = None
