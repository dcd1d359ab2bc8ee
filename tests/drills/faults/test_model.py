"""Model faults from the catalogue against a live server: the primary's failures are seen by the
router (NaN scores refused as invalid, errors counted, late answers skipped) and answered by the
tiers below it; revert brings the primary back."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from recdrill.cli import main
from recdrill.drills.faults.catalogue import fault_type
from recdrill.drills.target import DrillTarget
from recdrill.serving.runtime.local_process import ServerProcess

DATA = "shopsim:n_items=600,n_users=500,n_events=10000"
KEY = "model-fault-key"
USERS = [f"U-{i:06d}" for i in range(20)]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    model = tmp_path_factory.mktemp("model-faults") / "model"
    assert main(["train", "--data", DATA, "--model", "itemknn", "--out", str(model)]) == 0
    with ServerProcess(model, model.parent / "state", admin_key=KEY) as running:
        yield running


@pytest.fixture
def target(server: ServerProcess) -> DrillTarget:
    return DrillTarget(server.url, KEY)


def served(target: DrillTarget) -> list[str]:
    with httpx.Client(base_url=target.base_url, timeout=10.0) as client:
        return [client.post("/v1/recommend", json={"user_id": u}).json()["served_by"] for u in USERS]


def skips(target: DrillTarget, reason: str) -> float:
    text = httpx.get(target.base_url + "/metrics").text
    for family in text_string_to_metric_families(text):
        if family.name == "recdrill_tier_skips":
            return sum(
                s.value
                for s in family.samples
                if s.name.endswith("_total") and s.labels == {"tier": "primary", "reason": reason}
            )
    return 0.0


def back_to_primary(target: DrillTarget) -> None:
    """After a revert the primary's breaker may be open for its cool-down: wait it out."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if served(target).count("primary") == len(USERS):
            return
        time.sleep(0.5)
    pytest.fail("the primary did not come back after the revert")


@pytest.mark.parametrize(
    ("name", "params", "reason"),
    [
        ("ranker-nan", {}, "invalid"),  # NaN scores: the answer is refused, the next tier answers
        ("ranker-error", {}, "error"),
        ("ranker-latency", {"latency_ms": 400}, "late"),  # past the 50 ms deadline
    ],
)
def test_a_faulted_primary_is_skipped_for_the_reason_and_comes_back(
    name: str, params: dict[str, object], reason: str, target: DrillTarget
) -> None:
    back_to_primary(target)
    ftype = fault_type(name)
    parsed = ftype.parse(params)
    before = skips(target, reason)
    handle = ftype.inject(target, parsed)
    try:
        tiers = served(target)
        assert "primary" not in tiers and set(tiers) <= {"cache", "category", "popular"}, tiers
        # Each request skipped the primary until the breaker opened; then it is skipped as "open".
        assert skips(target, reason) > before
        assert ftype.leftovers is not None and ftype.leftovers(target)
    finally:
        assert ftype.revert(target, parsed, handle) is None
    assert ftype.leftovers(target) == []
    back_to_primary(target)


def test_a_partial_error_rate_hits_only_some_calls(target: DrillTarget) -> None:
    back_to_primary(target)
    ftype = fault_type("ranker-error")
    parsed = ftype.parse({"rate": 0.0})
    handle = ftype.inject(target, parsed)
    try:
        assert served(target).count("primary") == len(USERS)  # rate 0: the fault is there, hits nothing
    finally:
        ftype.revert(target, parsed, handle)


@pytest.fixture(scope="module")
def server_with_fallback(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A primary with a second-tier model beside it (``<model>/fallback``)."""
    model = tmp_path_factory.mktemp("with-fallback") / "model"
    assert main(["train", "--data", DATA, "--model", "itemknn", "--out", str(model)]) == 0
    assert main(["train", "--data", DATA, "--model", "catpop", "--out", str(model / "fallback")]) == 0
    with ServerProcess(model, model.parent / "state", admin_key=KEY) as running:
        yield running


@pytest.mark.parametrize("name", ["fallback-error", "fallback-nan", "fallback-latency"])
def test_a_faulted_second_tier_passes_the_request_further_down(
    name: str, server_with_fallback: ServerProcess
) -> None:
    target = DrillTarget(server_with_fallback.url, KEY)
    down = fault_type("ranker-error")
    down_params = down.parse({})
    primary_down = down.inject(target, down_params)
    try:
        assert set(served(target)) == {"fallback"}  # the second tier answers while the primary fails
        ftype = fault_type(name)
        params = ftype.parse({"latency_ms": 400} if name == "fallback-latency" else {})
        handle = ftype.inject(target, params)
        try:
            tiers = served(target)
            assert "fallback" not in tiers and set(tiers) <= {"cache", "category", "popular"}, tiers
        finally:
            ftype.revert(target, params, handle)
        deadline = time.monotonic() + 15  # the second tier's breaker may wait out its cool-down
        while "fallback" not in served(target) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert "fallback" in served(target)
    finally:
        down.revert(target, down_params, primary_down)
    back_to_primary(target)
