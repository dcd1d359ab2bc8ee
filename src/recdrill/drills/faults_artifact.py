"""Artifact faults: a corrupted model folder, an unsigned or wrongly signed registry version, and a
wrong (much worse) model version pushed as the primary.

The first three must be refused by ``POST /admin/models/reload`` (422, with a ``reason``) while the
old version keeps serving on every worker; the fourth is accepted on purpose: a quality regression
that no load check catches, only the drill's NDCG measurement.

The plain folder reload does not verify signatures (a folder carries none), so the signature
faults go through the server's registry: they push a version into the ``RECDRILL_HOME`` the
server's workers were started with (read from ``/proc``; else ``registry_home``, else this
process's) and reload it by version. That registry is on this machine, hence ``needs: local``.
A version pushed for a fault is archived on revert; the registry cannot delete versions, so the
archived artifact stays.

A module ledger keeps what each injection left (scratch copies, pushed versions, the version
served before) so that ``leftovers(target)`` can name what a revert did not clean.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
import numpy as np
from pydantic import Field

from recdrill.data.snapshot import ShopSnapshot
from recdrill.drills.catalogue import FaultParams, FaultType, Observations, register
from recdrill.drills.target import DrillTarget, FaultUnavailableError
from recdrill.errors import RecdrillError
from recdrill.serving.process import WORKER_HEADER

CONVERGE_S = 30.0  # followers poll the pointer file every second, then load: generous on a busy host
RELOAD_TIMEOUT_S = 120.0
NONCE_FILE = "drill-nonce.txt"
_REGISTRY_VERSION = re.compile(r"v\d+")


class ArtifactFaultError(RecdrillError):
    """An artifact fault could not be injected (the server refused a model it should have taken)."""


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


def served_versions(target: DrillTarget, probes: int = 24) -> dict[str, str]:
    """``{worker pid: version}`` from ``/readyz`` on fresh connections, which the kernel hands to
    any worker; stops once every known worker answered (``"?"``: a server without the pid header)."""
    expected = {str(p) for p in target.workers.worker_pids()} if target.workers is not None else set()
    seen: dict[str, str] = {}
    for _ in range(max(probes, 4 * len(expected))):
        try:
            url, close = target.base_url + "/readyz", {"Connection": "close"}
            response = httpx.get(url, headers=close, timeout=5.0, verify=target.verify)
            version = response.json().get("model_version") if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            continue
        if version is not None:
            seen[response.headers.get(WORKER_HEADER, "?")] = str(version)
        if expected and expected <= seen.keys():
            break
    return seen


def wait_converged(target: DrillTarget, version: str, timeout_s: float = CONVERGE_S) -> dict[str, str]:
    """Poll until every worker seen serves ``version`` (or the timeout); the last probe's answer."""
    deadline = time.monotonic() + timeout_s
    while True:
        seen = served_versions(target)
        if (seen and set(seen.values()) == {version}) or time.monotonic() > deadline:
            return seen
        time.sleep(0.25)


def _reload(target: DrillTarget, body: dict[str, str] | None) -> httpx.Response:
    with target.admin(timeout_s=RELOAD_TIMEOUT_S) as admin:
        return admin.post("/admin/models/reload", json=body)


def _start(target: DrillTarget, fault: str, *needs: str) -> ArtifactHandle:
    """Check the needs, note the version served now, and put the new handle in the ledger."""
    target.require(fault, *needs)
    version = target.model_version()
    if version is None:
        raise FaultUnavailableError(f"fault {fault!r}: the target's /readyz names no model version")
    handle = ArtifactHandle(fault, target.base_url, version)
    with _LEDGER_LOCK:
        _LEDGER.append(handle)
    return handle


def _restore(target: DrillTarget, handle: ArtifactHandle) -> dict[str, str]:
    """Serve ``version_before`` again on every worker: by registry version when it is one, else the
    configured model (a reload without a body), else the target's model folder."""
    before = handle.version_before
    bodies: list[dict[str, str] | None] = [{"version": before}] if _REGISTRY_VERSION.fullmatch(before) else []
    bodies.append(None)
    if target.model_dir is not None:
        bodies.append({"model_dir": str(target.model_dir)})
    seen: dict[str, str] = {}
    for body in bodies:
        if _reload(target, body).status_code == 200:
            seen = wait_converged(target, before)
            if set(seen.values()) == {before}:
                break
    return seen


def _scratch(target: DrillTarget, handle: ArtifactHandle) -> Path:
    """A fresh folder the handle owns, under ``target.scratch_dir`` when the drill gave one."""
    if target.scratch_dir is not None:
        target.scratch_dir.mkdir(parents=True, exist_ok=True)
    handle.scratch = Path(tempfile.mkdtemp(prefix=f"recdrill-{handle.fault}-", dir=target.scratch_dir))
    return handle.scratch


def _copy_model(target: DrillTarget, handle: ArtifactHandle) -> Path:
    assert target.model_dir is not None  # checked by require()
    copy = _scratch(target, handle) / "model"
    shutil.copytree(target.model_dir, copy, symlinks=False)
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


def degraded_model(source: Path, dest: Path, seed: int) -> Path:
    """A copy of the model folder ``source`` whose primary is popularity over shuffled item counts.

    Loadable, finite-scoring and for the same catalogue (the shop snapshot and any ``fallback/``
    are copied as they are, so ids line up), but its ranking ignores both the user and the real
    best-sellers: about as good as random.
    """
    from recdrill.models.popularity import PopularityRecommender  # the model stack: only when needed

    shutil.copytree(source, dest, symlinks=False)
    snapshot = ShopSnapshot.load(source)
    meta: dict[str, Any] = json.loads((source / "model.json").read_text())
    counts = np.random.default_rng(seed).permutation(snapshot.item_counts.astype(np.float64)) + 1.0
    model = PopularityRecommender()
    model.n_items_ = snapshot.n_items
    model.fingerprint_ = str(meta["fingerprint"])
    model.trained_on_ = str(meta.get("trained_on", ""))
    model.share_ = (counts / counts.sum()).astype(np.float32)
    (dest / "state.npz").unlink()
    model.save(dest)
    return dest


def _refusal(handle: ArtifactHandle, response: httpx.Response, target: DrillTarget) -> None:
    """Record what the reload answered and what every worker serves right after it."""
    handle.status = response.status_code
    try:
        handle.reason = response.json().get("reason")
    except ValueError:
        handle.reason = None
    handle.served_after = served_versions(target)


def _revert_refused(target: DrillTarget, handle: ArtifactHandle) -> dict[str, Any]:
    """Shared by the refused-load faults: undo an (unexpected) acceptance, report the refusal."""
    if handle.status == 200:  # the server took what it should have refused: serve the old model again
        _restore(target, handle)
    now = served_versions(target)
    kept = set(handle.served_after.values()) | set(now.values()) == {handle.version_before}
    refused = handle.status == 422
    return {"refused": refused, "status": handle.status, "reason": handle.reason, "version_kept": kept}


class CorruptParams(FaultParams):
    mode: Literal["truncate", "flip-bytes"] = Field(
        "truncate", description="cut the weights file to half, or invert 64 bytes in its middle"
    )


def inject_corrupt(target: DrillTarget, params: CorruptParams) -> ArtifactHandle:
    handle = _start(target, "corrupt-artifact", "model_dir")
    with _undone_on_error(handle):
        copy = _copy_model(target, handle)
        corrupt_file(copy / "state.npz", params.mode)
        _refusal(handle, _reload(target, {"model_dir": str(copy)}), target)
    return handle


def revert_corrupt(target: DrillTarget, _: CorruptParams, handle: ArtifactHandle) -> Observations:
    if not handle.reverted:
        handle.observations = _revert_refused(target, handle)
        _finish(target, handle)
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
    environment, from ``/proc``), else ``registry_home``, else this process's ``RECDRILL_HOME``."""
    from recdrill.registry.keys import recdrill_home

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
    None without worker pids or where ``/proc`` does not tell (another user's process)."""
    for pid in target.workers.worker_pids() if target.workers is not None else []:
        try:
            raw = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        env = dict(entry.split("=", 1) for entry in raw.decode(errors="replace").split("\0") if "=" in entry)
        if env.get("RECDRILL_HOME"):
            return Path(env["RECDRILL_HOME"]).expanduser()
        return Path(env["HOME"]) / ".recdrill" if env.get("HOME") else None
    return None


def _push_badly_signed(home: Path, model: Path, unsigned: bool) -> str:
    """Push ``model`` signed with a throwaway key (never a valid version); drop the signature too
    for ``unsigned``. Returns the new version."""
    from recdrill.registry.keys import SIGNING_KEY_ENV, new_signing_key_pem
    from recdrill.registry.manifest import SIGNATURE_NAME
    from recdrill.registry.registry import Registry

    # A nonce file makes the content, hence the content address, new: pushing content already
    # stored would return (and this fault would then tamper with) a genuine version.
    (model / NONCE_FILE).write_text(secrets.token_hex(16) + "\n")
    registry = Registry(home, environ={**os.environ, SIGNING_KEY_ENV: new_signing_key_pem().decode()})
    version = registry.push(model).version
    if unsigned:
        (registry.artifact_path(version) / SIGNATURE_NAME).unlink()
    return version


def _archive(handle: ArtifactHandle) -> None:
    from recdrill.registry.registry import Registry

    if handle.pushed is not None and handle.registry_home is not None:
        Registry(handle.registry_home).archive(handle.pushed, f"drill fault {handle.fault}")


def _signature_fault(name: str, unsigned: bool) -> FaultType:
    def inject(target: DrillTarget, params: SignatureParams) -> ArtifactHandle:
        target.require(name, "local", "model_dir")
        home = _registry_home(target, name, params)
        handle = _start(target, name)
        handle.registry_home = home
        with _undone_on_error(handle):
            handle.pushed = _push_badly_signed(home, _copy_model(target, handle), unsigned)
            _remove_scratch(handle)  # the registry holds the pushed copy now
            _refusal(handle, _reload(target, {"version": handle.pushed}), target)
            if handle.reason == "unknown version":
                raise FaultUnavailableError(
                    f"fault {name!r}: the server does not know {handle.pushed} of the registry at {home}: "
                    "it reads another registry (give registry_home: the server's RECDRILL_HOME)"
                )
        return handle

    def revert(target: DrillTarget, _: SignatureParams, handle: ArtifactHandle) -> Observations:
        if not handle.reverted:
            handle.observations = {"pushed_version": handle.pushed, **_revert_refused(target, handle)}
            _archive(handle)
            _finish(target, handle)
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
        leftovers=_leftovers_of(name),
    )


class BadPushParams(FaultParams):
    model_dir: str | None = Field(
        None,
        min_length=1,
        max_length=4096,
        description="a model folder to push; default: a degraded copy of the served model",
    )
    seed: int = Field(0, ge=0, le=2**31 - 1, description="shuffles the degraded model's item counts")


def inject_bad_push(target: DrillTarget, params: BadPushParams) -> ArtifactHandle:
    handle = _start(target, "bad-model-push", "model_dir")
    assert target.model_dir is not None
    with _undone_on_error(handle):
        if params.model_dir is not None:
            folder = Path(params.model_dir).expanduser().resolve()
            if not (folder / "model.json").is_file():
                raise ArtifactFaultError(f"fault 'bad-model-push': {folder} is not a saved model folder")
        else:
            folder = degraded_model(target.model_dir, _scratch(target, handle) / "model", params.seed)
        response = _reload(target, {"model_dir": str(folder)})
        if response.status_code != 200:
            raise ArtifactFaultError(
                f"fault 'bad-model-push': the server refused the pushed model: "
                f"HTTP {response.status_code} {response.text[:300]}"
            )
    pushed = str(response.json()["model_version"])
    handle.observations = {"pushed_version": pushed}
    handle.served_after = wait_converged(target, pushed)  # every worker serves it: the fault is whole
    return handle


def revert_bad_push(target: DrillTarget, _: BadPushParams, handle: ArtifactHandle) -> Observations:
    if not handle.reverted:
        versions = set(_restore(target, handle).values())
        restored = versions == {handle.version_before}
        handle.observations["restored_version"] = versions.pop() if len(versions) == 1 else None
        handle.observations["restored"] = restored
        if restored:
            _finish(target, handle)
        else:  # keep the folder a worker may still serve from; the leftovers check names it
            handle.reverted = True
    return handle.observations


@contextmanager
def _undone_on_error(handle: ArtifactHandle) -> Iterator[None]:
    """An injection that fails half-way removes its scratch copy and archives what it pushed, so
    the drill need not revert what it never got a handle for."""
    try:
        yield
    except BaseException:
        handle.reverted = True
        _remove_scratch(handle)
        with suppress(RecdrillError):  # the leftovers check names a version left unarchived
            _archive(handle)
        raise


def _remove_scratch(handle: ArtifactHandle) -> None:
    if handle.scratch is not None:
        shutil.rmtree(handle.scratch, ignore_errors=True)


def _finish(target: DrillTarget, handle: ArtifactHandle) -> None:
    """Close a revert: scratch removed; a handle that left nothing behind leaves the ledger."""
    _remove_scratch(handle)
    handle.reverted = True
    if not _problems(target, handle):
        with _LEDGER_LOCK:
            _LEDGER.remove(handle)


def _leftovers_of(name: str) -> Callable[[DrillTarget], list[str]]:
    def leftovers(target: DrillTarget) -> list[str]:
        """What injections of this fault on the target left: faults not reverted, scratch copies,
        pushed versions not archived, a served version other than the one before."""
        with _LEDGER_LOCK:
            mine = [h for h in _LEDGER if h.fault == name and h.base_url == target.base_url]
        found: list[str] = []
        for handle in mine:
            problems = _problems(target, handle)
            found += problems
            if handle.reverted and not problems:  # clean now: forget it
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


def _problems(target: DrillTarget, handle: ArtifactHandle) -> list[str]:
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
    versions = set(served_versions(target).values())
    if versions != {handle.version_before}:
        found.append(f"{name}: serving {sorted(versions)}, not {handle.version_before} as before the fault")
    return found


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
        leftovers=_leftovers_of("corrupt-artifact"),
    )
)
register(_signature_fault("unsigned-artifact", unsigned=True))
register(_signature_fault("wrongly-signed-artifact", unsigned=False))
register(
    FaultType(
        name="bad-model-push",
        kind="ml",
        summary="reload a loadable but much worse model (popularity over shuffled counts) as the primary",
        params=BadPushParams,
        inject=inject_bad_push,
        revert=revert_bad_push,
        needs=frozenset({"model_dir"}),
        effect="the reload is accepted: no errors, no failover, NDCG@10 of served answers collapses",
        leftovers=_leftovers_of("bad-model-push"),
    )
)
