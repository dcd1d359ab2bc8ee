"""The whole degradation chain: each tier answers when every tier above it fails.

In-process on saved folders (``load_generation``, as a worker builds it), then end to end through a
real server whose model folder holds a ``fallback/`` model, with faults set over the admin API.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from recdrill.cli import main
from recdrill.data.dataset import Dataset
from recdrill.data.snapshot import ShopSnapshot
from recdrill.errors import ModelFileError
from recdrill.models.itemknn import ItemKNNRecommender
from recdrill.models.popularity import PopularityRecommender
from recdrill.serving.cache import CachedList, LastGoodCache
from recdrill.serving.config import ServeConfig
from recdrill.serving.fault_points import FaultStore
from recdrill.serving.generation import Generation, WorkerResources, load_generation
from recdrill.serving.metrics import ServingMetrics
from recdrill.serving.router import RoutedAnswer
from recdrill.serving.runtime.local_process import ServerProcess
from recdrill.serving.tiers import TierRequest
from tests.conftest import make_shop

# --- in-process ---------------------------------------------------------------------------------


def save_shop_model(dataset: Dataset, folder: Path, with_fallback: bool = True) -> Path:
    ItemKNNRecommender(neighbours=10).fit(dataset).save(folder)
    ShopSnapshot.from_dataset(dataset).save(folder)
    if with_fallback:
        ItemKNNRecommender(neighbours=5, window=2).fit(dataset).save(folder / "fallback")
    return folder


@pytest.fixture
def resources(tmp_path: Path) -> Iterator[WorkerResources]:
    faults = FaultStore(tmp_path / "faults.db")
    config = ServeConfig(tmp_path / "unused", tmp_path, deadline_ms=1000.0)
    yield WorkerResources(config, ServingMetrics(), faults, LastGoodCache())
    faults.close()


def route(generation: Generation, history: list[int], user: str | None = None) -> RoutedAnswer:
    request = TierRequest(np.array(history, dtype=np.int64), k=3, user=user)
    return asyncio.run(generation.router.route(request))


def test_without_categories_the_chain_ends_at_global_popularity(
    resources: WorkerResources, tmp_path: Path
) -> None:
    shop = make_shop([[0, 1, 2, 3], [1, 2, 3, 4], [2, 3, 4, 5], [0, 2, 4, 6]], n_items=8)
    generation = load_generation(save_shop_model(shop, tmp_path / "model"), resources)
    assert [t.name for t in generation.router.tiers] == ["primary", "fallback", "cache", "category"]
    assert route(generation, [1, 2]).served_by == "primary"
    resources.faults.add("ranker", "error", ttl_s=60)
    assert route(generation, [1, 2]).served_by == "fallback"
    resources.faults.add("fallback", "nan", ttl_s=60)
    routed = route(generation, [1, 2], user="u0")
    assert routed.served_by == "popular"
    assert routed.skipped == [
        ("primary", "error"),
        ("fallback", "invalid"),
        ("cache", "miss"),
        ("category", "no_category"),
    ]
    assert not {1, 2} & set(routed.answer.items.tolist())
    generation.close()


def test_every_tier_answers_within_k_with_finite_scores_and_never_a_seen_item(
    resources: WorkerResources, tmp_path: Path, chain_shop: Dataset
) -> None:
    """Conformance: every tier of a served chain, and the last, keeps the tier contract."""
    generation = load_generation(save_shop_model(chain_shop, tmp_path / "model"), resources)
    history = np.array([4, 5, 6], dtype=np.int64)
    resources.cache.put(
        ("u1", None), CachedList(np.array([7, 5, 9, 11]), np.array([4, 3, 2, 1], dtype=np.float32))
    )
    tiers = [*generation.router.tiers, generation.router.last]
    assert [t.name for t in tiers] == ["primary", "fallback", "cache", "category", "popular"]
    for tier in tiers:
        for k in (1, 3):
            answer = asyncio.run(tier.serve(TierRequest(history, k=k, user="u1")))
            assert 0 < len(answer.items) <= k and len(answer.items) == len(answer.scores), tier.name
            assert np.all(np.isfinite(answer.scores)), tier.name
            assert not set(answer.items.tolist()) & set(history.tolist()), tier.name
            assert np.all(np.diff(answer.scores) <= 0), tier.name  # best first
    generation.close()


def test_category_popularity_answers_from_the_categories_of_the_history(
    resources: WorkerResources, tmp_path: Path, chain_shop: Dataset
) -> None:
    generation = load_generation(
        save_shop_model(chain_shop, tmp_path / "model", with_fallback=False), resources
    )
    assert [t.name for t in generation.router.tiers] == ["primary", "cache", "category"]  # no fallback/
    resources.faults.add("ranker", "error", ttl_s=60)
    routed = route(generation, [2, 4, 6])  # all even: category c0
    assert routed.served_by == "category"
    assert routed.skipped == [("primary", "error"), ("cache", "miss")]
    assert all(item % 2 == 0 for item in routed.answer.items.tolist())
    generation.close()


def test_a_fallback_for_another_catalogue_is_refused(
    resources: WorkerResources, tmp_path: Path, chain_shop: Dataset
) -> None:
    folder = save_shop_model(chain_shop, tmp_path / "model", with_fallback=False)
    other = make_shop([[0, 1, 2], [1, 2, 3]], n_items=5)
    PopularityRecommender().fit(other).save(folder / "fallback")
    with pytest.raises(ModelFileError, match="fallback: model scores 5 items but the shop snapshot has 20"):
        load_generation(folder, resources)


def test_configured_fallback_folder_is_used(tmp_path: Path, chain_shop: Dataset) -> None:
    folder = save_shop_model(chain_shop, tmp_path / "model", with_fallback=False)
    elsewhere = tmp_path / "knn-fallback"
    ItemKNNRecommender(neighbours=3).fit(chain_shop).save(elsewhere)
    faults = FaultStore(tmp_path / "faults.db")
    try:
        config = ServeConfig(folder, tmp_path, fallback_model_dir=elsewhere)
        generation = load_generation(
            folder, WorkerResources(config, ServingMetrics(), faults, LastGoodCache())
        )
        assert generation.fallback is not None and generation.fallback.get_params()["neighbours"] == 3
        generation.close()
    finally:
        faults.close()


# --- end to end -------------------------------------------------------------------------------

ADMIN = {"X-API-Key": "chain-key"}
SHOP = "shopsim:n_items=500,n_users=400,n_events=8000"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("chain")
    model = root / "model"
    params = root / "fallback.json"
    params.write_text(json.dumps({"neighbours": 10, "window": 2}))
    assert main(["train", "--data", SHOP, "--model", "itemknn", "--out", str(model)]) == 0
    fallback = ["--params", str(params), "--out", str(model / "fallback")]
    assert main(["train", "--data", SHOP, "--model", "itemknn", *fallback]) == 0
    with ServerProcess(model, root / "state", admin_key=ADMIN["X-API-Key"], deadline_ms=200) as running:
        yield running


def ask(client: httpx.Client, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/recommend", json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    assert len(answer["items"]) == body.get("k", 10)
    return answer


def test_each_tier_serves_when_the_ones_above_fail(server: ServerProcess) -> None:
    snapshot = ShopSnapshot.load(server.model_dir)
    user = str(snapshot.user_ids[int(np.argmax(snapshot.histories.lengths))])
    stranger = snapshot.item_ids[snapshot.histories.row(0)].tolist()  # a history, no user: nothing cached
    with httpx.Client(base_url=server.url, timeout=10.0) as client:
        assert ask(client, user_id=user)["served_by"] == "primary"  # fills the user's last-good list
        for point in ("ranker", "fallback"):
            created = client.post(
                "/admin/faults", json={"point": point, "kind": "error", "ttl_s": 60}, headers=ADMIN
            )
            assert created.status_code == 201, created.text
            if point == "ranker":
                assert ask(client, user_id=user)["served_by"] == "fallback"
                assert ask(client, history=stranger)["served_by"] == "fallback"
        assert ask(client, user_id=user)["served_by"] == "cache"
        assert ask(client, history=stranger)["served_by"] == "category"
        assert ask(client)["served_by"] == "popular"  # no history at all: best-sellers
        metrics = client.get("/metrics").text
    for line in (
        'recdrill_served_by_total{tier="fallback"} 2.0',
        'recdrill_served_by_total{tier="cache"} 1.0',
        'recdrill_served_by_total{tier="category"} 1.0',
        'recdrill_tier_skips_total{reason="error",tier="fallback"} 2.0',
        'recdrill_tier_skips_total{reason="miss",tier="cache"} 1.0',
    ):
        assert line in metrics, line
