"""Artifact faults that a server must refuse: a corrupted model folder, and an unsigned or wrongly
signed registry version.

Each must be refused by ``POST /admin/models/reload`` (422, with a ``reason``) while the old version
keeps serving on every worker. (A loadable but much worse model, which is accepted, is
:mod:`recdrill.drills.faults.bad_push`.)

The plain folder reload does not verify signatures (a folder carries none), so the signature
faults go through the server's registry: they push a version into the ``RECDRILL_HOME`` the
server's workers were started with (read from ``/proc``; else ``registry_home``, else this
process's) and reload it by version. That registry is on this machine, hence ``needs: local``.
A version pushed for a fault is archived on revert; the registry cannot delete versions, so the
archived artifact stays.

What each injection left is kept in :mod:`recdrill.drills.faults._artifact_ledger`.
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path
from typing import Any, Literal

import httpx
from pydantic import Field

from recdrill._home import recdrill_home
from recdrill.digests import add_digest
from recdrill.drills.faults._artifact_ledger import (
    ArtifactHandle,
    archive_pushed,
    finish,
    leftovers_of,
    remove_scratch,
    scratch_folder,
    start_handle,
    undone_on_error,
)
from recdrill.drills.faults.catalogue import FaultParams, FaultType, Observations, register
from recdrill.drills.target import DrillTarget
from recdrill.errors import FaultUnavailableError
from recdrill.procs import environ

NONCE_FILE = "drill-nonce.txt"


def _copy_model(target: DrillTarget, handle: ArtifactHandle) -> Path:
    source = target.need_model_dir(handle.fault)
    copy = scratch_folder(target, handle) / "model"
    shutil.copytree(source, copy, symlinks=False)
    return copy


def corrupt_file(path: Path, mode: str) -> None:
    """Cut ``path`` to half its size, or invert 64 bytes in its middle (inside the array data of an
    ``.npz``, so the zip's CRC check or the array header parse fails when it is read)."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    if mode == "truncate":
        del data[middle:]
    else:
        for i in range(max(0, middle - 32), min(len(data), middle + 32)):
            data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def _refusal(handle: ArtifactHandle, response: httpx.Response, target: DrillTarget) -> None:
    """Record what the reload answered and what every worker serves right after it."""
    handle.status = response.status_code
    try:
        handle.reason = response.json().get("reason")
    except ValueError:
        handle.reason = None
    handle.served_after = target.served_versions()


def _revert_refused(target: DrillTarget, handle: ArtifactHandle) -> dict[str, Any]:
    """Shared by the refused-load faults: undo an (unexpected) acceptance, report the refusal."""
    if handle.status == 200:  # the server took what it should have refused: serve the old model again
        target.restore_model(handle.version_before)
    now = target.served_versions()
    kept = set(handle.served_after.values()) | set(now.values()) == {handle.version_before}
    refused = handle.status == 422
    return {"refused": refused, "status": handle.status, "reason": handle.reason, "version_kept": kept}


class CorruptParams(FaultParams):
    mode: Literal["truncate", "flip-bytes"] = Field(
        "truncate", description="cut the weights file to half, or invert 64 bytes in its middle"
    )


def inject_corrupt(target: DrillTarget, params: CorruptParams) -> ArtifactHandle:
    target.need_model_dir("corrupt-artifact")
    handle = start_handle(target, "corrupt-artifact")
    with undone_on_error(handle):
        copy = _copy_model(target, handle)
        corrupt_file(copy / "state.npz", params.mode)
        _refusal(handle, target.reload({"model_dir": str(copy)}), target)
    return handle


def revert_corrupt(target: DrillTarget, _: CorruptParams, handle: ArtifactHandle) -> Observations:
    if not handle.reverted:
        handle.observations = _revert_refused(target, handle)
        finish(target, handle)
    return handle.observations


class SignatureParams(FaultParams):
    registry_home: str | None = Field(
        None,
        min_length=1,
        max_length=4096,
        description="the server's registry (its RECDRILL_HOME); default: this process's RECDRILL_HOME",
    )


def _registry_home(target: DrillTarget, fault: str, params: SignatureParams) -> Path:
    """The registry to push into: the one the server's workers read (``RECDRILL_HOME`` in their
    environment), else ``registry_home``, else this process's ``RECDRILL_HOME``."""
    server = _server_home(target)
    home = Path(params.registry_home).expanduser() if params.registry_home else server or recdrill_home()
    if server is not None and home.resolve() != server.resolve():
        raise FaultUnavailableError(
            f"fault {fault!r}: the server reads the registry at {server}, not {home} (registry_home)"
        )
    if not (home / "registry.db").is_file():
        raise FaultUnavailableError(
            f"fault {fault!r} needs the server's model registry on this machine: no registry at {home} "
            "(set RECDRILL_HOME or the registry_home parameter to the server's)"
        )
    return home


def _server_home(target: DrillTarget) -> Path | None:
    """``RECDRILL_HOME`` (else ``$HOME/.recdrill``) as a worker of the target was started with;
    None without worker pids or where the environment cannot be read (another user's process)."""
    for pid in target.workers.worker_pids() if target.workers is not None else []:
        env = environ(pid)
        if env is not None:
            return recdrill_home(env) if env.get("RECDRILL_HOME") or env.get("HOME") else None
    return None


def _push_badly_signed(home: Path, model: Path, unsigned: bool) -> str:
    """Push ``model`` signed with a throwaway key (never a valid version); drop the signature too
    for ``unsigned``. Returns the new version."""
    from recdrill.registry.keys import SIGNING_KEY_ENV, new_signing_key_pem
    from recdrill.registry.manifest import SIGNATURE_NAME
    from recdrill.registry.registry import Registry

    # A nonce file makes the content, hence the content address, new: pushing content already
    # stored would return (and this fault would then tamper with) a genuine version. Listed in the
    # copy's digests, so the push's load check takes it (the signature is what must be refused).
    (model / NONCE_FILE).write_text(secrets.token_hex(16) + "\n")
    add_digest(model, NONCE_FILE)
    registry = Registry(home, environ={**os.environ, SIGNING_KEY_ENV: new_signing_key_pem().decode()})
    version = registry.push(model).version
    if unsigned:
        (registry.artifact_path(version) / SIGNATURE_NAME).unlink()
    return version


def _signature_fault(name: str, unsigned: bool) -> FaultType:
    def inject(target: DrillTarget, params: SignatureParams) -> ArtifactHandle:
        target.require(name, "local", "model_dir")
        home = _registry_home(target, name, params)
        handle = start_handle(target, name)
        handle.registry_home = home
        with undone_on_error(handle):
            handle.pushed = _push_badly_signed(home, _copy_model(target, handle), unsigned)
            remove_scratch(handle)  # the registry holds the pushed copy now
            _refusal(handle, target.reload({"version": handle.pushed}), target)
            if handle.reason == "unknown version":
                raise FaultUnavailableError(
                    f"fault {name!r}: the server does not know {handle.pushed} of the registry at {home}: "
                    "it reads another registry (give registry_home: the server's RECDRILL_HOME)"
                )
        return handle

    def revert(target: DrillTarget, _: SignatureParams, handle: ArtifactHandle) -> Observations:
        if not handle.reverted:
            handle.observations = {"pushed_version": handle.pushed, **_revert_refused(target, handle)}
            archive_pushed(handle)
            finish(target, handle)
        return handle.observations

    what = "without a signature" if unsigned else "signed by a key other than the registry's"
    reason = "unsigned" if unsigned else "signed by another key"
    return FaultType(
        name=name,
        kind="ml",
        summary=f"push a registry version {what} and reload it",
        params=SignatureParams,
        inject=inject,
        revert=revert,
        needs=frozenset({"local", "model_dir"}),
        effect=f"the reload is refused (422, reason {reason!r}); the old version keeps serving",
        detected_by=frozenset({"model-refused"}),
        leftovers=leftovers_of(name),
    )


register(
    FaultType(
        name="corrupt-artifact",
        kind="ml",
        summary="reload a copy of the served model whose weights file is truncated or has flipped bytes",
        params=CorruptParams,
        inject=inject_corrupt,
        revert=revert_corrupt,
        needs=frozenset({"model_dir"}),
        effect="the reload is refused (422, reason 'invalid model'); the old version keeps serving",
        detected_by=frozenset({"model-refused"}),
        leftovers=leftovers_of("corrupt-artifact"),
    )
)
register(_signature_fault("unsigned-artifact", unsigned=True))
register(_signature_fault("wrongly-signed-artifact", unsigned=False))
