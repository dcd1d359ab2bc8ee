"""The server's fault table through the admin API of a scripted target: add, remove, list."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from recdrill.drills.faults.catalogue import fault_type
from recdrill.drills.faults.server_table import (
    ServerFault,
    active_server_faults,
    add_server_fault,
    remove_server_fault,
    server_faults_at,
)
from recdrill.drills.target import DrillTarget
from recdrill.errors import FaultRefusedError
from tests.drills.test_target import KEY, FakeDeployment, closed_port_url


@pytest.fixture
def fake() -> Iterator[FakeDeployment]:
    with FakeDeployment() as running:
        yield running


@pytest.fixture
def target(fake: FakeDeployment) -> DrillTarget:
    return DrillTarget(fake.url, KEY)


def test_add_posts_the_body_and_returns_the_servers_fault_id(
    fake: FakeDeployment, target: DrillTarget
) -> None:
    body: dict[str, object] = {"point": "ranker", "kind": "latency", "latency_ms": 50.0, "ttl_s": 9.0}
    assert add_server_fault(target, body) == ServerFault("f1")
    assert fake.seen("POST", "/admin/faults") == [body]
    assert fake.requests[-1][3]["x-api-key"] == KEY
    assert active_server_faults(target) == ["ranker/latency (f1)"]


def test_a_refused_fault_names_point_kind_and_status(fake: FakeDeployment, target: DrillTarget) -> None:
    fake.status[("POST", "/admin/faults")] = 422
    with pytest.raises(FaultRefusedError, match=r"target refused fault cache/empty: HTTP 422 .*forced"):
        add_server_fault(target, {"point": "cache", "kind": "empty", "ttl_s": 5})


def test_remove_deletes_the_fault_and_a_missing_one_counts_as_reverted(
    fake: FakeDeployment, target: DrillTarget
) -> None:
    fault = add_server_fault(target, {"point": "ranker", "kind": "nan", "ttl_s": 5})
    assert remove_server_fault(target, None, fault) is None
    assert fake.faults == {}
    assert remove_server_fault(target, None, fault) is None  # 404: it expired or was removed already
    assert [p for m, p, _, _ in fake.requests if m == "DELETE"] == ["/admin/faults/f1"] * 2


def test_remove_fails_on_any_other_answer(fake: FakeDeployment, target: DrillTarget) -> None:
    fault = add_server_fault(target, {"point": "ranker", "kind": "nan", "ttl_s": 5})
    fake.status[("DELETE", "/admin/faults/f1")] = 500
    with pytest.raises(FaultRefusedError, match="could not remove fault f1: HTTP 500"):
        remove_server_fault(target, None, fault)
    assert "f1" in fake.faults


def test_listing_failures_are_reported_as_leftovers(fake: FakeDeployment, target: DrillTarget) -> None:
    fake.status[("GET", "/admin/faults")] = 401
    assert active_server_faults(target) == ["cannot list the server's faults: HTTP 401"]
    unreachable = DrillTarget(closed_port_url(), KEY)
    assert active_server_faults(unreachable) == ["cannot list the server's faults: ConnectError"]


def test_faults_at_a_point_and_kind_are_told_apart(fake: FakeDeployment, target: DrillTarget) -> None:
    for point, kind in [("cache", "empty"), ("cache", "stale"), ("ranker", "error"), ("cache", "empty")]:
        add_server_fault(target, {"point": point, "kind": kind, "ttl_s": 5})
    assert server_faults_at(target, "cache", "empty") == ["cache/empty (f1)", "cache/empty (f4)"]
    assert server_faults_at(target, "cache", "stal") == []  # a prefix of a kind is not the kind
    assert server_faults_at(target, "feedback", "latency") == []
    fake.status[("GET", "/admin/faults")] = 503
    assert server_faults_at(target, "cache", "empty") == ["cannot list the server's faults: HTTP 503"]


def test_a_catalogue_model_fault_round_trips_through_the_table(
    fake: FakeDeployment, target: DrillTarget
) -> None:
    ftype = fault_type("ranker-latency")
    params = ftype.parse({"latency_ms": 80, "ttl_s": 12})
    handle = ftype.inject(target, params)
    assert fake.seen("POST", "/admin/faults") == [
        {"point": "ranker", "kind": "latency", "rate": 1.0, "ttl_s": 12.0, "latency_ms": 80.0}
    ]
    assert ftype.leftovers is not None and ftype.leftovers(target) == [f"ranker/latency ({handle.id})"]
    assert ftype.revert(target, params, handle) is None
    assert ftype.leftovers(target) == []
