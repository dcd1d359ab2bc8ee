"""Feedback store faults against a real two-worker server on 127.0.0.1, through the catalogue.

Each fault: while it is active ``/v1/feedback`` answers as the fault says (503, never 200, for a
failing, full or locked store; late acknowledgements for a slow one), every event acknowledged before
it is still stored afterwards (``/admin/feedback/lookup``), posts succeed again after the revert, and
nothing is left behind. The lookup endpoint itself: exact present/missing, operator only.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import count
from pathlib import Path
from typing import Any

import httpx
import pytest

from recdrill.cli import main
from recdrill.drills.faults.catalogue import fault_type
from recdrill.drills.target import DrillTarget
from recdrill.errors import FaultUnavailableError
from recdrill.security.keystore import KeyStore
from recdrill.serving.runtime.local_process import ServerProcess

DATA = "shopsim:n_items=600,n_users=500,n_events=10000"
KEY = "store-drill-admin-key"
PROPAGATE_S = 0.5  # workers re-read the fault table every 0.1 s
_ids = count()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def writer_key(home: Path) -> str:
    with KeyStore.open(home / "keys.db", create=True) as store:
        return store.create("store-drill-writer", "writer")


@pytest.fixture(scope="module")
def server(home: Path, writer_key: str) -> Iterator[ServerProcess]:
    model = home / "model"
    assert main(["train", "--data", DATA, "--model", "itemknn", "--out", str(model)]) == 0
    with pytest.MonkeyPatch.context() as env:  # the child server inherits this environment
        env.setenv("RECDRILL_HOME", str(home))
        env.setenv("RECDRILL_KEY_STORE", str(home / "keys.db"))
        env.setenv("RECDRILL_KEY_RATE_PER_S", "10000")  # the fill-up loop must not meet the key limit
        env.setenv("RECDRILL_KEY_BURST", "10000")
        running = ServerProcess(model, home / "state", admin_key=KEY, workers=2, extra_args=["--no-monitor"])
        running.start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def target(server: ServerProcess) -> DrillTarget:
    return DrillTarget(server.url, KEY, verify=server.verify, state_dir=server.state_dir)


@pytest.fixture
def api(server: ServerProcess, writer_key: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers={"X-API-Key": writer_key}, timeout=60.0) as client:
        yield client


def post(api: httpx.Client, tag: str) -> tuple[str, httpx.Response]:
    # Zero-padded: one tag's ids sort in the order they are sent, so each lands next to the last one
    # in the event_id index (the full-store test relies on that: see there).
    event_id = f"{tag}-{next(_ids):08d}"
    body = {"user_id": "U-store", "item_id": "SKU-000001", "event": "click", "event_id": event_id}
    return event_id, api.post("/v1/feedback", json=body, headers={"Connection": "close"})


def post_many(api: httpx.Client, tag: str, n: int) -> list[str]:
    acked = []
    for _ in range(n):
        event_id, response = post(api, tag)
        assert response.status_code == 200, response.text
        acked.append(event_id)
    return acked


def lookup(target: DrillTarget, ids: list[str]) -> dict[str, Any]:
    with target.admin() as admin:
        response = admin.post("/admin/feedback/lookup", json={"event_ids": ids})
    assert response.status_code == 200, response.text
    return dict(response.json())


def leftovers(target: DrillTarget, name: str) -> list[str]:
    check = fault_type(name).leftovers
    assert check is not None
    return check(target)


def assert_refused(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert "feedback not recorded" in response.json()["error"]


def inject(target: DrillTarget, name: str, params: dict[str, Any]) -> tuple[Any, Any]:
    fault = fault_type(name)
    parsed = fault.parse(params)
    handle = fault.inject(target, parsed)
    time.sleep(PROPAGATE_S)
    return parsed, handle


def revert(target: DrillTarget, name: str, parsed: Any, handle: Any) -> Any:
    fault = fault_type(name)
    observed = fault.revert(target, parsed, handle)
    fault.revert(target, parsed, handle)  # a second revert is safe
    time.sleep(PROPAGATE_S)
    assert leftovers(target, name) == []
    return observed


# --- the lookup endpoint ----------------------------------------------------------------------------


def test_lookup_says_exactly_which_events_are_stored(api: httpx.Client, target: DrillTarget) -> None:
    acked = post_many(api, "lookup", 5)
    unknown = ["never-sent-1", "never-sent-2"]
    found = lookup(target, [unknown[0], *acked, unknown[1], acked[0]])
    assert found == {"asked": 7, "present": 5, "missing": unknown}


def test_lookup_needs_the_operator_role(server: ServerProcess, writer_key: str) -> None:
    body = {"event_ids": ["x"]}
    for key, status in [(None, 401), ("wrong", 401), (writer_key, 403)]:
        headers = {} if key is None else {"X-API-Key": key}
        response = httpx.post(server.url + "/admin/feedback/lookup", json=body, headers=headers)
        assert response.status_code == status and "error" in response.json(), (key, response.text)


@pytest.mark.parametrize(
    "body", [{}, {"event_ids": []}, {"event_ids": "x"}, {"event_ids": [1]}, {"event_ids": ["x"], "more": 1}]
)
def test_lookup_refuses_bad_bodies_with_json(target: DrillTarget, body: dict[str, Any]) -> None:
    with target.admin() as admin:
        response = admin.post("/admin/feedback/lookup", json=body)
    assert response.status_code == 422 and response.json()["error"] == "invalid request"


def test_a_kind_that_does_not_fit_its_point_is_a_422_naming_both(target: DrillTarget) -> None:
    with target.admin() as admin:
        response = admin.post("/admin/faults", json={"point": "feedback", "kind": "nan", "ttl_s": 5})
    assert response.status_code == 422
    assert "fault kind 'nan' does not fit point 'feedback'" in response.text


# --- the faults ---------------------------------------------------------------------------------------


def test_slow_store_acknowledges_late_and_loses_nothing(api: httpx.Client, target: DrillTarget) -> None:
    before = post_many(api, "slow-before", 3)
    parsed, handle = inject(target, "feedback-store-slow", {"latency_ms": 400, "ttl_s": 60})
    during = []
    for _ in range(4):
        started = time.monotonic()
        event_id, response = post(api, "slow")
        assert response.status_code == 200 and time.monotonic() - started >= 0.4
        during.append(event_id)
    revert(target, "feedback-store-slow", parsed, handle)
    assert lookup(target, before + during)["missing"] == []


def test_failing_store_answers_503_and_keeps_what_it_acknowledged(
    api: httpx.Client, target: DrillTarget
) -> None:
    before = post_many(api, "failing-before", 5)
    parsed, handle = inject(target, "feedback-store-failing", {"rate": 1.0, "ttl_s": 60})
    assert leftovers(target, "feedback-store-failing")
    refused = []
    for _ in range(10):
        event_id, response = post(api, "failing")
        assert_refused(response)
        refused.append(event_id)
    revert(target, "feedback-store-failing", parsed, handle)
    after = post_many(api, "failing-after", 3)
    assert (
        lookup(target, before + refused + after)["missing"] == refused
    )  # none acked lost, none refused kept


def test_full_store_answers_503_once_full_and_keeps_what_it_acknowledged(
    api: httpx.Client, target: DrillTarget
) -> None:
    before = post_many(api, "full-before", 5)
    parsed, handle = inject(target, "feedback-store-full", {"ttl_s": 60})
    # Rows that still fit into free space of the file's pages go in, as on a nearly full disk. Every
    # post is the same size and appends to the same table and index leaves, so once one fails, all do.
    acked = []
    for _ in range(3000):
        event_id, response = post(api, "full")
        if response.status_code != 200:
            assert_refused(response)
            assert "database or disk is full" in response.json()["error"]
            break
        acked.append(event_id)
    else:
        pytest.fail("3000 posts went in although the database could not grow")
    refused = []
    for _ in range(20):  # full now: never a 200 (either worker)
        event_id, response = post(api, "full")
        assert_refused(response)
        refused.append(event_id)
    revert(target, "feedback-store-full", parsed, handle)
    after = post_many(api, "full-after", 5)  # both workers lift their page cap
    assert lookup(target, before + acked + refused + after)["missing"] == refused


def test_locked_store_answers_503_after_the_busy_timeout_and_recovers(
    api: httpx.Client, target: DrillTarget
) -> None:
    before = post_many(api, "locked-before", 5)
    parsed, handle = inject(target, "feedback-store-locked", {"ttl_s": 120})
    assert leftovers(target, "feedback-store-locked")
    assert lookup(target, before)["missing"] == []  # readers are not blocked (WAL)
    with ThreadPoolExecutor(4) as pool:  # concurrent: the posts reach both workers' writers
        started = time.monotonic()
        results = list(pool.map(lambda _: post(api, "locked"), range(4)))
        waited = time.monotonic() - started
    for _, response in results:
        assert_refused(response)
    assert waited >= 8.0  # each writer waited out its 10 s busy timeout (some slack for clocks)
    observed = revert(target, "feedback-store-locked", parsed, handle)
    assert observed["ended_by"] == "revert" and observed["held_s"] >= waited
    after = post_many(api, "locked-after", 5)
    refused = [event_id for event_id, _ in results]
    assert lookup(target, before + refused + after)["missing"] == refused


def test_locked_store_ends_by_itself_at_its_ttl(target: DrillTarget) -> None:
    fault = fault_type("feedback-store-locked")
    parsed = fault.parse({"ttl_s": 0.5})
    handle = fault.inject(target, parsed)
    deadline = time.monotonic() + 10.0
    while leftovers(target, "feedback-store-locked") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert leftovers(target, "feedback-store-locked") == []
    observed = fault.revert(target, parsed, handle)
    assert observed is not None and observed["ended_by"] == "ttl"


def test_locked_store_needs_the_state_folder(server: ServerProcess, tmp_path: Path) -> None:
    fault = fault_type("feedback-store-locked")
    with pytest.raises(FaultUnavailableError, match="state folder"):
        fault.inject(DrillTarget(server.url, KEY, verify=server.verify), fault.parse({}))
    with pytest.raises(FaultUnavailableError, match="no feedback database"):
        fault.inject(DrillTarget(server.url, KEY, state_dir=tmp_path), fault.parse({}))
