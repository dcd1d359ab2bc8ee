"""Every degradation tier keeps the Tier protocol, and each answers (or skips) its own way."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest

from recdrill.data.dataset import Dataset
from recdrill.data.ragged import Ragged
from recdrill.data.snapshot import ShopSnapshot
from recdrill.models.itemknn import ItemKNNRecommender
from recdrill.serving.batching import MicroBatcher
from recdrill.serving.cache import CachedList, LastGoodCache
from recdrill.serving.fault_points import CacheFaults, FaultPoint, FaultStore, InjectedFaultError
from recdrill.serving.tiers import (
    CATEGORY_PRIOR,
    CachedTier,
    CategoryPopularityTier,
    InvalidAnswerError,
    ModelTier,
    PopularityTier,
    Tier,
    TierAnswer,
    TierRequest,
    TierSkip,
)
from tests.conftest import make_shop

K = 5


@dataclass(frozen=True)
class Shop:
    dataset: Dataset
    model: ItemKNNRecommender
    snapshot: ShopSnapshot


@pytest.fixture(scope="module")
def shop() -> Shop:
    """30 items in two categories (even/odd), users walking chains i -> i+1."""
    rng = np.random.default_rng(5)
    sequences = []
    for _ in range(80):
        start = int(rng.integers(0, 24))
        sequences.append(list(range(start, start + int(rng.integers(3, 7)))))
    dataset = make_shop(sequences, n_items=30, categories=[i % 2 for i in range(30)])
    return Shop(dataset, ItemKNNRecommender(neighbours=10).fit(dataset), ShopSnapshot.from_dataset(dataset))


@pytest.fixture
def faults(tmp_path: Path) -> Iterator[FaultStore]:
    store = FaultStore(tmp_path / "faults.db")
    yield store
    store.close()


@pytest.fixture
def batchers() -> Iterator[list[MicroBatcher]]:
    made: list[MicroBatcher] = []
    yield made
    for batcher in made:
        batcher.close()


def serve(tier: Tier, request: TierRequest) -> TierAnswer:
    return asyncio.run(tier.serve(request))


def model_tier(
    shop: Shop, faults: FaultStore, batchers: list[MicroBatcher], point: str = "ranker"
) -> ModelTier:
    batcher = MicroBatcher(shop.model.score)
    batchers.append(batcher)
    return ModelTier(batcher, shop.model.n_items_, FaultPoint(faults, point))


def request_for(shop: Shop, category: str | None = None, k: int = K) -> TierRequest:
    allowed = None if category is None else shop.snapshot.category_items(category)
    return TierRequest(np.array([3, 4, 5], dtype=np.int64), k, allowed=allowed, user="u7", category=category)


# --- conformance: every tier of tiers.py ---------------------------------------------------------

TierFactory = Callable[[Shop, FaultStore, list[MicroBatcher], TierRequest], Tier]


def make_model(shop: Shop, faults: FaultStore, batchers: list[MicroBatcher], request: TierRequest) -> Tier:
    return model_tier(shop, faults, batchers)


def make_cached(shop: Shop, faults: FaultStore, batchers: list[MicroBatcher], request: TierRequest) -> Tier:
    """A cache holding what the primary answered this user before (ten items, as a server keeps)."""
    primary = serve(model_tier(shop, faults, batchers), TierRequest(request.history, 10, request.allowed))
    cache = LastGoodCache()
    assert request.cache_key is not None
    cache.put(request.cache_key, CachedList(primary.items, primary.scores))
    return CachedTier(cache, faults=CacheFaults(faults))


def make_category(shop: Shop, faults: FaultStore, batchers: list[MicroBatcher], request: TierRequest) -> Tier:
    return CategoryPopularityTier(shop.snapshot)


def make_popular(shop: Shop, faults: FaultStore, batchers: list[MicroBatcher], request: TierRequest) -> Tier:
    return PopularityTier(shop.snapshot)


TIERS: dict[str, tuple[str, TierFactory]] = {
    "model": ("primary", make_model),
    "cached": ("cache", make_cached),
    "category popularity": ("category", make_category),
    "popularity": ("popular", make_popular),
}


@pytest.mark.parametrize("kind", list(TIERS))
@pytest.mark.parametrize("category", [None, "c0", "c1"])
def test_every_tier_keeps_the_protocol(
    kind: str, category: str | None, shop: Shop, faults: FaultStore, batchers: list[MicroBatcher]
) -> None:
    name, factory = TIERS[kind]
    request = request_for(shop, category)
    tier = factory(shop, faults, batchers, request)
    assert tier.name == name
    assert inspect.iscoroutinefunction(tier.serve)
    answer = serve(tier, request)
    assert isinstance(answer, TierAnswer)
    assert len(answer.items) == len(answer.scores) == K
    assert len(set(answer.items.tolist())) == K and np.issubdtype(answer.items.dtype, np.integer)
    assert not np.isin(answer.items, request.history).any()
    assert np.isfinite(answer.scores).all()
    assert np.all(np.diff(answer.scores) <= 0)
    if request.allowed is not None:
        assert np.isin(answer.items, request.allowed).all()
        assert {int(i) % 2 for i in answer.items} == {int(category[1:])}  # type: ignore[index]


@pytest.mark.parametrize("kind", list(TIERS))
def test_every_tier_accepts_a_custom_name(kind: str, shop: Shop, faults: FaultStore) -> None:
    tiers: dict[str, Tier] = {
        "model": ModelTier(
            MicroBatcher(shop.model.score), 30, FaultPoint(faults, "fallback"), name="fallback"
        ),
        "cached": CachedTier(LastGoodCache(), name="fallback"),
        "category popularity": CategoryPopularityTier(shop.snapshot, name="fallback"),
        "popularity": PopularityTier(shop.snapshot, name="fallback"),
    }
    assert tiers[kind].name == "fallback"
    model = tiers["model"]
    assert isinstance(model, ModelTier)
    model.scorer.close()


# --- the model tier ------------------------------------------------------------------------------


def test_the_model_tier_answers_the_models_own_ranking(
    shop: Shop, faults: FaultStore, batchers: list[MicroBatcher]
) -> None:
    request = request_for(shop)
    answer = serve(model_tier(shop, faults, batchers), request)
    expected = shop.model.recommend([request.history.tolist()], k=K)
    assert answer.items.tolist() == expected.items[0].tolist()
    assert np.allclose(answer.scores, expected.scores[0])


def test_a_nan_fault_makes_the_model_tier_raise_invalid_answer(
    shop: Shop, faults: FaultStore, batchers: list[MicroBatcher]
) -> None:
    faults.add("ranker", "nan", ttl_s=60)
    with pytest.raises(InvalidAnswerError, match="NaN or \\+inf scores for 1 of 1 users"):
        serve(model_tier(shop, faults, batchers), request_for(shop))


def test_an_error_fault_fails_the_model_tier_and_other_points_leave_it_alone(
    shop: Shop, faults: FaultStore, batchers: list[MicroBatcher]
) -> None:
    faults.add("fallback", "nan", ttl_s=60)
    assert len(serve(model_tier(shop, faults, batchers), request_for(shop)).items) == K
    faults.add("ranker", "error", ttl_s=60)
    with pytest.raises(InjectedFaultError, match="injected error at ranker"):
        serve(model_tier(shop, faults, batchers), request_for(shop))


def test_scores_of_the_wrong_shape_are_an_invalid_answer(
    faults: FaultStore, batchers: list[MicroBatcher]
) -> None:
    def too_narrow(histories: Ragged) -> np.ndarray:
        return np.ones((len(histories), 7), dtype=np.float32)

    batcher = MicroBatcher(too_narrow)
    batchers.append(batcher)
    tier = ModelTier(batcher, 30, FaultPoint(faults, "ranker"))
    with pytest.raises(InvalidAnswerError, match=r"shape \(1, 7\), expected \(1, 30\)"):
        serve(tier, TierRequest(np.array([1], dtype=np.int64), K))


# --- the cached tier -----------------------------------------------------------------------------


def cached_tier(faults: FaultStore | None = None) -> CachedTier:
    cache = LastGoodCache()
    cache.put(
        ("u1", None), CachedList(np.array([9, 4, 7, 2]), np.array([0.9, 0.8, 0.5, 0.1], dtype=np.float32))
    )
    return CachedTier(cache, faults=None if faults is None else CacheFaults(faults))


def skip_reason(tier: Tier, request: TierRequest) -> TierSkip:
    with pytest.raises(TierSkip) as caught:
        serve(tier, request)
    return caught.value


def test_the_cached_tier_serves_the_last_list_minus_what_was_seen_since() -> None:
    answer = serve(cached_tier(), TierRequest(np.array([4, 11]), k=2, user="u1"))
    assert answer.items.tolist() == [9, 7] and answer.scores.tolist() == pytest.approx([0.9, 0.5])


def test_the_cached_tier_misses_without_a_user_a_list_or_an_unseen_item() -> None:
    tier = cached_tier()
    anonymous = skip_reason(tier, TierRequest(np.array([1]), k=3))
    other_category = skip_reason(tier, TierRequest(np.array([1]), k=3, user="u1", category="c0"))
    all_seen = skip_reason(tier, TierRequest(np.array([2, 4, 7, 9]), k=3, user="u1"))
    assert [s.reason for s in (anonymous, other_category, all_seen)] == ["miss"] * 3
    assert str(anonymous) == "no last-good list for this user"
    assert str(all_seen) == "every cached item was seen since"


def test_an_empty_cache_fault_makes_every_lookup_miss(faults: FaultStore) -> None:
    tier = cached_tier(faults)
    request = TierRequest(np.array([1]), k=3, user="u1")
    assert serve(tier, request).items.tolist() == [9, 4, 7]
    faults.add("cache", "empty", ttl_s=60)
    skip = skip_reason(tier, request)
    assert skip.reason == "miss" and str(skip) == "the cache is emptied by a fault"


# --- the popularity tiers ------------------------------------------------------------------------

# Six items: 0, 1 shoes; 2, 3 hats (both under clothes); 4 garden; 5 without category.
COUNTS = np.array([10, 5, 8, 2, 3, 40])


def tree_snapshot() -> ShopSnapshot:
    return ShopSnapshot(
        item_ids=np.array([f"i{i}" for i in range(6)]),
        item_counts=COUNTS,
        item_category=np.array([0, 0, 1, 1, 3, -1], dtype=np.int32),
        category_names=("shoes", "hats", "clothes", "garden"),
        category_parent=np.array([2, 2, -1, -1], dtype=np.int32),
        user_ids=np.array(["u0"]),
        histories=Ragged.from_lists([[0]]),
    )


def test_category_popularity_scores_by_leaf_and_parent_category_shares() -> None:
    answer = serve(CategoryPopularityTier(tree_snapshot()), TierRequest(np.array([0]), k=6))
    prior = CATEGORY_PRIOR * COUNTS / COUNTS.sum()
    shoes = np.array([10, 5, 0, 0, 0, 0]) / 15  # share(i | shoes)
    clothes = np.array([10, 5, 8, 2, 0, 0]) / 25  # share(i | clothes), the parent
    expected = shoes + clothes + prior
    assert answer.items.tolist() == [1, 2, 3, 5, 4]  # item 0 was seen
    assert answer.scores == pytest.approx(expected[[1, 2, 3, 5, 4]].astype(np.float32), rel=1e-6)


def test_category_popularity_weighs_each_category_by_its_share_of_the_history() -> None:
    answer = serve(CategoryPopularityTier(tree_snapshot()), TierRequest(np.array([4, 5, 3]), k=3))
    # garden 1/3 (item 4), hats 1/3 and clothes 1/3 (item 3); item 5 has no category.
    assert answer.items.tolist() == [2, 0, 1]
    hats, clothes = 8 / 10, 8 / 25
    assert float(answer.scores[0]) == pytest.approx((hats + clothes) / 3 + CATEGORY_PRIOR * 8 / 68, rel=1e-6)


def test_category_popularity_skips_a_history_without_a_known_category() -> None:
    skip = skip_reason(CategoryPopularityTier(tree_snapshot()), TierRequest(np.array([5]), k=3))
    assert skip.reason == "no_category" and str(skip) == "no category known for the history"


def test_popularity_ranks_best_sellers_minus_the_history() -> None:
    answer = serve(PopularityTier(tree_snapshot()), TierRequest(np.array([5, 1]), k=10))
    assert answer.items.tolist() == [0, 2, 4, 3]
    assert answer.scores == pytest.approx((COUNTS[[0, 2, 4, 3]] / 68).astype(np.float32))


def test_popularity_answers_fewer_than_k_when_the_category_holds_fewer() -> None:
    snapshot = tree_snapshot()
    hats = snapshot.category_items("hats")
    assert hats is not None
    answer = serve(PopularityTier(snapshot), TierRequest(np.array([3]), k=5, allowed=hats))
    assert answer.items.tolist() == [2]
    clothes = snapshot.category_items("clothes")
    assert clothes is not None
    everything_seen = serve(
        PopularityTier(snapshot), TierRequest(np.array([0, 1, 2, 3]), k=5, allowed=clothes)
    )
    assert everything_seen.items.tolist() == [] and everything_seen.scores.tolist() == []


def test_popularity_serves_an_empty_history_and_a_shop_without_sales() -> None:
    assert serve(
        PopularityTier(tree_snapshot()), TierRequest(np.zeros(0, dtype=np.int64), k=2)
    ).items.tolist() == [5, 0]
    unsold = replace(tree_snapshot(), item_counts=np.zeros(6, dtype=np.int64))
    answer = serve(PopularityTier(unsold), TierRequest(np.array([0]), k=3))
    assert answer.items.tolist() == [1, 2, 3] and answer.scores.tolist() == [0.0, 0.0, 0.0]
