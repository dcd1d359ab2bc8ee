"""Last-good cache faults against a real one-worker server on 127.0.0.1, through the catalogue.

One worker: the last-good cache is per worker process, so "a user answered once" must mean "by
this worker". ``cache-stale``: users answered before get ``served_by: cache`` with a healthy
primary, new users still get the primary. ``cache-empty`` with the ranker failing: answers fall to
category or global popularity, never the cache, and what was answered meanwhile was not stored.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from recdrill.cli import main
from recdrill.data.snapshot import ShopSnapshot
from recdrill.drills.faults.catalogue import fault_type
from recdrill.drills.target import DrillTarget
from recdrill.serving.runtime.local_process import ServerProcess

DATA = "shopsim:n_items=600,n_users=500,n_events=10000"
KEY = "cache-drill-admin-key"
POPULARITY = {"category", "popular"}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cache") / "model"
    assert main(["train", "--data", DATA, "--model", "itemknn", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def server(model_dir: Path) -> Iterator[ServerProcess]:
    # A generous deadline: on a busy machine a late primary would look like a cache answer's cause.
    state = model_dir.parent / "state"
    with ServerProcess(model_dir, state, admin_key=KEY, deadline_ms=2000.0, extra_args=["--no-monitor"]) as s:
        yield s


@pytest.fixture(scope="module")
def target(server: ServerProcess) -> DrillTarget:
    return DrillTarget(server.url, KEY, verify=server.verify)


@pytest.fixture(scope="module")
def items(model_dir: Path) -> list[str]:
    return [str(i) for i in ShopSnapshot.load(model_dir).item_ids[:40]]


@pytest.fixture
def api(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        yield client


def served_by(api: httpx.Client, user: str, history: list[str]) -> str:
    response = api.post("/v1/recommend", json={"user_id": user, "history": history, "k": 5})
    assert response.status_code == 200, response.text
    return str(response.json()["served_by"])


class Active:
    """A catalogue fault injected now and reverted (twice: must be safe) on exit."""

    def __init__(self, target: DrillTarget, name: str, params: dict[str, Any]) -> None:
        self.target, self.fault = target, fault_type(name)
        self.params = self.fault.parse(params)

    def __enter__(self) -> Active:
        self.handle = self.fault.inject(self.target, self.params)
        return self

    def __exit__(self, *_: object) -> None:
        self.fault.revert(self.target, self.params, self.handle)
        self.fault.revert(self.target, self.params, self.handle)
        assert self.leftovers() == []

    def leftovers(self) -> list[str]:
        assert self.fault.leftovers is not None
        return self.fault.leftovers(self.target)


def until_primary(api: httpx.Client, user: str, history: list[str], timeout_s: float = 30.0) -> None:
    """After a ranker fault the primary's breaker stays open a while: wait for it to close."""
    deadline = time.monotonic() + timeout_s
    while served_by(api, user, history) != "primary":
        assert time.monotonic() < deadline, "the primary did not answer again"
        time.sleep(0.2)


def test_stale_cache_answers_first_for_users_it_holds(
    api: httpx.Client, target: DrillTarget, items: list[str]
) -> None:
    users = [f"stale-user-{n}" for n in range(5)]
    for n, user in enumerate(users):
        assert served_by(api, user, items[n : n + 3]) == "primary"  # answered once: now cached
    with Active(target, "cache-stale", {"ttl_s": 60}) as active:
        assert active.leftovers() != []
        for n, user in enumerate(users):  # newer actions: the stale list answers regardless
            assert served_by(api, user, items[n : n + 3] + items[20 + n : 22 + n]) == "cache"
        assert served_by(api, "stale-newcomer", items[10:13]) == "primary"  # not held: the model
    for n, user in enumerate(users):
        assert served_by(api, user, items[n : n + 3]) == "primary"


def test_empty_cache_with_a_failing_ranker_falls_to_popularity(
    api: httpx.Client, target: DrillTarget, items: list[str]
) -> None:
    cached = [f"empty-user-{n}" for n in range(4)]
    for n, user in enumerate(cached):
        assert served_by(api, user, items[n : n + 3]) == "primary"
    with Active(target, "cache-empty", {"ttl_s": 60}):  # the ranker is healthy: answers, not stored
        assert served_by(api, "empty-newcomer", items[30:33]) == "primary"
    with Active(target, "ranker-error", {"rate": 1.0, "ttl_s": 60}):
        # The control: without cache-empty the cached users get their last-good list...
        assert {served_by(api, u, items[n : n + 3]) for n, u in enumerate(cached)} == {"cache"}
        # ...and the user answered during cache-empty was never stored.
        assert served_by(api, "empty-newcomer", items[30:33]) in POPULARITY
        with Active(target, "cache-empty", {"ttl_s": 60}) as active:
            assert active.leftovers() != []
            for n, user in enumerate(cached):
                assert served_by(api, user, items[n : n + 3]) in POPULARITY
    until_primary(api, cached[0], items[0:3])


def test_cache_faults_are_listed_by_the_catalogue() -> None:
    for name in ("cache-empty", "cache-stale"):
        described = fault_type(name).describe()
        assert described["kind"] == "ml" and set(described["params"]) == {"rate", "ttl_s"}
