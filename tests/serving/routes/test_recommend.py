"""POST /v1/recommend: serve_recommendation and tier_request on a loaded state, and the route over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.exceptions import RequestValidationError

from recdrill.data.dataset import Dataset
from recdrill.serving.config import ServeConfig
from recdrill.serving.metrics import ServingMetrics
from recdrill.serving.middleware.admission import WorkerLoad
from recdrill.serving.observers import FeedbackSeen, RecommendSeen
from recdrill.serving.routes.recommend import HISTORY_LENGTH, serve_recommendation, tier_request
from recdrill.serving.schemas import RecommendRequest
from recdrill.serving.state import ServingState, load_state
from tests.serving.routes.conftest import ADMIN, save_model

# In the chain shop user u0 walked items 13, 14, 15, 16, 17 (dense ids = the number in "i<n>").
U0_HISTORY = [13, 14, 15, 16, 17]


class SeenRecorder:
    """An observer that keeps every recommendation it is shown."""

    def __init__(self) -> None:
        self.seen: list[RecommendSeen] = []

    def recommend(self, seen: RecommendSeen) -> None:
        self.seen.append(seen)

    def feedback(self, seen: FeedbackSeen) -> None:
        pass

    async def run(self) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.fixture
def state(tmp_path: Path, chain_shop: Dataset) -> Iterator[ServingState]:
    folder = save_model(tmp_path / "model", chain_shop)
    # A deadline no busy machine misses: a fallback here would be the machine, not the code.
    config = ServeConfig(folder, tmp_path / "state", deadline_ms=10_000)
    loaded = load_state(config, ServingMetrics(), WorkerLoad(16))
    yield loaded
    loaded.close()


def serve(state: ServingState, **body: Any) -> dict[str, Any]:
    return asyncio.run(serve_recommendation(state, RecommendRequest(**body)))


def sample(state: ServingState, name: str, **labels: str) -> float:
    value = state.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def item_ids(answer: dict[str, Any]) -> list[str]:
    return [entry["item_id"] for entry in answer["items"]]


# --- tier_request -----------------------------------------------------------------------------------


def test_a_known_users_stored_history_comes_before_the_given_one(state: ServingState) -> None:
    body = RecommendRequest(user_id="u0", history=["i19", "SKU-unknown", "i2"], k=4)
    request, unknown, user_known = tier_request(state.generation, body)
    assert request.history.tolist() == [*U0_HISTORY, 19, 2]
    assert request.history.dtype == np.int64
    assert (request.k, request.user, request.category, request.allowed) == (4, "u0", None, None)
    assert unknown == 1 and user_known is True


def test_an_unknown_user_has_only_the_given_history_and_an_anonymous_one_no_verdict(
    state: ServingState,
) -> None:
    request, unknown, user_known = tier_request(
        state.generation, RecommendRequest(user_id="u999", history=["i3"])
    )
    assert request.history.tolist() == [3] and unknown == 0 and user_known is False
    request, unknown, user_known = tier_request(state.generation, RecommendRequest(history=["nope", "i4"]))
    assert request.history.tolist() == [4] and unknown == 1 and user_known is None
    assert request.user is None


def test_only_the_most_recent_items_of_a_long_history_reach_the_tiers(state: ServingState) -> None:
    given = [f"i{n % 20}" for n in range(HISTORY_LENGTH + 10)]
    request, _, _ = tier_request(state.generation, RecommendRequest(history=given))
    assert len(request.history) == HISTORY_LENGTH
    assert request.history.tolist() == [n % 20 for n in range(10, HISTORY_LENGTH + 10)]


def test_a_known_category_restricts_the_request_and_is_kept_for_the_next_one(state: ServingState) -> None:
    g = state.generation
    request, _, _ = tier_request(g, RecommendRequest(user_id="u0", category="c1"))
    assert request.allowed is not None and request.allowed.tolist() == list(range(1, 20, 2))
    assert request.category == "c1"
    again, _, _ = tier_request(g, RecommendRequest(history=["i2"], category="c1"))
    assert again.allowed is g.category_items["c1"] is request.allowed  # looked up once per generation


def test_an_unknown_category_is_a_422_naming_it(state: ServingState) -> None:
    with pytest.raises(RequestValidationError) as refused:
        tier_request(state.generation, RecommendRequest(user_id="u0", category="Spaceships"))
    (error,) = refused.value.errors()
    assert error["loc"] == ("body", "category") and "unknown category 'Spaceships'" in error["msg"]
    assert "Spaceships" not in state.generation.category_items


# --- serve_recommendation ---------------------------------------------------------------------------


def test_a_known_user_gets_the_primarys_ranking_of_their_stored_history(state: ServingState) -> None:
    g = state.generation
    answer = serve(state, user_id="u0", k=3)
    expected = g.model.recommend([U0_HISTORY], k=3)
    assert answer["served_by"] == "primary"
    assert answer["model_version"] == state.model_version
    assert item_ids(answer) == g.snapshot.item_ids[expected.items[0]].tolist()
    assert item_ids(answer)[0] == "i18"  # the chain's next item
    assert [e["score"] for e in answer["items"]] == pytest.approx(expected.scores[0].tolist())
    assert not set(item_ids(answer)) & {f"i{n}" for n in U0_HISTORY}
    assert isinstance(answer["latency_ms"], float) and answer["latency_ms"] >= 0
    assert sample(state, "recdrill_served_by_total", tier="primary") == 1
    assert sample(state, "recdrill_fallbacks_total") == 0


def test_no_history_is_a_cold_start_answered_by_popularity_not_a_fallback(state: ServingState) -> None:
    snapshot = state.generation.snapshot
    answer = serve(state, user_id="a-stranger", k=5)
    best = np.argsort(-snapshot.item_counts, kind="stable")[:5]
    assert answer["served_by"] == "popular"
    assert item_ids(answer) == snapshot.item_ids[best].tolist()
    assert sample(state, "recdrill_served_by_total", tier="popular") == 1
    assert sample(state, "recdrill_fallbacks_total") == 0
    assert ("a-stranger", None) not in state.resources.cache  # only primary answers are remembered


def test_a_category_answer_holds_only_that_categorys_items(state: ServingState) -> None:
    answer = serve(state, user_id="u0", k=4, category="c0")
    assert answer["served_by"] == "primary" and len(answer["items"]) == 4
    assert all(int(item.removeprefix("i")) % 2 == 0 for item in item_ids(answer))


def test_a_primary_answer_becomes_the_users_last_good_list_when_the_primary_fails(
    state: ServingState,
) -> None:
    primary = serve(state, user_id="u0", k=3)
    assert ("u0", None) in state.resources.cache
    state.faults.add("ranker", "error", ttl_s=60)
    fallback = serve(state, user_id="u0", k=3)
    assert fallback["served_by"] == "cache"
    assert fallback["items"] == primary["items"]
    assert sample(state, "recdrill_fallbacks_total") == 1
    assert sample(state, "recdrill_tier_skips_total", tier="primary", reason="error") == 1
    assert sample(state, "recdrill_served_by_total", tier="cache") == 1


def test_every_observer_is_shown_the_answer_in_dense_ids(state: ServingState) -> None:
    recorder = SeenRecorder()
    state.observers.append(recorder)
    answer = serve(state, user_id="u0", history=["i19", "SKU-unknown"], k=3)
    [seen] = recorder.seen
    assert seen.history.tolist() == [*U0_HISTORY, 19]
    assert (seen.given, seen.unknown, seen.user_known) == (2, 1, True)
    assert (seen.served_by, seen.first_tier) == ("primary", "primary")
    assert seen.snapshot.item_ids[seen.items].tolist() == item_ids(answer)
    assert seen.snapshot is state.generation.snapshot


# --- over HTTP -----------------------------------------------------------------------------------


def test_the_route_answers_the_documented_body_and_takes_the_admin_key(api: httpx.Client) -> None:
    for headers in ({}, ADMIN):  # readers need no key without a key store; an admin key grants reader
        response = api.post("/v1/recommend", json={"user_id": "u0", "k": 3}, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"items", "served_by", "model_version", "latency_ms"}
        assert body["served_by"] == "primary" and body["items"][0]["item_id"] == "i18"
        assert [set(entry) for entry in body["items"]] == [{"item_id", "score"}] * 3
        assert body["model_version"] == api.get("/readyz").json()["model_version"]


def test_the_route_refuses_an_unknown_category_with_a_json_error(api: httpx.Client) -> None:
    response = api.post("/v1/recommend", json={"user_id": "u0", "category": "Spaceships"})
    assert response.status_code == 422
    assert response.json() == {
        "error": "invalid request",
        "detail": [
            {
                "loc": ["body", "category"],
                "msg": "unknown category 'Spaceships': not in the served catalogue",
                "type": "value_error",
            }
        ],
    }
