"""End to end: a real ``recdrill serve`` process on loopback, a small trained ItemKNN, plain HTTP."""

from __future__ import annotations

import contextlib
import json
import math
import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from recdrill.cli import main
from recdrill.data.pseudonymise import Pseudonymiser, load_pseudonym_key
from recdrill.data.snapshot import ShopSnapshot
from recdrill.eval.ranking import top_k
from recdrill.serving.runtime.local_process import ServerProcess

ADMIN_KEY = "test-admin-key"
ADMIN = {"X-API-Key": ADMIN_KEY}
# The smallest ShopSim that still has every category populated: ShopSim needs n_items >= 40 leaves
# and n_events >= 5 * n_users.
SHOP = "shopsim:n_items=500,n_users=400,n_events=8000"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("model") / "itemknn"
    assert main(["train", "--data", SHOP, "--model", "itemknn", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def snapshot(model_dir: Path) -> ShopSnapshot:
    return ShopSnapshot.load(model_dir)


@pytest.fixture(scope="module")
def server(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(model_dir, tmp_path_factory.mktemp("state"), admin_key=ADMIN_KEY) as running:
        yield running


@pytest.fixture
def api(server: ServerProcess, snapshot: ShopSnapshot) -> Iterator[httpx.Client]:
    """A client of the shared server, with no fault active and every circuit breaker closed before
    the test, and no fault active after it."""
    with httpx.Client(base_url=server.url, timeout=10.0) as client:
        clear_faults(client)
        wait_until_breakers_close(client, user_with_history(snapshot)[0])
        yield client
        clear_faults(client)


def wait_until_breakers_close(client: httpx.Client, user: str, timeout_s: float = 30.0) -> None:
    """A test that tripped a breaker leaves it open for its cool-down; requests then act as the
    half-open probes that close it."""
    deadline = time.monotonic() + timeout_s
    while metric(scrape(client), "recdrill_breaker_state") > 0:
        assert time.monotonic() < deadline, "a circuit breaker stayed open"
        recommend(client, user_id=user)
        time.sleep(0.1)


def clear_faults(client: httpx.Client) -> None:
    listed = client.get("/admin/faults", headers=ADMIN)
    listed.raise_for_status()
    for fault in listed.json():
        client.delete(f"/admin/faults/{fault['id']}", headers=ADMIN).raise_for_status()


def add_fault(client: httpx.Client, **fields: Any) -> dict[str, Any]:
    response = client.post("/admin/faults", json={"ttl_s": 60, **fields}, headers=ADMIN)
    assert response.status_code == 201, response.text
    fault: dict[str, Any] = response.json()
    return fault


def recommend(client: httpx.Client, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/recommend", json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def user_with_history(snapshot: ShopSnapshot, at_least: int = 5) -> tuple[str, list[str]]:
    for user, length in enumerate(snapshot.histories.lengths.tolist()):
        if length >= at_least:
            return str(snapshot.user_ids[user]), snapshot.item_ids[snapshot.histories.row(user)].tolist()
    raise LookupError(f"no user with {at_least} items of history")


def metric(text: str, sample: str, **labels: str) -> float:
    """Sum of the samples called ``sample`` whose labels include ``labels`` (0 when none)."""
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == sample and labels.items() <= s.labels.items()
    )


def scrape(client: httpx.Client) -> str:
    response = client.get("/metrics")
    assert response.status_code == 200
    return response.text


# --- recommendations --------------------------------------------------------------------------


def test_known_user_gets_k_unseen_items_from_the_primary_tier(
    api: httpx.Client, snapshot: ShopSnapshot
) -> None:
    user, history = user_with_history(snapshot)
    answer = recommend(api, user_id=user, k=7)
    items = [entry["item_id"] for entry in answer["items"]]
    scores = [entry["score"] for entry in answer["items"]]
    assert answer["served_by"] == "primary"
    assert answer["model_version"].startswith("itemknn-")
    assert answer["model_version"] == api.get("/readyz").json()["model_version"]
    assert len(items) == 7 and len(set(items)) == 7
    assert not set(items) & set(history)
    assert set(items) <= set(snapshot.item_ids.tolist())
    assert all(isinstance(v, float) and math.isfinite(v) for v in scores)
    assert scores == sorted(scores, reverse=True)
    assert isinstance(answer["latency_ms"], float) and answer["latency_ms"] >= 0


def test_unknown_user_without_history_gets_the_best_sellers(
    api: httpx.Client, snapshot: ShopSnapshot
) -> None:
    answer = recommend(api, user_id="no-such-user", k=10)
    assert answer["served_by"] == "popular"
    best, _ = top_k(snapshot.item_counts[None, :].astype(np.float64), 10)
    assert [entry["item_id"] for entry in answer["items"]] == snapshot.item_ids[best[0]].tolist()


def test_explicit_history_is_used_and_excluded(api: httpx.Client, snapshot: ShopSnapshot) -> None:
    _, history = user_with_history(snapshot)
    answer = recommend(api, history=[*history, "SKU-unknown"], k=10)
    items = [entry["item_id"] for entry in answer["items"]]
    assert answer["served_by"] == "primary"
    assert len(items) == 10
    assert not set(items) & set(history)
    # A history changes the answer: it is not the cold-start best-seller list.
    assert items != [entry["item_id"] for entry in recommend(api, k=10)["items"]]


def test_known_category_restricts_every_item(api: httpx.Client, snapshot: ShopSnapshot) -> None:
    user, history = user_with_history(snapshot)
    for name in (snapshot.category_names[0], snapshot.category_names[-1]):
        allowed = snapshot.category_items(name)
        assert allowed is not None and len(allowed) >= 10 + len(history)
        answer = recommend(api, user_id=user, k=10, category=name)
        items = [entry["item_id"] for entry in answer["items"]]
        assert answer["served_by"] == "primary"
        assert len(items) == 10
        assert set(items) <= set(snapshot.item_ids[allowed].tolist())
        assert not set(items) & set(history)


def test_unknown_category_is_refused_by_name(api: httpx.Client) -> None:
    response = api.post("/v1/recommend", json={"user_id": "U-000001", "category": "Spaceships"})
    assert response.status_code == 422
    assert "Spaceships" in response.json()["detail"][0]["msg"]


@pytest.mark.parametrize(
    "body",
    [
        {"user_id": "U-000001", "k": 0},
        {"user_id": "U-000001", "k": 101},
        {"user_id": "U-000001", "k": "3"},
        {"user_id": "U-000001", "k": 2.5},
        {"user_id": "U-000001", "colour": "red"},
        {"history": "SKU-000001"},
        {"history": [1, 2]},
        {"user_id": 12},
        {"user_id": ""},
        {"category": ""},
        [],
    ],
    ids=[
        "k0",
        "k101",
        "k-string",
        "k-float",
        "unknown-field",
        "history-not-list",
        "history-ints",
        "user-int",
        "user-empty",
        "category-empty",
        "not-object",
    ],
)
def test_bad_input_is_a_422_with_an_error(api: httpx.Client, body: Any) -> None:
    response = api.post("/v1/recommend", json=body)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"]


def test_body_that_is_not_json_is_a_422(api: httpx.Client) -> None:
    response = api.post("/v1/recommend", content=b"{nope", headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["error"]


# --- health and metrics -----------------------------------------------------------------------


def test_health_and_readiness(api: httpx.Client) -> None:
    assert api.get("/healthz").json() == {"status": "ok"}
    ready = api.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    assert ready.json()["model_version"].startswith("itemknn-")


def test_metrics_count_what_was_served(api: httpx.Client, snapshot: ShopSnapshot) -> None:
    user, _ = user_with_history(snapshot)
    before = scrape(api)
    for _ in range(3):
        recommend(api, user_id=user)
    recommend(api, user_id="cold-user")  # cold start: popular, but not a fallback
    assert api.post("/v1/recommend", json={"k": 0}).status_code == 422
    add_fault(api, kind="error")
    assert recommend(api, user_id=user)["served_by"] == "cache"  # primary fails: the last-good list
    after = scrape(api)

    families = {family.name for family in text_string_to_metric_families(after)}
    assert {
        "recdrill_requests",
        "recdrill_request_latency_seconds",
        "recdrill_served_by",
        "recdrill_tier_skips",
        "recdrill_fallbacks",
        "recdrill_breaker_state",
        "recdrill_shed",
        "recdrill_in_flight",
        "recdrill_model_batch_size",
    } <= families

    def delta(sample: str, **labels: str) -> float:
        return metric(after, sample, **labels) - metric(before, sample, **labels)

    route = "/v1/recommend"
    assert delta("recdrill_requests_total", route=route, status="200") == 5
    assert delta("recdrill_requests_total", route=route, status="422") == 1
    assert delta("recdrill_request_latency_seconds_count", route=route) == 6
    assert delta("recdrill_request_latency_seconds_bucket", route=route, le="+Inf") == 6
    assert delta("recdrill_served_by_total", tier="primary") == 3
    assert delta("recdrill_served_by_total", tier="popular") == 1
    assert delta("recdrill_served_by_total", tier="cache") == 1
    assert delta("recdrill_model_batch_size_sum", tier="primary") >= 3  # histories scored by the model
    assert delta("recdrill_fallbacks_total") == 1
    assert delta("recdrill_tier_skips_total", tier="primary", reason="error") == 1


# --- admin API --------------------------------------------------------------------------------


def test_admin_faults_need_the_right_key(api: httpx.Client) -> None:
    body = {"kind": "latency", "latency_ms": 10, "ttl_s": 30}
    missing = api.post("/admin/faults", json=body)
    assert missing.status_code == 401 and "X-API-Key" in missing.json()["error"]
    assert api.post("/admin/faults", json=body, headers={"X-API-Key": "wrong"}).status_code == 401
    assert api.get("/admin/faults").status_code == 401
    assert api.get("/admin/faults", headers={"X-API-Key": "wrong"}).status_code == 401
    assert api.delete("/admin/faults/whatever", headers={"X-API-Key": "wrong"}).status_code == 401
    assert api.get("/admin/faults", headers=ADMIN).json() == []  # the refused calls added nothing

    created = api.post("/admin/faults", json=body, headers=ADMIN)
    assert created.status_code == 201
    fault = created.json()
    assert fault["kind"] == "latency" and fault["point"] == "ranker" and fault["latency_ms"] == 10
    assert 0 < fault["ttl_left_s"] <= 30
    assert [f["id"] for f in api.get("/admin/faults", headers=ADMIN).json()] == [fault["id"]]

    removed = api.delete(f"/admin/faults/{fault['id']}", headers=ADMIN)
    assert removed.status_code == 200 and removed.json() == {"status": "removed", "id": fault["id"]}
    assert api.get("/admin/faults", headers=ADMIN).json() == []
    again = api.delete(f"/admin/faults/{fault['id']}", headers=ADMIN)
    assert again.status_code == 404 and fault["id"] in again.json()["error"]


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "explode", "ttl_s": 10},
        {"kind": "error"},
        {"kind": "error", "ttl_s": 0},
        {"kind": "error", "ttl_s": 10, "rate": 1.5},
        {"kind": "error", "ttl_s": 10, "point": "database"},
    ],
    ids=["unknown-kind", "no-ttl", "zero-ttl", "rate-above-1", "unknown-point"],
)
def test_invalid_fault_is_refused(api: httpx.Client, body: dict[str, Any]) -> None:
    response = api.post("/admin/faults", json=body, headers=ADMIN)
    assert response.status_code == 422 and response.json()["error"]
    assert api.get("/admin/faults", headers=ADMIN).json() == []


# --- faults in the request path ---------------------------------------------------------------


def test_fault_expires_by_itself(api: httpx.Client, snapshot: ShopSnapshot) -> None:
    user, _ = user_with_history(snapshot)
    assert recommend(api, user_id=user)["served_by"] == "primary"
    fault = add_fault(api, kind="nan", ttl_s=1)
    assert recommend(api, user_id=user)["served_by"] == "cache"
    # No admin call from here on: the fault must stop acting on its own.
    time.sleep(max(0.0, fault["expires_at"] - time.time()) + 0.5)
    assert recommend(api, user_id=user)["served_by"] == "primary"
    assert api.get("/admin/faults", headers=ADMIN).json() == []


def test_ranker_failing_every_call_still_answers_every_request(
    api: httpx.Client, snapshot: ShopSnapshot
) -> None:
    user, history = user_with_history(snapshot)
    primary = recommend(api, user_id=user)
    add_fault(api, kind="error", rate=1)
    before = scrape(api)
    answers = [recommend(api, user_id=user) for _ in range(50)]
    after = scrape(api)
    # The user's last-good list answers every time: the primary's own answer from before the fault.
    assert all(a["served_by"] == "cache" and a["items"] == primary["items"] for a in answers)
    assert all(len(a["items"]) == 10 for a in answers)
    assert all(not {e["item_id"] for e in a["items"]} & set(history) for a in answers)

    def skips(reason: str) -> float:
        return metric(after, "recdrill_tier_skips_total", tier="primary", reason=reason) - metric(
            before, "recdrill_tier_skips_total", tier="primary", reason=reason
        )

    # The breaker trips once failures are half of at least 20 calls in its window (calls of earlier
    # tests included); from then on the primary is not even tried.
    assert skips("error") + skips("open") == 50
    assert skips("error") > 0 and skips("open") > 0
    assert metric(after, "recdrill_breaker_state", tier="primary") == 2  # open
    assert metric(after, "recdrill_fallbacks_total") - metric(before, "recdrill_fallbacks_total") == 50


def _refuse_constant(name: str) -> float:
    raise AssertionError(f"response holds {name}")


def test_nan_scores_never_reach_a_client(api: httpx.Client, snapshot: ShopSnapshot) -> None:
    user, _ = user_with_history(snapshot)
    recommend(api, user_id=user)
    add_fault(api, kind="nan")
    before = scrape(api)
    for body in ({"user_id": user}, {"history": snapshot.item_ids[:3].tolist(), "k": 25}):
        for _ in range(10):
            response = api.post("/v1/recommend", json=body)
            assert response.status_code == 200
            assert "NaN" not in response.text and "Infinity" not in response.text
            answer = json.loads(response.text, parse_constant=_refuse_constant)
            # A known user gets their last-good list; an anonymous history its categories' best-sellers.
            assert answer["served_by"] == ("cache" if "user_id" in body else "category")
            assert answer["items"] and all(math.isfinite(e["score"]) for e in answer["items"])
    after = scrape(api)

    def skips(reason: str) -> float:
        return metric(after, "recdrill_tier_skips_total", tier="primary", reason=reason) - metric(
            before, "recdrill_tier_skips_total", tier="primary", reason=reason
        )

    assert skips("invalid") + skips("open") == 20 and skips("invalid") > 0


def test_slow_ranker_is_cut_off_at_the_deadline(api: httpx.Client, snapshot: ShopSnapshot) -> None:
    user, _ = user_with_history(snapshot)
    recommend(api, user_id=user)
    add_fault(api, kind="latency", latency_ms=300)
    before = scrape(api)
    answer = recommend(api, user_id=user)
    assert answer["served_by"] == "cache"
    assert answer["latency_ms"] < 200  # the 50 ms deadline, plus generous room for a loaded machine
    late = {"tier": "primary", "reason": "late"}
    assert (
        metric(scrape(api), "recdrill_tier_skips_total", **late)
        - metric(before, "recdrill_tier_skips_total", **late)
        == 1
    )


# --- separate servers -------------------------------------------------------------------------


def test_acknowledged_feedback_survives_sigkill(model_dir: Path, tmp_path: Path) -> None:
    server = ServerProcess(model_dir, tmp_path / "state").start()
    sent: dict[int, tuple[str, str, str]] = {}
    try:
        with httpx.Client(base_url=server.url, timeout=10.0) as client:
            for i in range(25):
                event = (f"U-{i:06d}", f"SKU-{i * 7:06d}", ("view", "click", "cart", "purchase")[i % 4])
                response = client.post(
                    "/v1/feedback", json={"user_id": event[0], "item_id": event[1], "event": event[2]}
                )
                assert response.status_code == 200, response.text
                assert response.json()["status"] == "committed"
                sent[response.json()["id"]] = event
    finally:
        server.kill()  # SIGKILL straight after the last acknowledgement: no shutdown code runs
    assert len(sent) == 25
    with contextlib.closing(sqlite3.connect(tmp_path / "state" / "feedback.db")) as db:
        rows = db.execute("SELECT id, user_id, item_id, event FROM feedback").fetchall()
    # The log stores each user's pseudonym under the server's key (here the test home's key file).
    pseudonyms = Pseudonymiser(load_pseudonym_key())
    expected = {row: (pseudonyms.pseudonymise_id(u), item, kind) for row, (u, item, kind) in sent.items()}
    assert {row[0]: tuple(row[1:]) for row in rows} == expected


def _fallbacks_per_worker(metrics_dir: Path) -> dict[str, float]:
    """``recdrill_fallbacks_total`` of each worker, read from its own multiprocess file."""
    counts = {}
    for path in sorted(metrics_dir.glob("counter_*.db")):
        families = MultiProcessCollector.merge([str(path)], accumulate=True)
        counts[path.stem.removeprefix("counter_")] = sum(
            s.value for family in families for s in family.samples if s.name == "recdrill_fallbacks_total"
        )
    return counts


def test_a_fault_set_through_one_worker_applies_in_all(model_dir: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    user = "U-000001"
    with ServerProcess(model_dir, state, workers=2, admin_key=ADMIN_KEY) as server:
        with httpx.Client(base_url=server.url, timeout=10.0) as admin:
            assert recommend(admin, user_id=user)["served_by"] == "primary"
            add_fault(admin, kind="error")
        time.sleep(0.5)  # workers re-read the fault table every 0.1 s

        def one_request(_: int) -> str:
            # A fresh connection each time, so the kernel hands requests to either worker.
            with httpx.Client(base_url=server.url, timeout=10.0, headers={"Connection": "close"}) as c:
                return str(recommend(c, user_id=user)["served_by"])

        served: list[str] = []
        with ThreadPoolExecutor(max_workers=4) as pool:
            # At least 30 requests, and more (all checked) until both workers have answered some.
            while len(served) < 30 or (
                len(served) < 300
                and sum(v > 0 for v in _fallbacks_per_worker(state / "prometheus").values()) < 2
            ):
                served += pool.map(one_request, range(10))
        assert "primary" not in served and set(served) <= {"cache", "category"}
        per_worker = _fallbacks_per_worker(state / "prometheus")
        assert sum(per_worker.values()) == len(served)
        assert sum(count > 0 for count in per_worker.values()) == 2, per_worker


def test_a_retried_feedback_post_with_an_event_id_is_stored_once(api: httpx.Client) -> None:
    body = {"user_id": "U-000001", "item_id": "SKU-000002", "event": "click", "event_id": "evt-retry-1"}
    first, again = api.post("/v1/feedback", json=body), api.post("/v1/feedback", json=body)
    assert first.status_code == again.status_code == 200
    assert first.json()["id"] == again.json()["id"]
    other = api.post("/v1/feedback", json={**body, "event_id": "evt-retry-2"})
    assert other.json()["id"] != first.json()["id"]
    assert api.post("/v1/feedback", json={**body, "event_id": ""}).status_code == 422
