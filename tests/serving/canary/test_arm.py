"""The candidate arm: its spec, the sticky share of users it takes, and the chain it serves in."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from recdrill.data.dataset import Dataset
from recdrill.data.snapshot import ShopSnapshot
from recdrill.errors import ConfigError
from recdrill.models.itemknn import ItemKNNRecommender
from recdrill.serving.cache import LastGoodCache
from recdrill.serving.canary.arm import ArmChoice, CanarySpec, CandidateArm
from recdrill.serving.canary.judge import CanaryJudge
from recdrill.serving.config import ServeConfig
from recdrill.serving.fault_points import FaultStore
from recdrill.serving.generation import SHARES, Generation, WorkerResources, load_generation
from recdrill.serving.metrics import ServingMetrics
from recdrill.serving.tiers import TierRequest
from tests.conftest import make_shop

USERS = [f"U-{i:05d}" for i in range(4000)]


def chain_shop(n_items: int) -> Dataset:
    rng = np.random.default_rng(3)
    starts = rng.integers(0, n_items - 6, size=60)
    return make_shop(
        [list(range(s, s + 5)) for s in starts], n_items=n_items, categories=[i % 2 for i in range(n_items)]
    )


def save(dataset: Dataset, folder: Path, neighbours: int) -> Path:
    ItemKNNRecommender(neighbours=neighbours).fit(dataset).save(folder)
    ShopSnapshot.from_dataset(dataset).save(folder)
    return folder


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    shop = chain_shop(20)
    return {
        "primary": save(shop, root / "primary", neighbours=10),
        "candidate": save(shop, root / "candidate", neighbours=2),
        "other catalogue": save(chain_shop(24), root / "other", neighbours=10),
    }


@pytest.fixture
def resources(tmp_path: Path) -> Iterator[WorkerResources]:
    faults = FaultStore(tmp_path / "faults.db")
    config = ServeConfig(tmp_path / "unused", tmp_path, deadline_ms=1000.0)
    yield WorkerResources(config, ServingMetrics(), faults, LastGoodCache())
    faults.close()


@pytest.fixture
def generations(folders: dict[str, Path], resources: WorkerResources) -> Iterator[dict[str, Generation]]:
    loaded = {name: load_generation(folder, resources) for name, folder in folders.items()}
    yield loaded
    for generation in loaded.values():
        generation.close()


def arm(generations: dict[str, Generation], resources: WorkerResources, share: float = 0.25) -> CandidateArm:
    return CandidateArm(
        CanarySpec(generations["candidate"].version, share), generations["candidate"], resources
    )


# --- the spec ------------------------------------------------------------------------------------


@pytest.mark.parametrize("share", [0.0, -0.1, 1.01, float("nan")])
def test_a_share_outside_zero_to_one_is_refused(share: float) -> None:
    with pytest.raises(ConfigError, match=r"canary share must be in \(0, 1\], got"):
        CanarySpec("v2", share)


def test_a_spec_round_trips_through_its_record() -> None:
    spec = CanarySpec("v2", 1.0, mode="shadow", auto_promote=True, judge=CanaryJudge(min_samples=50, z=1.645))
    record = spec.to_record()
    assert record["judge"]["min_samples"] == 50 and record["share"] == 1.0
    assert CanarySpec.from_record(record) == spec
    assert CanarySpec.from_record({"version": "v3", "share": 0.5}) == CanarySpec("v3", 0.5)


def test_a_bad_judge_in_a_record_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"min_samples.*must be an int >= 2, got 1"):
        CanarySpec.from_record({"version": "v2", "share": 0.5, "judge": {"min_samples": 1}})


# --- the users it takes --------------------------------------------------------------------------


def test_the_share_of_users_taken_is_sticky_and_close_to_the_asked_share(
    generations: dict[str, Generation], resources: WorkerResources
) -> None:
    candidate = arm(generations, resources, share=0.25)
    taken = {user for user in USERS if candidate.takes(user)}
    assert 0.22 < len(taken) / len(USERS) < 0.28  # 4000 draws: the standard deviation is 0.007
    assert taken == {user for user in USERS if candidate.takes(user)}  # the same users every time
    assert candidate.takes(None) is False  # anonymous requests stay with the primary


def test_a_full_share_takes_every_user(
    generations: dict[str, Generation], resources: WorkerResources
) -> None:
    assert all(arm(generations, resources, share=1.0).takes(user) for user in USERS[:500])


def test_another_version_draws_other_users(
    generations: dict[str, Generation], resources: WorkerResources
) -> None:
    first = CandidateArm(CanarySpec("v2", 0.25), generations["candidate"], resources)
    second = CandidateArm(CanarySpec("v3", 0.25), generations["candidate"], resources)
    first_users = {u for u in USERS if first.takes(u)}
    second_users = {u for u in USERS if second.takes(u)}
    overlap = len(first_users & second_users) / len(first_users)
    assert 0.18 < overlap < 0.32  # independent draws: about a quarter, not all of them


# --- the chain it serves in ----------------------------------------------------------------------


def test_the_candidate_takes_only_the_primary_tiers_place(
    generations: dict[str, Generation], resources: WorkerResources
) -> None:
    primary, candidate = generations["primary"], arm(generations, resources)
    router = candidate.router(primary)
    assert router is not None
    assert router.routes[0].tier is generations["candidate"].router.routes[0].tier is candidate.tier
    assert router.routes[1:] == primary.router.routes[1:]  # fallback, cache, category: the primary's own
    assert router.last is primary.popular and router.deadline_s == primary.router.deadline_s
    assert router.routes[0].share == SHARES["primary"]
    assert router.routes[0].breaker is resources.breakers["canary"]  # not the primary's breaker
    assert resources.breakers["canary"] is not resources.breakers["primary"]
    assert candidate.router(primary) is router  # built once per primary generation


def test_requests_through_the_candidate_chain_get_the_candidates_ranking(
    generations: dict[str, Generation], resources: WorkerResources
) -> None:
    router = arm(generations, resources).router(generations["primary"])
    assert router is not None
    history = np.array([3, 4, 5], dtype=np.int64)
    routed = asyncio.run(router.route(TierRequest(history, k=5)))
    expected = generations["candidate"].model.recommend([history.tolist()], k=5).items[0]
    assert routed.served_by == "primary" and routed.answer.items.tolist() == expected.tolist()
    primary_answer = asyncio.run(generations["primary"].router.route(TierRequest(history, k=5)))
    assert (
        primary_answer.answer.items.tolist()
        == generations["primary"].model.recommend([[3, 4, 5]], k=5).items[0].tolist()
    )


def test_a_primary_with_another_catalogue_gets_no_candidate_chain(
    generations: dict[str, Generation], resources: WorkerResources, caplog: pytest.LogCaptureFixture
) -> None:
    candidate = arm(generations, resources)
    assert candidate.router(generations["other catalogue"]) is None
    assert "the primary's catalogue changed; serving the primary" in caplog.text
    assert candidate.router(generations["primary"]) is not None  # rebuilt for a matching primary


def test_an_arm_choice_defaults_to_no_shadow(generations: dict[str, Generation]) -> None:
    choice = ArmChoice("primary", generations["primary"].version, generations["primary"].router)
    assert choice.shadow is False and choice.arm == "primary"
