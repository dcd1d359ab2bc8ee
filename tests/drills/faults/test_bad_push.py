"""The bad model push: the degraded copy of a trained model, and inject/revert on a scripted target."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from recdrill.cli import main
from recdrill.data.snapshot import ShopSnapshot
from recdrill.drills.faults.bad_push import degraded_model
from recdrill.drills.faults.catalogue import fault_type
from recdrill.drills.target import DrillTarget
from recdrill.errors import ArtifactFaultError, ConfigError, FaultUnavailableError
from recdrill.models.factory import load_model
from recdrill.models.popularity import PopularityRecommender
from tests.drills.test_target import KEY, FakeDeployment

DATA = "shopsim:n_items=80,n_users=60,n_events=800"
FAULT = fault_type("bad-model-push")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An item-kNN model with a second-tier model beside it (``fallback/``)."""
    out = tmp_path_factory.mktemp("bad-push") / "model"
    assert main(["train", "--data", DATA, "--model", "itemknn", "--out", str(out)]) == 0
    assert main(["train", "--data", DATA, "--model", "catpop", "--out", str(out / "fallback")]) == 0
    return out


@pytest.fixture
def fake() -> Iterator[FakeDeployment]:
    with FakeDeployment() as running:
        yield running


@pytest.fixture
def target(fake: FakeDeployment, model_dir: Path, tmp_path: Path) -> DrillTarget:
    return DrillTarget(fake.url, KEY, model_dir=model_dir, scratch_dir=tmp_path / "scratch")


def scratch_copies(target: DrillTarget) -> list[Path]:
    assert target.scratch_dir is not None
    return sorted(target.scratch_dir.glob("recdrill-bad-model-push-*")) if target.scratch_dir.is_dir() else []


# -- the degraded model -------------------------------------------------------------------------------


def test_the_degraded_model_is_popularity_over_shuffled_counts(model_dir: Path, tmp_path: Path) -> None:
    dest = degraded_model(model_dir, tmp_path / "bad", seed=3)
    model = load_model(dest)
    assert isinstance(model, PopularityRecommender)
    counts = ShopSnapshot.load(model_dir).item_counts.astype(np.float64)
    shuffled = np.random.default_rng(3).permutation(counts) + 1.0
    np.testing.assert_allclose(model.share_, shuffled / shuffled.sum(), rtol=1e-6)
    assert model.n_items_ == len(counts)


def test_the_degraded_model_keeps_the_catalogue_and_the_fallback(model_dir: Path, tmp_path: Path) -> None:
    source_files = {p: p.read_bytes() for p in model_dir.rglob("*") if p.is_file()}
    dest = degraded_model(model_dir, tmp_path / "bad", seed=0)
    source_meta = json.loads((model_dir / "model.json").read_text())
    meta = json.loads((dest / "model.json").read_text())
    assert meta["kind"] == "pop" and source_meta["kind"] == "itemknn"
    assert (meta["fingerprint"], meta["trained_on"]) == (
        source_meta["fingerprint"],
        source_meta["trained_on"],
    )
    assert (dest / "snapshot.npz").read_bytes() == (model_dir / "snapshot.npz").read_bytes()
    fallback = sorted(p.name for p in (dest / "fallback").iterdir())
    assert fallback == sorted(p.name for p in (model_dir / "fallback").iterdir())
    assert {p: p.read_bytes() for p in model_dir.rglob("*") if p.is_file()} == source_files  # untouched


def test_the_seed_decides_the_shuffle(model_dir: Path, tmp_path: Path) -> None:
    first = load_model(degraded_model(model_dir, tmp_path / "a", seed=1))
    again = load_model(degraded_model(model_dir, tmp_path / "b", seed=1))
    other = load_model(degraded_model(model_dir, tmp_path / "c", seed=2))
    assert isinstance(first, PopularityRecommender) and isinstance(again, PopularityRecommender)
    assert isinstance(other, PopularityRecommender)
    assert np.array_equal(first.share_, again.share_)
    assert not np.array_equal(first.share_, other.share_)
    assert np.allclose(np.sort(first.share_), np.sort(other.share_))  # the same counts, reordered


# -- inject and revert --------------------------------------------------------------------------------


def test_a_push_is_served_everywhere_and_revert_restores_the_version_before(
    fake: FakeDeployment, target: DrillTarget
) -> None:
    params = FAULT.parse({"seed": 4})
    handle = FAULT.inject(target, params)
    [body] = fake.seen("POST", "/admin/models/reload")
    pushed_folder = Path(body["model_dir"])
    assert pushed_folder.parent.parent == target.scratch_dir and (pushed_folder / "model.json").is_file()
    assert handle.observations == {"pushed_version": "pushed-1"}
    assert handle.served_after == {"?": "pushed-1"}
    assert FAULT.leftovers is not None
    assert FAULT.leftovers(target) == ["bad-model-push: injected and not reverted"]

    observed = FAULT.revert(target, params, handle)
    assert observed == {"pushed_version": "pushed-1", "restored_version": "v1", "restored": True}
    assert fake.seen("POST", "/admin/models/reload")[1:] == [{"version": "v1"}]
    assert target.model_version() == "v1"
    assert scratch_copies(target) == [] and FAULT.leftovers(target) == []
    assert FAULT.revert(target, params, handle) == observed  # a second revert changes nothing
    assert len(fake.seen("POST", "/admin/models/reload")) == 2


def test_a_given_model_folder_is_pushed_as_it_is(
    fake: FakeDeployment, target: DrillTarget, model_dir: Path
) -> None:
    params = FAULT.parse({"model_dir": str(model_dir / "fallback")})
    handle = FAULT.inject(target, params)
    assert fake.seen("POST", "/admin/models/reload") == [
        {"model_dir": str((model_dir / "fallback").resolve())}
    ]
    assert scratch_copies(target) == []  # nothing to copy
    assert FAULT.revert(target, params, handle)["restored"] is True  # type: ignore[index]


def test_a_folder_that_is_no_saved_model_is_refused_before_any_reload(
    fake: FakeDeployment, target: DrillTarget, tmp_path: Path
) -> None:
    params = FAULT.parse({"model_dir": str(tmp_path)})
    with pytest.raises(ArtifactFaultError, match=f"fault 'bad-model-push': {tmp_path} is not a saved model"):
        FAULT.inject(target, params)
    assert fake.seen("POST", "/admin/models/reload") == []
    assert FAULT.leftovers(target) == []  # type: ignore[misc]  # the half-done injection was undone


def test_a_refused_push_is_an_artifact_fault_and_leaves_no_copy(
    fake: FakeDeployment, target: DrillTarget
) -> None:
    fake.reload_status = {"model_dir": 422}
    with pytest.raises(ArtifactFaultError, match=r"the server refused the pushed model: HTTP 422 .*refused"):
        FAULT.inject(target, FAULT.parse({}))
    assert scratch_copies(target) == []
    assert FAULT.leftovers(target) == []  # type: ignore[misc]


def test_a_restore_the_server_refuses_keeps_the_copy_and_names_it(
    fake: FakeDeployment, target: DrillTarget
) -> None:
    params = FAULT.parse({})
    handle = FAULT.inject(target, params)
    fake.reload_status = {"version": 503, "configured": 503, "model_dir": 503}
    observed = FAULT.revert(target, params, handle)
    assert observed == {"pushed_version": "pushed-1", "restored_version": None, "restored": False}
    assert len(scratch_copies(target)) == 1  # a worker may still serve from it
    assert FAULT.leftovers(target) == [  # type: ignore[misc]
        f"bad-model-push: scratch copy left at {handle.scratch}",
        "bad-model-push: serving ['pushed-1'], not v1 as before the fault",
    ]
    fake.reload_status = {}
    target.restore_model("v1")
    assert handle.scratch is not None
    shutil.rmtree(handle.scratch)  # what a person would do, having read the leftover
    assert FAULT.leftovers(target) == []  # type: ignore[misc]


def test_a_bad_push_needs_the_model_folder_and_a_valid_seed(fake: FakeDeployment) -> None:
    with pytest.raises(FaultUnavailableError, match="fault 'bad-model-push' needs the served model's folder"):
        FAULT.inject(DrillTarget(fake.url, KEY), FAULT.parse({}))
    with pytest.raises(ConfigError, match="fault 'bad-model-push': seed: Input should be greater than"):
        FAULT.parse({"seed": -1})
    with pytest.raises(ConfigError, match="fault 'bad-model-push': model_dir: String should have at least"):
        FAULT.parse({"model_dir": ""})
