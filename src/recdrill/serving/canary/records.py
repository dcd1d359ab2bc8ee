"""What a canary leaves outside its worker: the pointer file its peers follow, its registry stage.

The pointer (``canary.json`` in the state folder) works as ``served_model.json`` does for reloads
(``reload.py``): the worker that starts, stops, rolls back or promotes a canary replaces the file
atomically with a record naming its server group, and every worker of that server looks at it
about once a second. A record from another server (an earlier run) is ignored.

Registry stages follow the canary's life: candidate -> canary when it starts, back to candidate when
an operator stops it, archived when the judge rolls it back (``Registry.archive``, idempotent, so two
workers deciding at once record it once), production when it is promoted. These writes happen
after serving has changed; a failure is logged and does not undo the serving change.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from recdrill.contract import CANARY_FILE
from recdrill.errors import StageError
from recdrill.registry.registry import Registry
from recdrill.registry.stages import Stage

log = logging.getLogger(__name__)


class CanaryPointer:
    """The canary record one server's workers share: ``{"active", "spec", "reason"}`` and more."""

    def __init__(self, state_dir: Path, group: str) -> None:
        self.path = state_dir / CANARY_FILE
        self.group = group

    def publish(self, spec: dict[str, Any], *, active: bool, reason: str) -> str | None:
        """Write the record; its key (what :meth:`read` will give for it), or None if not written."""
        record = {"group": self.group, "active": active, "spec": spec, "reason": reason, "at": time.time()}
        temporary = self.path.with_suffix(f".{os.getpid()}.tmp")
        try:
            temporary.write_text(json.dumps(record))
            os.replace(temporary, self.path)  # atomic: peers read the old record or the new one
        except OSError as exc:  # this worker acted; only its peers will not follow
            log.error("could not record the canary change for other workers in %s: %s", self.path, exc)
            return None
        return record_identity(record)

    def read(self) -> dict[str, Any] | None:
        """This server's latest record, or None (absent, torn, or left by another server)."""
        try:
            record = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(record, dict) or record.get("group") != self.group:
            return None
        if not isinstance(record.get("spec"), dict) or not isinstance(record.get("active"), bool):
            return None
        return record


def record_identity(record: dict[str, Any]) -> str:
    """A record's identity: the same start published twice differs by its time."""
    return json.dumps(record, sort_keys=True)


def enter_canary_stage(version: str) -> None:
    """candidate -> canary (a canary started again stays canary); refuse production and archived.

    Raises:
        StageError: ``version`` is in production or archived.
        VersionNotFoundError: no such version.
    """
    registry = Registry()
    stage = registry.show(version).stage
    if stage is Stage.CANDIDATE:
        registry.promote(version, Stage.CANARY, reason="canary started")
    elif stage is not Stage.CANARY:
        raise StageError(
            f"{version} is {stage.value}: only a candidate can go to canary "
            f"(recdrill registry promote {version} candidate)"
        )


def set_stage(version: str, stage: Stage, reason: str) -> None:
    """Move ``version`` to ``stage`` unless it is there already (a peer may have done it)."""
    registry = Registry()
    if registry.show(version).stage is not stage:
        registry.promote(version, stage, reason=reason)


def archive(version: str, reason: str) -> None:
    Registry().archive(version, reason)


async def write_registry(action: Callable[..., None], *args: Any) -> None:
    """Run a registry write in a thread; a failure is logged, the serving change stays."""
    try:
        await asyncio.to_thread(action, *args)
    except Exception as exc:
        log.error("registry not updated for the canary (%s): %s", type(exc).__name__, exc)
