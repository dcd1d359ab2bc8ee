"""What each artifact injection left behind (scratch copies, pushed versions, the version served
before), kept in a module ledger so that ``leftovers(target)`` can name what a revert did not clean.

Shared by :mod:`recdrill.drills.faults.artifact` (refused loads) and
:mod:`recdrill.drills.faults.bad_push` (an accepted regression).
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recdrill.drills.target import DrillTarget
from recdrill.errors import FaultUnavailableError, RecdrillError


@dataclass
class ArtifactHandle:
    """One injection: what it changed, for revert and for the leftovers check."""

    fault: str
    base_url: str
    version_before: str
    scratch: Path | None = None  # owned scratch folder, deleted on revert
    pushed: str | None = None  # a registry version pushed for the fault
    registry_home: Path | None = None
    status: int | None = None  # what the reload answered
    reason: str | None = None
    served_after: dict[str, str] = field(default_factory=dict)
    reverted: bool = False
    observations: dict[str, Any] = field(default_factory=dict)


_LEDGER: list[ArtifactHandle] = []
_LEDGER_LOCK = threading.Lock()


def start_handle(target: DrillTarget, fault: str) -> ArtifactHandle:
    """Note the version served now, and put the new handle in the ledger."""
    version = target.model_version()
    if version is None:
        raise FaultUnavailableError(f"fault {fault!r}: the target's /readyz names no model version")
    handle = ArtifactHandle(fault, target.base_url, version)
    with _LEDGER_LOCK:
        _LEDGER.append(handle)
    return handle


def scratch_folder(target: DrillTarget, handle: ArtifactHandle) -> Path:
    """A fresh folder the handle owns, under ``target.scratch_dir`` when the drill gave one."""
    if target.scratch_dir is not None:
        target.scratch_dir.mkdir(parents=True, exist_ok=True)
    handle.scratch = Path(tempfile.mkdtemp(prefix=f"recdrill-{handle.fault}-", dir=target.scratch_dir))
    return handle.scratch


def archive_pushed(handle: ArtifactHandle) -> None:
    from recdrill.registry.registry import Registry

    if handle.pushed is not None and handle.registry_home is not None:
        Registry(handle.registry_home).archive(handle.pushed, f"drill fault {handle.fault}")


@contextmanager
def undone_on_error(handle: ArtifactHandle) -> Iterator[None]:
    """An injection that fails half-way removes its scratch copy and archives what it pushed, so
    the drill need not revert what it never got a handle for."""
    try:
        yield
    except BaseException:
        handle.reverted = True
        remove_scratch(handle)
        with suppress(RecdrillError):  # the leftovers check names a version left unarchived
            archive_pushed(handle)
        raise


def remove_scratch(handle: ArtifactHandle) -> None:
    if handle.scratch is not None:
        shutil.rmtree(handle.scratch, ignore_errors=True)


def finish(target: DrillTarget, handle: ArtifactHandle) -> None:
    """Close a revert: scratch removed; a handle that left nothing behind leaves the ledger."""
    remove_scratch(handle)
    handle.reverted = True
    if not problems(target, handle):
        with _LEDGER_LOCK:
            _LEDGER.remove(handle)


def leftovers_of(name: str) -> Callable[[DrillTarget], list[str]]:
    def leftovers(target: DrillTarget) -> list[str]:
        """What injections of this fault on the target left: faults not reverted, scratch copies,
        pushed versions not archived, a served version other than the one before."""
        with _LEDGER_LOCK:
            mine = [h for h in _LEDGER if h.fault == name and h.base_url == target.base_url]
        found: list[str] = []
        for handle in mine:
            left = problems(target, handle)
            found += left
            if handle.reverted and not left:  # clean now: forget it
                with _LEDGER_LOCK:
                    _LEDGER.remove(handle)
        known = {h.scratch for h in mine}
        if target.scratch_dir is not None and target.scratch_dir.is_dir():  # copies of dead drills too
            found += [
                f"{name}: scratch copy left at {stray}"
                for stray in target.scratch_dir.glob(f"recdrill-{name}-*")
                if stray not in known
            ]
        return found

    return leftovers


def problems(target: DrillTarget, handle: ArtifactHandle) -> list[str]:
    name = handle.fault
    if not handle.reverted:
        return [f"{name}: injected and not reverted"]
    found = []
    if handle.scratch is not None and handle.scratch.exists():
        found.append(f"{name}: scratch copy left at {handle.scratch}")
    if handle.pushed is not None and handle.registry_home is not None:
        from recdrill.registry.registry import Registry

        stage = Registry(handle.registry_home).show(handle.pushed).stage.value
        if stage != "archived":
            found.append(f"{name}: registry version {handle.pushed} is still {stage}")
    versions = set(target.served_versions().values())
    if versions != {handle.version_before}:
        found.append(f"{name}: serving {sorted(versions)}, not {handle.version_before} as before the fault")
    return found
