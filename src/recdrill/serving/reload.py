"""Hot model reload: load the new version beside the old, check it, then swap in one assignment.

Triton's rule: a failed reload keeps the old model serving. The new generation is loaded and
probed in a worker thread while the event loop keeps answering with the old one; only a generation
that passed every check replaces it, by rebinding one attribute on the event loop, so a request
sees either the old chain or the new one, whole. Requests already running finish on the old one,
whose model threads are stopped a little later.

With several uvicorn workers the reload request reaches one of them. After its swap it writes the
served folder and version to ``served_model.json`` in the state folder; the other workers look at
that file every ``FOLLOW_S`` and load the same folder, and a worker started later (a replacement
for a killed one) starts on it. The file names the server it belongs to (the workers' supervisor),
so a restarted server starts on its configured model again.

A reload may name a registry version instead of a folder (``reload_version``): the worker verifies
the signed artifact and decrypts it into ``<state_dir>/models/<version>/`` (``registry_models``),
then goes through the same load-check-swap; the pointer file records the version, and the other
workers follow by version, each verifying it again. Every refusal, of a folder or of a version, is
counted in ``recdrill_model_refusals_total{reason}`` and logged as one line. A server started with
``--require-signed`` (``ServeConfig.require_signed``) refuses every plain folder (reason ``unsigned``),
whether a reload names it or another worker's pointer does: only versions that verify are served.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from recdrill.contract import SERVED_MODEL_FILE
from recdrill.errors import (
    ArtifactRefusedError,
    ConfigError,
    KeyMaterialError,
    RecdrillError,
    UnsignedArtifactError,
    VersionNotFoundError,
)
from recdrill.serving.generation import Generation, WorkerResources, load_generation
from recdrill.serving.registry_source import materialise_version

log = logging.getLogger(__name__)
RETIRE_AFTER_S = 10.0  # far past any request deadline: nothing still uses the old chain by then
FOLLOW_S = 1.0


def server_group() -> str:
    """Who shares this worker's model: its uvicorn supervisor's workers, or only itself.

    ``RECDRILL_SERVER_ID`` wins when set; several workers are told apart from one by the
    multiprocess metrics folder that ``recdrill serve`` sets up for them alone.
    """
    explicit = os.environ.get("RECDRILL_SERVER_ID")
    if explicit:
        return explicit
    return f"ppid-{os.getppid()}" if os.environ.get("PROMETHEUS_MULTIPROC_DIR") else f"pid-{os.getpid()}"


class HoldsGeneration(Protocol):
    generation: Generation


@dataclass(frozen=True)
class ReloadResult:
    model_dir: Path
    model_version: str
    previous_version: str
    load_ms: float


def refusal_reason(exc: BaseException) -> str:
    """A fixed slug for why a model was refused: a metric label and the JSON error's ``reason``."""
    if isinstance(exc, ArtifactRefusedError):
        return exc.reason  # unsigned, bad signature, digest mismatch, truncated file, ...
    if isinstance(exc, VersionNotFoundError):
        return "unknown version"
    if isinstance(exc, KeyMaterialError):
        return "key material"
    if isinstance(exc, ConfigError):
        return "invalid request"
    if isinstance(exc, RecdrillError):
        return "invalid model"  # missing, corrupt, wrong catalogue, non-finite scores
    return "error"


class ModelReloader:
    """Swaps ``holder.generation`` for a freshly loaded and checked one; one reload at a time."""

    def __init__(self, resources: WorkerResources, group: str | None = None) -> None:
        self.resources = resources
        self.group = server_group() if group is None else group
        self.pointer = resources.config.state_dir / SERVED_MODEL_FILE
        self._lock = asyncio.Lock()
        self._refused: str | None = None  # the pointer content this worker failed to load

    def pointed_folder(self) -> Path | None:
        """The folder another worker of this server reloaded to, if any (used at start-up)."""
        pointed = self._read_pointer()
        return None if pointed is None else Path(pointed["model_dir"])

    def load_pointed(self) -> Generation | None:
        """What another worker of this server reloaded to, loaded (and verified again if it is a
        registry version), for a worker starting later; None if nothing was reloaded."""
        pointed = self._read_pointer()
        if pointed is None:
            return None
        registry_version = pointed.get("registry_version")
        if registry_version:
            return self.load_version(registry_version)
        return self.load_folder(Path(pointed["model_dir"]))

    def load_folder(self, folder: Path) -> Generation:
        """Load a plain model folder (its digests are checked by the model's load).

        Raises:
            UnsignedArtifactError: the server requires signed models (``require_signed``).
            ModelFileError, DataFormatError: the folder does not load.
        """
        if self.resources.config.require_signed:
            raise UnsignedArtifactError(
                str(folder),
                "a plain model folder; this server serves only registry versions that verify "
                "(--require-signed): push it with 'recdrill registry push' and reload it by version",
            )
        return load_generation(folder, self.resources)

    def load_version(self, version: str) -> Generation:
        """Verify and decrypt registry ``version`` into the state folder, load it, name it ``version``.

        Blocking (crypto and disk): call it from a thread on the event loop.
        """
        folder = materialise_version(version, self.resources.config.state_dir)
        generation = load_generation(folder, self.resources)
        generation.version = version  # answers name the registry version, not a file digest
        return generation

    async def reload(self, holder: HoldsGeneration, model_dir: Path | None = None) -> ReloadResult:
        """Load ``model_dir`` (default: the configured folder) and serve it if it passes the checks.

        Raises:
            ModelFileError, DataFormatError, UnsignedArtifactError (``require_signed``): the new
                model was refused; the old one keeps serving.
        """
        folder = Path(model_dir) if model_dir is not None else self.resources.config.model_dir
        return await self._swap(holder, lambda: self.load_folder(folder), None)

    async def reload_version(self, holder: HoldsGeneration, version: str) -> ReloadResult:
        """Serve registry ``version`` if its signature, digests and model checks all hold.

        Raises:
            ArtifactRefusedError: verification failed (``reason`` says how); VersionNotFoundError,
                KeyMaterialError, ModelFileError: refused too. The old model keeps serving.
        """
        return await self._swap(holder, lambda: self.load_version(version), version)

    async def _swap(
        self, holder: HoldsGeneration, load: Callable[[], Generation], registry_version: str | None
    ) -> ReloadResult:
        async with self._lock:
            started = time.perf_counter()
            try:
                new = await asyncio.to_thread(load)
            except Exception as exc:
                reason = refusal_reason(exc)
                self.resources.metrics.reloads.labels("refused").inc()
                self.resources.metrics.refusals.labels(reason).inc()
                # One line naming the reason; messages name versions, files and key ids, never keys.
                log.warning("model refused (%s): %s", reason, " ".join(str(exc).split()))
                raise
            old = holder.generation
            holder.generation = new  # the swap: one rebinding on the event loop
            self._after_swap(old, new)
            self.resources.metrics.reloads.labels("ok").inc()
            log.warning("model reloaded: %s -> %s from %s", old.version, new.version, new.model_dir)
            try:
                self._publish(new.model_dir, new.version, registry_version)
            except OSError as exc:  # this worker serves the new model; only its peers will not follow
                log.error("could not record the reload for other workers in %s: %s", self.pointer, exc)
            return ReloadResult(
                new.model_dir, new.version, old.version, (time.perf_counter() - started) * 1000
            )

    async def follow(self, holder: HoldsGeneration, every_s: float = FOLLOW_S) -> None:
        """Forever: load what another worker of this server reloaded to (run as a background task).

        A registry version is followed by version, so this worker verifies it too.
        """
        while True:
            await asyncio.sleep(every_s)
            pointed = self._read_pointer()
            if pointed is None or pointed["version"] == holder.generation.version:
                continue
            key = json.dumps(pointed, sort_keys=True)  # includes the file's mtime: a new publish retries
            if key == self._refused:
                continue  # failed here before: wait for the next reload rather than retry forever
            try:
                registry_version = pointed.get("registry_version")
                if registry_version:
                    await self.reload_version(holder, registry_version)
                else:
                    await self.reload(holder, Path(pointed["model_dir"]))
            except Exception as exc:
                self._refused = key
                log.error("could not follow the reload to %s: %s", pointed["version"], exc)

    def _publish(self, folder: Path, version: str, registry_version: str | None) -> None:
        record = {"model_dir": str(folder.resolve()), "version": version, "group": self.group}
        if registry_version is not None:
            record["registry_version"] = registry_version
        temporary = self.pointer.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(record))
        os.replace(temporary, self.pointer)  # atomic: a reader sees the old record or the new one

    def _read_pointer(self) -> dict[str, str] | None:
        try:
            stamp = self.pointer.stat().st_mtime_ns
            record = json.loads(self.pointer.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(record, dict) or record.get("group") != self.group:
            return None  # absent, torn, or left by an earlier server
        if not {"model_dir", "version"} <= record.keys():
            return None
        found = {"model_dir": str(record["model_dir"]), "version": str(record["version"])}
        found["stamp"] = str(stamp)
        if record.get("registry_version"):
            found["registry_version"] = str(record["registry_version"])
        return found

    def _after_swap(self, old: Generation, new: Generation) -> None:
        # A new model deserves a fresh chance: the model tiers' breakers start closed again.
        for name in ("primary", "fallback"):
            if name in self.resources.breakers:
                self.resources.breakers[name].reset()
        # Cached lists are dense ids of the old catalogue: meaningless if the catalogue changed.
        if not np.array_equal(old.snapshot.item_ids, new.snapshot.item_ids):
            self.resources.cache.clear()
        asyncio.get_running_loop().call_later(RETIRE_AFTER_S, old.close)
