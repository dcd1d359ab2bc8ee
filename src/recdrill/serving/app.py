"""The HTTP API of one worker: recommendations through the tier chain, durable feedback, health,
metrics, faults, hot model reload and canaries.

``create_app(config)`` builds the app from its parts: the routes (``routes/``: one router per
concern), the middleware (``middleware/``), the error handlers (``error_handlers``) and the worker's
state (``state``), loaded in the lifespan; ``app_from_env()`` is the factory uvicorn workers call.
Middleware, outermost first: metrics (counts every answer, 429s included), audit log, the access
gate (route, key check and audit record, before the body), the body reader (size limit, deadline,
standard JSON), admission control (a slot only for a request whose body has arrived).

Access: every endpoint but ``/healthz``, ``/readyz`` and ``/metrics`` needs a role
(``recdrill.security.access``): reader for recommendations, writer for feedback, operator for
faults and the feedback lookup (``/admin/feedback/lookup``: which event ids are stored), admin for
models. Without a key store (see ``ServeConfig.key_store``) the reader and writer
endpoints are open to anyone, which suits the demo; production should configure API keys.

Personal data: feedback is stored under user pseudonyms (``feedback/log.py``); log handlers scrub
e-mail addresses and phone numbers (``logs.py``); error bodies that may echo a request are scrubbed
too; metric labels are route templates and fixed slugs, never request text. A reload may name a
registry version (``{"version": "v3"}``), verified before it is decrypted (``reload.py``).

Canary and shadow: ``/admin/models/canary`` (POST to start, DELETE to stop: admin; GET: operator)
serves a registry version to a sticky share of users, or scores it in the shadow of the primary,
judges it online from ``/v1/feedback`` labels and rolls it back by itself (``canary/``).
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from recdrill.contract import AUDIT_DB
from recdrill.security.access import ACCESS_STATE, AccessControl
from recdrill.security.audit import AuditMiddleware
from recdrill.serving.config import ServeConfig
from recdrill.serving.error_handlers import install_error_handlers
from recdrill.serving.logs import install_log_scrubbing
from recdrill.serving.loop_watch import LoopWatch
from recdrill.serving.metrics import ServingMetrics
from recdrill.serving.middleware.access_gate import AccessGate, flat_routes
from recdrill.serving.middleware.admission import AdmissionControl, WorkerLoad
from recdrill.serving.middleware.body_reader import BodyReader
from recdrill.serving.middleware.metrics import RequestMetrics
from recdrill.serving.observers import ObserverContext, ServedModels, load_factory
from recdrill.serving.openapi import install_openapi
from recdrill.serving.routes import ROUTERS
from recdrill.serving.routes.health import METRICS_KEY
from recdrill.serving.state import STATE_KEY, ServingState, load_state

log = logging.getLogger(__name__)


def create_app(config: ServeConfig) -> FastAPI:
    """The recdrill serving app for one worker; the model is loaded at start-up (see ``/readyz``)."""
    metrics = ServingMetrics()
    loop_watch = LoopWatch(metrics.registry, stall_s=config.loop_stall_ms / 1000.0)
    load = WorkerLoad(config.max_in_flight)
    access = AccessControl(
        config.key_store,
        config.admin_key_sha256,
        config.state_dir / AUDIT_DB,
        config.key_rate_per_s,
        config.key_burst,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        install_log_scrubbing()  # before anything is logged: uvicorn's handlers exist by now
        access.open()
        if not access.keys_required:
            log.warning("no API key store: reader and writer endpoints are open to anyone")
        try:
            state = load_state(config, metrics, load)
        except BaseException:
            access.close()
            raise
        setattr(app.state, STATE_KEY, state)
        tasks = [
            asyncio.create_task(state.reloader.follow(state)),
            asyncio.create_task(state.canary.run(state)),
            asyncio.create_task(loop_watch.run()),
            *start_observers(state),
        ]
        # What start-up built (imported libraries, the model, the snapshot) lives as long as the
        # worker: frozen, a full garbage collection no longer walks it. Unfrozen, each one walked
        # ~70k objects in ~45 ms, a stall that every request in flight waited out (the p99).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            delattr(app.state, STATE_KEY)
            state.close()
            access.close()

    app = FastAPI(title="recdrill", lifespan=lifespan)
    setattr(app.state, ACCESS_STATE, access)
    setattr(app.state, METRICS_KEY, metrics)
    app.add_middleware(
        AdmissionControl,
        limit=config.max_in_flight,
        metrics=metrics,
        wait_s=config.admission_wait_ms / 1000.0,
        load=load,
    )
    app.add_middleware(BodyReader, max_bytes=config.max_body_bytes, timeout_s=config.body_timeout_s)
    app.add_middleware(AccessGate, routes=flat_routes(app.routes, ROUTERS), access=access)
    app.add_middleware(AuditMiddleware)
    app.add_middleware(RequestMetrics, metrics=metrics)
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    window = (config.feedback_past_s, config.feedback_future_s)
    install_openapi(app, flat_routes(app.routes, ROUTERS), access.keys_required, window)
    return app


def app_from_env() -> FastAPI:
    """Factory for uvicorn workers: the configuration comes from ``RECDRILL_*`` variables."""
    return create_app(ServeConfig.from_env())


def start_observers(state: ServingState) -> list[asyncio.Task[None]]:
    """Start the configured observers (``observers.py``) in the background: importing them (the drift
    monitor loads scipy and pandas) takes seconds on a busy machine, and a replacement worker must
    answer before that, not after. Requests served meanwhile are not observed."""

    def served() -> ServedModels:
        g = state.generation
        return ServedModels(g.version, g.snapshot, g.model, g.fallback)

    context = ObserverContext(state.metrics.registry, state.config.state_dir, served)

    async def start(spec: str) -> None:
        try:
            factory = await asyncio.to_thread(load_factory, spec)
            observer = factory(context)
        except Exception:
            log.exception("observer %s did not start; serving goes on without it", spec)
            return
        state.observers.append(observer)
        await observer.run()

    return [asyncio.create_task(start(spec)) for spec in state.config.observers]
