"""A worker's serving state: what outlives reloads, the model generation it serves now, the feedback
log, the canary and the observers; how it is loaded at start-up, and the dependency routes read it by.

A request reads ``state.generation`` once and uses that one to the end, so a reload in between
cannot mix an old snapshot with a new model.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from recdrill.contract import FAULTS_DB, FEEDBACK_DB
from recdrill.errors import RecdrillError
from recdrill.serving.cache import LastGoodCache
from recdrill.serving.canary.controller import CanaryController
from recdrill.serving.config import ServeConfig
from recdrill.serving.fault_points import FaultStore, FeedbackFaults
from recdrill.serving.feedback.log import FeedbackLog
from recdrill.serving.generation import Generation, WorkerResources
from recdrill.serving.metrics import ServingMetrics
from recdrill.serving.middleware.admission import WorkerLoad
from recdrill.serving.observers import ServingObserver
from recdrill.serving.reload import ModelReloader

log = logging.getLogger(__name__)
STATE_KEY = "serving"  # ``app.state.serving``: set once the model is loaded (``/readyz`` reads it)


@dataclass
class ServingState:
    """A worker's state: what outlives reloads (``resources``), and the current model ``generation``."""

    resources: WorkerResources
    feedback: FeedbackLog
    reloader: ModelReloader
    generation: Generation
    canary: CanaryController
    observers: list[ServingObserver] = field(default_factory=list)  # started in the background

    @property
    def config(self) -> ServeConfig:
        return self.resources.config

    @property
    def metrics(self) -> ServingMetrics:
        return self.resources.metrics

    @property
    def faults(self) -> FaultStore:
        return self.resources.faults

    @property
    def model_version(self) -> str:
        return self.generation.version

    def close(self) -> None:
        """Release what start-up opened, the feedback log before the fault table its writer reads."""
        for observer in self.observers:
            observer.close()
        self.observers.clear()
        self.canary.close()
        self.generation.close()
        self.feedback.close()
        self.faults.close()


async def serving_state(request: Request) -> ServingState:
    """The FastAPI dependency behind :data:`StateDep`: the worker's state, or a 503 while loading.

    ``async`` on purpose: FastAPI runs a plain-def dependency in a thread pool, a hop per request.
    """
    loaded: ServingState | None = getattr(request.app.state, STATE_KEY, None)
    if loaded is None:
        raise HTTPException(503, detail="model not loaded")
    return loaded


StateDep = Annotated[ServingState, Depends(serving_state)]


def load_state(config: ServeConfig, metrics: ServingMetrics, load: WorkerLoad) -> ServingState:
    """Open the fault table, load the first model generation and open the feedback log."""
    config.state_dir.mkdir(parents=True, exist_ok=True)
    faults = FaultStore(config.state_dir / FAULTS_DB)
    cache = LastGoodCache(config.cache_users, config.cache_ttl_s)
    resources = WorkerResources(config, metrics, faults, cache, load=load)
    reloader = ModelReloader(resources)
    try:
        generation = first_generation(config, resources, reloader)
    except BaseException:
        faults.close()
        raise
    try:
        canary = CanaryController(resources, reloader)
        feedback = FeedbackLog(config.state_dir / FEEDBACK_DB, faults=FeedbackFaults(faults))
    except BaseException:  # what start-up opened is closed again, not left to the process exit
        generation.close()
        faults.close()
        raise
    return ServingState(resources, feedback, reloader, generation, canary)


def first_generation(config: ServeConfig, resources: WorkerResources, reloader: ModelReloader) -> Generation:
    """A worker started after a reload (a replacement) serves the reloaded model, as its peers do;
    otherwise the configured registry version (verified, refused at start-up if it fails), else the
    configured folder (refused where ``require_signed``: only verified versions may serve)."""
    configured = config.model_version or str(config.model_dir)
    try:
        pointed = reloader.load_pointed()
    except RecdrillError as exc:
        log.error("cannot load the reloaded model (%s): serving %s", exc, configured)
    else:
        if pointed is not None:
            return pointed
    if config.model_version is not None:
        return reloader.load_version(config.model_version)
    return reloader.load_folder(config.model_dir)  # refused where only signed versions may serve
