"""HTTP request and response bodies: defaults, bounds, strict types, unknown fields refused."""

from __future__ import annotations

import time
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from recdrill.contract import MAX_HISTORY, MAX_K, MAX_LOOKUP
from recdrill.serving.schemas import (
    CanaryRequest,
    FaultRequest,
    FeedbackLookupRequest,
    FeedbackRequest,
    RecommendRequest,
    RecommendResponse,
    ReloadRequest,
    ScoredItem,
)


def refused(model: type[BaseModel], body: dict[str, Any]) -> str:
    """The validation error text for ``body``."""
    with pytest.raises(ValidationError) as caught:
        model.model_validate(body)
    return str(caught.value)


def test_a_recommend_request_defaults_to_ten_items_for_an_anonymous_empty_history() -> None:
    request = RecommendRequest.model_validate({})
    assert (request.user_id, request.history, request.k, request.category) == (None, [], 10, None)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"k": 0}, "greater than or equal to 1"),
        ({"k": MAX_K + 1}, f"less than or equal to {MAX_K}"),
        ({"k": "5"}, "valid integer"),  # strict: no coercion from text
        ({"history": ["i"] * (MAX_HISTORY + 1)}, f"at most {MAX_HISTORY} items"),
        ({"history": [1, 2]}, "valid string"),
        ({"user_id": ""}, "at least 1 character"),
        ({"user_id": "u" * 129}, "at most 128 characters"),
        ({"category": ""}, "at least 1 character"),
        ({"k": 5, "debug": True}, "Extra inputs are not permitted"),
    ],
)
def test_a_recommend_request_out_of_bounds_is_refused(body: dict[str, Any], problem: str) -> None:
    assert problem in refused(RecommendRequest, body)


def test_the_largest_recommend_request_is_accepted() -> None:
    request = RecommendRequest.model_validate(
        {"user_id": "u" * 128, "history": ["i"] * MAX_HISTORY, "k": MAX_K, "category": "shoes"}
    )
    assert request.k == MAX_K and len(request.history) == MAX_HISTORY


def test_a_feedback_request_is_stamped_now_unless_it_says_when() -> None:
    before = time.time()
    request = FeedbackRequest.model_validate({"user_id": "u1", "item_id": "SKU-1", "event": "click"})
    after = time.time()
    assert before <= request.ts <= after
    assert (request.event_id, request.price) == (None, None)
    dated = FeedbackRequest.model_validate(
        {"user_id": "u1", "item_id": "i", "event": "purchase", "ts": 5.0, "price": 0}
    )
    assert (dated.ts, dated.price) == (5.0, 0.0)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"event": "like"}, "'view', 'click', 'cart' or 'purchase'"),
        ({"ts": -1.0}, "greater than or equal to 0"),
        ({"price": -0.01}, "greater than or equal to 0"),
        ({"price": float("inf")}, "finite number"),
        ({"event_id": ""}, "at least 1 character"),
        ({"event_id": "e" * 129}, "at most 128 characters"),
        ({"item_id": ""}, "at least 1 character"),
        ({"session": "s1"}, "Extra inputs are not permitted"),
    ],
)
def test_a_bad_feedback_request_is_refused(change: dict[str, Any], problem: str) -> None:
    body = {"user_id": "u1", "item_id": "SKU-1", "event": "click", **change}
    assert problem in refused(FeedbackRequest, body)


def test_a_fault_request_defaults_to_the_ranker_at_full_rate() -> None:
    fault = FaultRequest.model_validate({"kind": "nan", "ttl_s": 30})
    assert (fault.point, fault.kind, fault.latency_ms, fault.rate, fault.ttl_s) == (
        "ranker",
        "nan",
        0.0,
        1.0,
        30,
    )


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"point": "cache", "kind": "nan", "ttl_s": 30}, "fault kind 'nan' does not fit point 'cache'"),
        ({"point": "feedback", "kind": "stale", "ttl_s": 30}, "its kinds: latency, error, full"),
        ({"point": "database", "kind": "error", "ttl_s": 30}, "'ranker', 'fallback', 'cache' or 'feedback'"),
        ({"kind": "error"}, "ttl_s\n  Field required"),
        ({"kind": "error", "ttl_s": 0.5}, "greater than or equal to 1"),
        ({"kind": "error", "ttl_s": 3601}, "less than or equal to 3600"),
        ({"kind": "error", "ttl_s": 10, "rate": 1.5}, "less than or equal to 1"),
        ({"kind": "latency", "ttl_s": 10, "latency_ms": 60_001}, "less than or equal to 60000"),
    ],
)
def test_a_bad_fault_request_is_refused(body: dict[str, Any], problem: str) -> None:
    assert problem in refused(FaultRequest, body)


def test_a_feedback_lookup_takes_one_to_max_lookup_event_ids() -> None:
    assert FeedbackLookupRequest.model_validate({"event_ids": ["e1"]}).event_ids == ["e1"]
    assert (
        len(FeedbackLookupRequest.model_validate({"event_ids": ["e"] * MAX_LOOKUP}).event_ids) == MAX_LOOKUP
    )
    assert "at least 1 item" in refused(FeedbackLookupRequest, {"event_ids": []})
    assert f"at most {MAX_LOOKUP} items" in refused(
        FeedbackLookupRequest, {"event_ids": ["e"] * (MAX_LOOKUP + 1)}
    )
    assert "at least 1 character" in refused(FeedbackLookupRequest, {"event_ids": [""]})


def test_a_reload_request_may_name_a_folder_a_version_or_neither() -> None:
    assert ReloadRequest.model_validate({}).model_dump() == {"model_dir": None, "version": None}
    assert ReloadRequest.model_validate({"version": "v3"}).version == "v3"
    assert "at least 1 character" in refused(ReloadRequest, {"model_dir": ""})
    assert "at most 64 characters" in refused(ReloadRequest, {"version": "v" * 65})


def test_a_canary_request_defaults_and_bounds() -> None:
    canary = CanaryRequest.model_validate({"version": "v2", "share": 1})
    assert (canary.mode, canary.auto_promote, canary.min_samples, canary.max_ndcg_drop) == (
        "canary",
        False,
        None,
        None,
    )
    assert "greater than 0" in refused(CanaryRequest, {"version": "v2", "share": 0})
    assert "'canary' or 'shadow'" in refused(CanaryRequest, {"version": "v2", "share": 0.1, "mode": "dark"})
    assert "greater than or equal to 2" in refused(
        CanaryRequest, {"version": "v2", "share": 0.1, "min_samples": 1}
    )
    assert "less than 1" in refused(CanaryRequest, {"version": "v2", "share": 0.1, "max_ndcg_drop": 1})
    assert "greater than or equal to 1" in refused(
        CanaryRequest, {"version": "v2", "share": 0.1, "max_p99_ratio": 0.5}
    )


def test_a_recommend_response_round_trips_through_json() -> None:
    response = RecommendResponse(
        items=[ScoredItem(item_id="SKU-1", score=0.5)],
        served_by="primary",
        model_version="v1",
        latency_ms=1.5,
    )
    assert RecommendResponse.model_validate_json(response.model_dump_json()) == response
    assert response.model_dump()["items"] == [{"item_id": "SKU-1", "score": 0.5}]
