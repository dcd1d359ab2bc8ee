"""POST /v1/feedback and POST /admin/feedback/lookup on the shared route server."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from tests.serving.routes.conftest import ADMIN
from tests.serving.test_app import metric


def unique(prefix: str) -> str:
    """An event id no other test of the shared server has sent."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def test_a_committed_event_is_acknowledged_with_its_row_and_counted(api: httpx.Client) -> None:
    before = api.get("/metrics").text
    first = api.post("/v1/feedback", json={"user_id": "u1", "item_id": "i3", "event": "cart"})
    second = api.post("/v1/feedback", json={"user_id": "u1", "item_id": "i4", "event": "cart"})
    assert first.status_code == second.status_code == 200
    assert first.json()["status"] == "committed" and set(first.json()) == {"status", "id"}
    assert isinstance(first.json()["id"], int) and second.json()["id"] > first.json()["id"]
    after = api.get("/metrics").text
    assert (
        metric(after, "recdrill_feedback_total", event="cart")
        - metric(before, "recdrill_feedback_total", event="cart")
        == 2
    )


def test_an_event_id_makes_a_retry_safe(api: httpx.Client) -> None:
    body = {"user_id": "u2", "item_id": "i5", "event": "click", "event_id": unique("retry")}
    first, again = api.post("/v1/feedback", json=body), api.post("/v1/feedback", json=body)
    assert first.status_code == again.status_code == 200
    assert first.json()["id"] == again.json()["id"]


def test_an_event_of_an_unknown_kind_is_a_422_naming_the_field(api: httpx.Client) -> None:
    response = api.post("/v1/feedback", json={"user_id": "u1", "item_id": "i3", "event": "like"})
    assert response.status_code == 422
    assert response.json()["error"] == "invalid request"
    assert [d["loc"] for d in response.json()["detail"]] == [["body", "event"]]


def test_a_commit_refused_by_the_store_is_a_503_and_never_acknowledged(api: httpx.Client) -> None:
    event_id = unique("refused")
    fault = api.post("/admin/faults", json={"point": "feedback", "kind": "error", "ttl_s": 60}, headers=ADMIN)
    assert fault.status_code == 201
    body = {"user_id": "u1", "item_id": "i3", "event": "view", "event_id": event_id}
    refused = api.post("/v1/feedback", json=body)
    assert refused.status_code == 503
    error = refused.json()["error"]
    assert error.startswith("feedback not recorded: ")
    assert error.endswith("injected error at feedback: the store refused the commit")
    api.delete(f"/admin/faults/{fault.json()['id']}", headers=ADMIN).raise_for_status()
    lookup = api.post("/admin/feedback/lookup", json={"event_ids": [event_id]}, headers=ADMIN)
    assert lookup.json() == {"asked": 1, "present": 0, "missing": [event_id]}
    assert api.post("/v1/feedback", json=body).status_code == 200  # the client's retry goes in


def test_lookup_counts_distinct_ids_and_lists_the_missing_in_the_order_given(api: httpx.Client) -> None:
    stored = unique("stored")
    body = {"user_id": "u3", "item_id": "i7", "event": "purchase", "event_id": stored}
    assert api.post("/v1/feedback", json=body).status_code == 200
    asked = [unique("b-missing"), stored, unique("a-missing")]
    response = api.post(
        "/admin/feedback/lookup", json={"event_ids": [*asked, stored, asked[0]]}, headers=ADMIN
    )
    assert response.status_code == 200
    assert response.json() == {"asked": 3, "present": 1, "missing": [asked[0], asked[2]]}


def test_lookup_is_an_operator_endpoint(api: httpx.Client) -> None:
    body = {"event_ids": ["any"]}
    missing = api.post("/admin/feedback/lookup", json=body)
    assert missing.status_code == 401 and "X-API-Key" in missing.json()["error"]
    assert api.post("/admin/feedback/lookup", json=body, headers={"X-API-Key": "wrong"}).status_code == 401
    assert api.post("/admin/feedback/lookup", json=body, headers=ADMIN).status_code == 200


@pytest.mark.parametrize(
    ("ts", "why"),
    [
        (4_102_444_800, "outside the accepted window"),  # the year 2100
        (1e308, "outside the accepted window"),
        (time.time() - 31 * 86_400, "outside the accepted window"),  # a month and a day ago
        (-1, "greater than or equal to 0"),
    ],
)
def test_an_event_time_outside_the_window_is_a_422_naming_ts(api: httpx.Client, ts: float, why: str) -> None:
    answer = api.post("/v1/feedback", json={"user_id": "u1", "item_id": "i1", "event": "click", "ts": ts})
    assert answer.status_code == 422
    (detail,) = answer.json()["detail"]
    assert detail["loc"] == ["body", "ts"] and why in detail["msg"]


def test_an_event_time_inside_the_window_is_committed(api: httpx.Client) -> None:
    for ts in (time.time() - 29 * 86_400, time.time() + 60):
        answer = api.post("/v1/feedback", json={"user_id": "u1", "item_id": "i1", "event": "click", "ts": ts})
        assert answer.status_code == 200, answer.text
