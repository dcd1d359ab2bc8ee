"""Serving: the HTTP API for recommendations with degradation tiers, deadlines, breakers, admission
control, hot reload, canaries and a durable feedback log.

``create_app`` builds one worker's app (``app``: routes in ``routes/``, ASGI middleware in
``middleware/``, the worker's state in ``state``); ``runtime/`` runs it (uvicorn workers, Ray
Serve, child processes for tests and the demo); ``canary/`` judges a candidate model beside the
primary; ``feedback/`` is the group-committed feedback log. Imported on first use (PEP 562): the
CLI names these without loading FastAPI or the model stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from recdrill._lazy import lazy_getattr

_EXPORTS = {
    "app_from_env": "app",
    "create_app": "app",
    "ServeConfig": "config",
    "ServingState": "state",
    "StateDep": "state",
    "ServingMetrics": "metrics",
    "Generation": "generation",
    "WorkerResources": "generation",
    "load_generation": "generation",
    "admin_request": "admin_client",
    "RayOptions": "runtime",
    "RayServerProcess": "runtime",
    "ServerProcess": "runtime",
    "run_ray_server": "runtime",
    "run_server": "runtime",
    "FeedbackEvent": "feedback",
    "FeedbackLog": "feedback",
    "FeedbackReader": "feedback",
    "Quarantine": "feedback",
}

__all__ = [
    "FeedbackEvent",
    "FeedbackLog",
    "FeedbackReader",
    "Generation",
    "Quarantine",
    "RayOptions",
    "RayServerProcess",
    "ServeConfig",
    "ServerProcess",
    "ServingMetrics",
    "ServingState",
    "StateDep",
    "WorkerResources",
    "admin_request",
    "app_from_env",
    "create_app",
    "load_generation",
    "run_ray_server",
    "run_server",
]

if TYPE_CHECKING:
    from recdrill.serving.admin_client import admin_request
    from recdrill.serving.app import app_from_env, create_app
    from recdrill.serving.config import ServeConfig
    from recdrill.serving.feedback import FeedbackEvent, FeedbackLog, FeedbackReader, Quarantine
    from recdrill.serving.generation import Generation, WorkerResources, load_generation
    from recdrill.serving.metrics import ServingMetrics
    from recdrill.serving.runtime import (
        RayOptions,
        RayServerProcess,
        ServerProcess,
        run_ray_server,
        run_server,
    )
    from recdrill.serving.state import ServingState, StateDep


__getattr__ = lazy_getattr("recdrill.serving", _EXPORTS, globals())
