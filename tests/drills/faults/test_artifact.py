"""Artifact faults against a real two-worker server with a registry: corrupt, unsigned and wrongly
signed models are refused on every worker; a bad model push is accepted, drops NDCG@10, and is
undone by revert. The second worker sees reloads only through the pointer file, so a version kept
on both workers means the refusal was not published to it either.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from recdrill._home import HOME_ENV
from recdrill.cli import main
from recdrill.data.loading import load_dataset
from recdrill.data.splits import leave_one_out
from recdrill.drills.faults.catalogue import fault_type
from recdrill.drills.replayer import ReplayPlan
from recdrill.drills.target import DrillTarget
from recdrill.errors import ConfigError, FaultUnavailableError
from recdrill.eval.metrics import ndcg_of_item
from recdrill.registry import Registry, init_keys
from recdrill.registry.keys import KeyFiles
from recdrill.serving.runtime.local_process import ServerProcess

DATA = "shopsim:n_items=600,n_users=500,n_events=10000"
KEY = "artifact-fault-key"
QUALITY_USERS = 200


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The server's registry: keys made, then the private signing key moved out, so the server
    verifies with the public key alone (as a serving host should)."""
    root = tmp_path_factory.mktemp("registry-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(HOME_ENV, str(root))
        patch.delenv("RECDRILL_MODEL_VERSION", raising=False)
        init_keys(root)
        Registry(root)  # creates registry.db
        KeyFiles(root).signing.rename(root.parent / f"{root.name}-signing.pem")
        yield root


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("artifact") / "model"
    assert main(["train", "--data", DATA, "--model", "itemknn", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def server(home: Path, model_dir: Path) -> Iterator[ServerProcess]:
    with ServerProcess(model_dir, model_dir.parent / "state", admin_key=KEY, workers=2) as running:
        running.answering_pids(set(running.worker_pids()))  # both workers loaded before any fault
        yield running


@pytest.fixture
def target(server: ServerProcess, model_dir: Path, tmp_path: Path) -> DrillTarget:
    return DrillTarget(
        server.url, KEY, workers=server, model_dir=model_dir, local=True, scratch_dir=tmp_path / "scratch"
    )


@pytest.fixture(scope="module")
def plan() -> ReplayPlan:
    return ReplayPlan.from_fold(leave_one_out(load_dataset(DATA)).test)


def both_workers(target: DrillTarget) -> dict[str, str]:
    seen = target.served_versions(probes=60)
    assert len(seen) == 2, f"expected answers from both workers, got {seen}"
    return seen


def mean_ndcg(target: DrillTarget, plan: ReplayPlan) -> float:
    """NDCG@10 of what the server answers now, over the first users of the plan."""
    total = 0.0
    with httpx.Client(base_url=target.base_url, timeout=10.0) as client:
        for user, true_next in list(zip(plan.user_ids, plan.targets, strict=True))[:QUALITY_USERS]:
            answer = client.post("/v1/recommend", json={"user_id": user})
            assert answer.status_code == 200 and answer.json()["served_by"] == "primary", answer.text
            total += ndcg_of_item([i["item_id"] for i in answer.json()["items"]], true_next)
    return total / QUALITY_USERS


@pytest.mark.parametrize("mode", ["truncate", "flip-bytes"])
def test_corrupt_artifact_is_refused_and_both_workers_keep_it(target: DrillTarget, mode: str) -> None:
    fault = fault_type("corrupt-artifact")
    params = fault.parse({"mode": mode})
    before = both_workers(target)
    assert len(set(before.values())) == 1
    handle = fault.inject(target, params)
    assert handle.status == 422 and handle.reason == "invalid model"
    copy = handle.scratch
    assert copy is not None and copy.parent == target.scratch_dir and copy.is_dir()
    assert fault.leftovers is not None
    assert fault.leftovers(target) == ["corrupt-artifact: injected and not reverted"]
    time.sleep(2.5)  # past the followers' 1 s poll: a published refusal would have reached worker 2
    assert both_workers(target) == before
    observed = fault.revert(target, params, handle)
    assert observed == {"refused": True, "status": 422, "reason": "invalid model", "version_kept": True}
    assert fault.revert(target, params, handle) == observed  # twice is harmless
    assert not copy.exists()
    assert fault.leftovers(target) == []


@pytest.mark.parametrize(
    ("name", "reason"),
    [("unsigned-artifact", "unsigned"), ("wrongly-signed-artifact", "signed by another key")],
)
def test_badly_signed_versions_are_refused_for_their_reason(
    target: DrillTarget, home: Path, name: str, reason: str
) -> None:
    fault = fault_type(name)
    params = fault.parse({})
    before = both_workers(target)
    handle = fault.inject(target, params)
    assert handle.pushed is not None and handle.registry_home == home
    assert handle.status == 422 and handle.reason == reason
    assert Registry(home).show(handle.pushed).stage.value == "candidate"
    assert both_workers(target) == before
    observed = fault.revert(target, params, handle)
    assert observed == {
        "pushed_version": handle.pushed,
        "refused": True,
        "status": 422,
        "reason": reason,
        "version_kept": True,
    }
    assert Registry(home).show(handle.pushed).stage.value == "archived"
    assert fault.leftovers is not None and fault.leftovers(target) == []
    assert target.scratch_dir is not None and not any(target.scratch_dir.iterdir())


def test_bad_model_push_drops_quality_until_reverted(target: DrillTarget, plan: ReplayPlan) -> None:
    fault = fault_type("bad-model-push")
    params = fault.parse({"seed": 3})
    before = both_workers(target)
    (version,) = set(before.values())
    baseline = mean_ndcg(target, plan)
    assert baseline > 0.05, f"the served model should be useful: NDCG@10 {baseline:.3f}"
    handle = fault.inject(target, params)
    pushed = handle.observations["pushed_version"]
    assert pushed != version and pushed.startswith("pop-")
    assert set(both_workers(target).values()) == {pushed}  # the second worker followed the pointer
    degraded = mean_ndcg(target, plan)
    assert degraded < 0.3 * baseline, f"NDCG@10 {baseline:.3f} -> {degraded:.3f} while pushed"
    assert fault.leftovers is not None
    assert fault.leftovers(target) == ["bad-model-push: injected and not reverted"]
    observed = fault.revert(target, params, handle)
    assert observed == {"pushed_version": pushed, "restored_version": version, "restored": True}
    assert both_workers(target) == before
    assert mean_ndcg(target, plan) == pytest.approx(baseline, abs=1e-9)
    assert handle.scratch is not None and not handle.scratch.exists()
    assert fault.leftovers(target) == []


def test_faults_say_what_they_need_and_refuse_bad_params(server: ServerProcess, tmp_path: Path) -> None:
    bare = DrillTarget(server.url, KEY)
    for name in ("corrupt-artifact", "bad-model-push", "unsigned-artifact"):
        fault = fault_type(name)
        with pytest.raises(FaultUnavailableError, match=f"fault {name!r} needs"):
            fault.inject(bare, fault.parse({}))
    local = DrillTarget(server.url, KEY, model_dir=tmp_path, local=True)
    fault = fault_type("wrongly-signed-artifact")
    with pytest.raises(FaultUnavailableError, match=f"no registry at {tmp_path}"):
        fault.inject(local, fault.parse({"registry_home": str(tmp_path)}))
    with pytest.raises(ConfigError, match="fault 'corrupt-artifact': mode: "):
        fault_type("corrupt-artifact").parse({"mode": "shred"})
    with pytest.raises(ConfigError, match="fault 'bad-model-push': seed: "):
        fault_type("bad-model-push").parse({"seed": -1})


def test_the_servers_registry_is_found_from_its_workers_environment(
    target: DrillTarget, home: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path_factory.mktemp("other-registry")
    init_keys(other)
    Registry(other)
    fault = fault_type("wrongly-signed-artifact")
    with pytest.raises(FaultUnavailableError, match=f"reads the registry at {home}, not {other}"):
        fault.inject(target, fault.parse({"registry_home": str(other)}))
    monkeypatch.setenv(HOME_ENV, str(other))  # this process's registry is not the server's
    handle = fault.inject(target, fault.parse({}))
    assert handle.registry_home == home and handle.reason == "signed by another key"
    assert fault.revert(target, fault.parse({}), handle)["refused"] is True
    assert Registry(other).list() == []  # nothing pushed where the server would not look


def test_leftovers_name_a_scratch_copy_left_by_a_dead_drill(target: DrillTarget) -> None:
    assert target.scratch_dir is not None
    stray = target.scratch_dir / "recdrill-corrupt-artifact-dead"
    stray.mkdir(parents=True)
    leftovers = fault_type("corrupt-artifact").leftovers
    assert leftovers is not None
    assert leftovers(target) == [f"corrupt-artifact: scratch copy left at {stray}"]
    stray.rmdir()
    assert leftovers(target) == []
