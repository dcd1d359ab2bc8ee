"""/admin/faults (operator): add, list and remove faults on the shared route server."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.serving.routes.conftest import ADMIN

FAULT_FIELDS = {"id", "point", "kind", "latency_ms", "rate", "created_at", "expires_at", "ttl_left_s"}


def test_an_added_fault_is_a_201_with_every_field(api: httpx.Client) -> None:
    before = time.time()
    response = api.post(
        "/admin/faults",
        json={"point": "fallback", "kind": "latency", "latency_ms": 25, "rate": 0.5, "ttl_s": 120},
        headers=ADMIN,
    )
    assert response.status_code == 201
    fault = response.json()
    assert set(fault) == FAULT_FIELDS
    assert (fault["point"], fault["kind"], fault["latency_ms"], fault["rate"]) == (
        "fallback",
        "latency",
        25.0,
        0.5,
    )
    assert fault["expires_at"] - fault["created_at"] == pytest.approx(120.0)
    assert fault["created_at"] >= before - 1.0  # the server's clock, this machine's
    assert 0 < fault["ttl_left_s"] <= 120
    assert len(fault["id"]) == 12


def test_the_point_defaults_to_the_ranker_and_the_rate_to_every_call(api: httpx.Client) -> None:
    fault = api.post("/admin/faults", json={"kind": "nan", "ttl_s": 30}, headers=ADMIN).json()
    assert (fault["point"], fault["rate"], fault["latency_ms"]) == ("ranker", 1.0, 0.0)


def test_the_listing_holds_the_active_faults_oldest_first(api: httpx.Client) -> None:
    assert api.get("/admin/faults", headers=ADMIN).json() == []
    first = api.post("/admin/faults", json={"point": "cache", "kind": "empty", "ttl_s": 60}, headers=ADMIN)
    second = api.post(
        "/admin/faults", json={"point": "feedback", "kind": "latency", "ttl_s": 60}, headers=ADMIN
    )
    listed = api.get("/admin/faults", headers=ADMIN)
    assert listed.status_code == 200
    assert [(f["id"], f["point"], f["kind"]) for f in listed.json()] == [
        (first.json()["id"], "cache", "empty"),
        (second.json()["id"], "feedback", "latency"),
    ]


def test_removing_a_fault_stops_it_and_a_second_removal_is_a_404(api: httpx.Client) -> None:
    assert api.post("/v1/recommend", json={"user_id": "u0", "k": 3}).json()["served_by"] == "primary"
    fault = api.post("/admin/faults", json={"kind": "error", "ttl_s": 60}, headers=ADMIN).json()
    assert api.post("/v1/recommend", json={"user_id": "u0", "k": 3}).json()["served_by"] == "cache"
    removed = api.delete(f"/admin/faults/{fault['id']}", headers=ADMIN)
    assert removed.status_code == 200 and removed.json() == {"status": "removed", "id": fault["id"]}
    assert api.get("/admin/faults", headers=ADMIN).json() == []
    assert api.post("/v1/recommend", json={"user_id": "u0", "k": 3}).json()["served_by"] == "primary"
    again = api.delete(f"/admin/faults/{fault['id']}", headers=ADMIN)
    assert again.status_code == 404
    assert again.json() == {"error": f"no active fault {fault['id']!r}"}


def test_a_kind_that_does_not_fit_its_point_is_a_422_naming_both(api: httpx.Client) -> None:
    response = api.post("/admin/faults", json={"point": "cache", "kind": "nan", "ttl_s": 5}, headers=ADMIN)
    assert response.status_code == 422
    [detail] = response.json()["detail"]
    assert "fault kind 'nan' does not fit point 'cache'" in detail["msg"]
    assert api.get("/admin/faults", headers=ADMIN).json() == []


def test_every_faults_endpoint_needs_an_operator_key(api: httpx.Client) -> None:
    assert api.get("/admin/faults").status_code == 401
    assert api.post("/admin/faults", json={"kind": "error", "ttl_s": 5}).status_code == 401
    assert api.delete("/admin/faults/abc").status_code == 401
    assert api.get("/admin/faults", headers=ADMIN).json() == []  # the refused post added nothing
