"""Chaos Toolkit actions: inject a catalogue fault, revert it, revert everything (for rollbacks).

``chaos run`` calls these in one process, so the handle a fault's ``inject`` returns (a server fault
id, a paused worker, a thread) is kept here, in a process-level registry keyed by fault id, until
``revert_fault`` or ``revert_all`` hands it back to the fault's ``revert``. Chaos Toolkit cannot pass
one activity's output to another, so an experiment names its fault (``fault_id``) in the action and
reverts that name in its rollback. If the process ends with faults still registered (an experiment
without rollbacks, a crash in Chaos Toolkit), an exit hook reverts them; the faults' TTLs are the
last resort.

Example (the JSON an experiment holds, as Python)::

    inject_fault("ranker-latency", {"latency_ms": 300}, base_url=url, fault_id="slow-ranker")
    revert_fault("slow-ranker")      # in "rollbacks"
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from recdrill.chaos.target import ADMIN_KEY_ENV, DEFAULT_BASE_URL, drill_target
from recdrill.drills.faults.catalogue import FaultParams, FaultType, fault_type
from recdrill.drills.target import DrillTarget
from recdrill.errors import ConfigError, RevertError

log = logging.getLogger(__name__)

__all__ = ["RevertError", "active_fault_ids", "inject_fault", "revert_all", "revert_fault"]


@dataclass
class _Active:
    fault: FaultType
    target: DrillTarget
    params: FaultParams
    handle: Any
    injected_at: float  # time.monotonic()


_ACTIVE: dict[str, _Active] = {}
_LOCK = threading.Lock()
_exit_hook_installed = False


def inject_fault(
    name: str,
    params: dict[str, Any] | None = None,
    base_url: str = DEFAULT_BASE_URL,
    admin_key_env: str = ADMIN_KEY_ENV,
    fault_id: str | None = None,
    ca_bundle: str | None = None,
    state_dir: str | None = None,
    model_dir: str | None = None,
    server_pid: int | None = None,
    local: bool = False,
    scratch_dir: str | None = None,
) -> dict[str, Any]:
    """Inject the catalogue fault ``name`` with ``params``; ``{"fault_id", "name", "params"}``.

    ``fault_id`` is the name a rollback reverts it by (a fresh one is made when left out); it must not
    name a fault this process still holds. ``state_dir``, ``model_dir``, ``server_pid``, ``local`` and
    ``scratch_dir`` give faults what they need beyond the HTTP API (see ``recdrill drill list``).
    """
    fault = fault_type(name)
    parsed = fault.parse(params)  # bad parameters fail before anything is touched
    if fault_id is not None and (not isinstance(fault_id, str) or not fault_id):
        raise ConfigError(f"fault_id must be a non-empty string, got {fault_id!r}")
    fid = fault_id or f"{name}-{uuid.uuid4().hex[:8]}"
    with _LOCK:
        if fid in _ACTIVE:
            raise ConfigError(f"fault id {fid!r} is still active: revert it first, or pick another fault_id")
    target = drill_target(
        base_url,
        admin_key_env,
        ca_bundle=ca_bundle,
        state_dir=state_dir,
        model_dir=model_dir,
        server_pid=server_pid,
        local=local,
        scratch_dir=scratch_dir,
        load_snapshot="snapshot" in fault.needs,
    )
    target.require(name, *sorted(fault.needs))  # one clear error before anything is injected
    _install_exit_hook()
    handle = fault.inject(target, parsed)
    with _LOCK:
        _ACTIVE[fid] = _Active(fault, target, parsed, handle, time.monotonic())
    log.info("injected fault %s (%s)", fid, name)
    return {"fault_id": fid, "name": name, "params": parsed.model_dump(mode="json")}


def revert_fault(fault_id: str) -> dict[str, Any]:
    """Revert the fault injected as ``fault_id``; what it made observable.

    Safe to call twice: a fault this process does not hold (already reverted) answers
    ``{"reverted": False, ...}`` with a note. A failed revert raises and keeps the fault registered.
    """
    with _LOCK:
        active = _ACTIVE.get(fault_id)
    if active is None:
        known = ", ".join(sorted(active_fault_ids())) or "none"
        return {
            "fault_id": fault_id,
            "name": None,
            "reverted": False,
            "note": f"no active fault {fault_id!r} in this process (active: {known})",
        }
    observations = active.fault.revert(active.target, active.params, active.handle)
    with _LOCK:
        _ACTIVE.pop(fault_id, None)
    log.info("reverted fault %s (%s)", fault_id, active.fault.name)
    return {
        "fault_id": fault_id,
        "name": active.fault.name,
        "reverted": True,
        "active_s": round(time.monotonic() - active.injected_at, 3),
        "observations": observations,
    }


def revert_all() -> dict[str, Any]:
    """Revert every fault this process holds, newest first; ``{"reverted": [...], "faults": {...}}``.

    Every fault is tried even when one fails; then a :class:`RevertError` names the failures (so
    Chaos Toolkit marks the rollback failed) and those faults stay registered.
    """
    with _LOCK:
        ids = list(_ACTIVE)[::-1]
    results: dict[str, Any] = {}
    failures: dict[str, str] = {}
    for fid in ids:
        try:
            results[fid] = revert_fault(fid)
        except Exception as exc:  # one stuck fault must not keep the others injected
            failures[fid] = f"{type(exc).__name__}: {exc}"
    if failures:
        done = ", ".join(results) or "none"
        detail = "; ".join(f"{fid}: {why}" for fid, why in failures.items())
        raise RevertError(f"could not revert {detail} (reverted: {done})")
    return {"reverted": list(results), "faults": results}


def active_fault_ids() -> list[str]:
    """The ids of the faults this process injected and has not reverted, oldest first."""
    with _LOCK:
        return list(_ACTIVE)


def _install_exit_hook() -> None:
    global _exit_hook_installed
    with _LOCK:
        if not _exit_hook_installed:
            atexit.register(_revert_at_exit)
            _exit_hook_installed = True


def _revert_at_exit() -> None:
    """Backstop for experiments without rollbacks: nothing this process injected outlives it."""
    if not active_fault_ids():
        return
    try:
        revert_all()
    except RevertError as exc:
        log.error("at exit: %s; their TTLs will remove them", exc)
