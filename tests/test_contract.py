"""recdrill.contract: the request limits, worker header and key header serving really uses."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest
from pydantic import ValidationError

from recdrill import contract
from recdrill.contract import (
    API_KEY_HEADER,
    MAX_HISTORY,
    MAX_ID_CHARS,
    MAX_K,
    MAX_LOOKUP,
    WORKER_HEADER,
)
from recdrill.security.access import api_key_header
from recdrill.serving.middleware.worker_header import WorkerHeader
from recdrill.serving.schemas import FeedbackLookupRequest, FeedbackRequest, RecommendRequest


def test_k_up_to_max_k_is_taken_and_one_more_refused() -> None:
    assert RecommendRequest.model_validate({"user_id": "u", "k": MAX_K}).k == MAX_K
    with pytest.raises(ValidationError, match=f"less than or equal to {MAX_K}"):
        RecommendRequest.model_validate({"user_id": "u", "k": MAX_K + 1})


def test_a_history_of_max_history_ids_is_taken_and_one_more_refused() -> None:
    history = [f"i{n}" for n in range(MAX_HISTORY)]
    assert len(RecommendRequest.model_validate({"history": history}).history) == MAX_HISTORY
    with pytest.raises(ValidationError, match=f"at most {MAX_HISTORY} items"):
        RecommendRequest.model_validate({"history": [*history, "one-more"]})


def test_a_lookup_of_max_lookup_ids_is_taken_and_one_more_refused() -> None:
    ids = [f"e{n}" for n in range(MAX_LOOKUP)]
    assert len(FeedbackLookupRequest.model_validate({"event_ids": ids}).event_ids) == MAX_LOOKUP
    with pytest.raises(ValidationError, match=f"at most {MAX_LOOKUP} items"):
        FeedbackLookupRequest.model_validate({"event_ids": [*ids, "one-more"]})


@pytest.mark.parametrize(
    ("schema", "body", "field"),
    [
        (RecommendRequest, {}, "user_id"),
        (FeedbackRequest, {"user_id": "u", "item_id": "i", "event": "click"}, "user_id"),
        (FeedbackRequest, {"user_id": "u", "item_id": "i", "event": "click"}, "item_id"),
        (FeedbackRequest, {"user_id": "u", "item_id": "i", "event": "click"}, "event_id"),
    ],
)
def test_ids_of_max_id_chars_are_taken_and_one_more_refused(
    schema: type[RecommendRequest | FeedbackRequest], body: dict[str, Any], field: str
) -> None:
    longest = "x" * MAX_ID_CHARS
    assert getattr(schema.model_validate({**body, field: longest}), field) == longest
    with pytest.raises(ValidationError, match=f"at most {MAX_ID_CHARS} characters"):
        schema.model_validate({**body, field: longest + "x"})


def test_event_ids_in_a_lookup_are_bounded_as_in_a_feedback_post() -> None:
    with pytest.raises(ValidationError, match=f"at most {MAX_ID_CHARS} characters"):
        FeedbackLookupRequest.model_validate({"event_ids": ["x" * (MAX_ID_CHARS + 1)]})


def test_item_ids_in_a_history_are_bounded_by_max_id_chars() -> None:
    with pytest.raises(ValidationError):
        RecommendRequest.model_validate({"history": ["x" * (MAX_ID_CHARS + 1)]})


def _call(app: WorkerHeader, scope: dict[str, Any]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]
    return sent


async def _answer(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})


def test_the_worker_middleware_tags_responses_with_the_contracts_header_and_its_pid() -> None:
    sent = _call(WorkerHeader(_answer), {"type": "http", "method": "GET", "path": "/readyz", "headers": []})
    start, body = sent
    assert start["headers"] == [
        (b"content-type", b"text/plain"),
        (WORKER_HEADER.lower().encode(), str(os.getpid()).encode()),
    ]
    assert body == {"type": "http.response.body", "body": b"ok"}  # the body passes untouched
    assert WORKER_HEADER == "X-Recdrill-Worker"


def test_the_worker_middleware_leaves_other_scopes_alone() -> None:
    seen: list[str] = []

    async def lifespan(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])
        await send({"type": "lifespan.startup.complete"})

    sent = _call(WorkerHeader(lifespan), {"type": "lifespan"})
    assert seen == ["lifespan"] and sent == [{"type": "lifespan.startup.complete"}]


def test_the_api_reads_keys_from_the_contracts_header() -> None:
    assert api_key_header.model.name == API_KEY_HEADER == "X-API-Key"


def test_state_folder_file_names_are_distinct() -> None:
    names = [
        contract.FEEDBACK_DB,
        contract.FAULTS_DB,
        contract.AUDIT_DB,
        contract.SERVED_MODEL_FILE,
        contract.CANARY_FILE,
        contract.ANOMALY_LOCK,
    ]
    assert len(set(names)) == len(names)
    assert all("/" not in name for name in names)  # plain names inside --state-dir
