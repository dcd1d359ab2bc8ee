"""The artifact ledger: handles, scratch folders, undoing half-done injections, leftovers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from recdrill.cli import main
from recdrill.drills.faults._artifact_ledger import (
    archive_pushed,
    finish,
    leftovers_of,
    problems,
    remove_scratch,
    scratch_folder,
    start_handle,
    undone_on_error,
)
from recdrill.drills.target import DrillTarget
from recdrill.errors import FaultUnavailableError
from recdrill.registry import Registry, init_keys
from tests.drills.test_target import KEY, FakeDeployment


@pytest.fixture
def fake() -> Iterator[FakeDeployment]:
    with FakeDeployment() as running:
        yield running


@pytest.fixture
def target(fake: FakeDeployment, tmp_path: Path) -> DrillTarget:
    return DrillTarget(fake.url, KEY, scratch_dir=tmp_path / "scratch")


@pytest.fixture
def name() -> str:
    """A fault name of this test's own: the ledger is shared by the whole process."""
    return f"ledger-test-{uuid.uuid4().hex[:8]}"


def test_a_handle_notes_the_version_served_before_and_is_not_reverted(target: DrillTarget, name: str) -> None:
    handle = start_handle(target, name)
    assert (handle.fault, handle.base_url, handle.version_before) == (name, target.base_url, "v1")
    assert handle.reverted is False and handle.scratch is None and handle.pushed is None
    assert leftovers_of(name)(target) == [f"{name}: injected and not reverted"]
    assert problems(target, handle) == [f"{name}: injected and not reverted"]


def test_a_target_that_names_no_version_cannot_start_a_handle(
    fake: FakeDeployment, target: DrillTarget, name: str
) -> None:
    fake.version = None
    with pytest.raises(FaultUnavailableError, match=f"fault '{name}': the target's /readyz names no model"):
        start_handle(target, name)
    assert leftovers_of(name)(target) == []


def test_the_scratch_folder_is_fresh_under_the_targets_scratch_dir(target: DrillTarget, name: str) -> None:
    handle = start_handle(target, name)
    first = scratch_folder(target, handle)
    assert first.parent == target.scratch_dir and first.name.startswith(f"recdrill-{name}-")
    assert first.is_dir() and list(first.iterdir()) == [] and handle.scratch == first
    second = scratch_folder(target, start_handle(target, name))
    assert second != first


def test_finish_removes_the_scratch_and_forgets_a_clean_handle(target: DrillTarget, name: str) -> None:
    handle = start_handle(target, name)
    folder = scratch_folder(target, handle)
    (folder / "model.json").write_text("{}")
    finish(target, handle)
    assert not folder.exists() and handle.reverted is True
    assert problems(target, handle) == []
    assert leftovers_of(name)(target) == []


def test_a_revert_that_left_another_version_served_stays_a_leftover(
    fake: FakeDeployment, target: DrillTarget, name: str
) -> None:
    handle = start_handle(target, name)
    fake.serve("pushed-1")
    finish(target, handle)
    expected = [f"{name}: serving ['pushed-1'], not v1 as before the fault"]
    assert leftovers_of(name)(target) == expected
    assert leftovers_of(name)(target) == expected  # kept until it is clean
    fake.serve("v1")
    assert leftovers_of(name)(target) == []  # clean now: forgotten
    fake.serve("pushed-1")
    assert leftovers_of(name)(target) == []


def test_a_scratch_copy_left_behind_is_named(target: DrillTarget, name: str) -> None:
    handle = start_handle(target, name)
    folder = scratch_folder(target, handle)
    handle.reverted = True
    assert leftovers_of(name)(target) == [f"{name}: scratch copy left at {folder}"]
    remove_scratch(handle)
    assert leftovers_of(name)(target) == []


def test_scratch_copies_of_dead_drills_are_named_too(target: DrillTarget, name: str) -> None:
    assert target.scratch_dir is not None
    stray = target.scratch_dir / f"recdrill-{name}-abc123"
    stray.mkdir(parents=True)
    (target.scratch_dir / "recdrill-other-fault-x").mkdir()
    assert leftovers_of(name)(target) == [f"{name}: scratch copy left at {stray}"]


def test_an_injection_that_fails_half_way_is_undone(target: DrillTarget, name: str) -> None:
    handle = start_handle(target, name)
    with pytest.raises(RuntimeError, match="reload failed"), undone_on_error(handle):
        folder = scratch_folder(target, handle)
        raise RuntimeError("reload failed")
    assert handle.reverted is True and not folder.exists()
    assert leftovers_of(name)(target) == []


def test_undone_on_error_leaves_a_successful_injection_alone(target: DrillTarget, name: str) -> None:
    handle = start_handle(target, name)
    with undone_on_error(handle):
        folder = scratch_folder(target, handle)
    assert handle.reverted is False and folder.is_dir()
    finish(target, handle)


def test_handles_of_other_targets_are_not_this_targets_leftovers(
    target: DrillTarget, name: str, tmp_path: Path
) -> None:
    start_handle(target, name)
    with FakeDeployment() as other:
        assert leftovers_of(name)(DrillTarget(other.url, KEY)) == []
    assert leftovers_of(name)(target) == [f"{name}: injected and not reverted"]


def test_archiving_without_a_pushed_version_does_nothing(
    target: DrillTarget, name: str, tmp_path: Path
) -> None:
    handle = start_handle(target, name)
    handle.registry_home = tmp_path / "no-registry-here"
    archive_pushed(handle)  # nothing pushed: the registry is not even opened
    assert not handle.registry_home.exists()
    finish(target, handle)


# -- versions pushed to a real registry ---------------------------------------------------------------


@pytest.fixture(scope="module")
def pushed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A registry home with one candidate version, pushed from a tiny trained model."""
    root = tmp_path_factory.mktemp("ledger-registry")
    model = root / "model"
    assert (
        main(
            [
                "train",
                "--data",
                "shopsim:n_items=80,n_users=60,n_events=800",
                "--model",
                "pop",
                "--out",
                str(model),
            ]
        )
        == 0
    )
    home = root / "home"
    init_keys(home)
    return home, Registry(home).push(model).version


def test_a_pushed_version_left_unarchived_is_named_until_archived(
    target: DrillTarget, name: str, pushed: tuple[Path, str]
) -> None:
    home, version = pushed
    handle = start_handle(target, name)
    handle.pushed, handle.registry_home = version, home
    handle.reverted = True
    assert leftovers_of(name)(target) == [f"{name}: registry version {version} is still candidate"]
    archive_pushed(handle)
    assert Registry(home).show(version).stage.value == "archived"
    assert leftovers_of(name)(target) == []
    archive_pushed(handle)  # archived already: harmless
