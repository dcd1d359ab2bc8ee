"""The HTTP API: recommendations through the tier chain, durable feedback, health, metrics, faults,
hot model reload.

``create_app(config)`` builds the app; ``app_from_env()`` is the factory uvicorn workers call.
Middleware, outermost first: metrics (counts every answer, 429s included), audit log, admission
control.

Access: every endpoint but ``/healthz``, ``/readyz`` and ``/metrics`` needs a role
(``recdrill.security.access``): reader for recommendations, writer for feedback, operator for
faults and the feedback lookup (``/admin/feedback/lookup``: which event ids are stored), admin for
models. Without a key store (see ``ServeConfig.key_store``) the reader and writer
endpoints are open to anyone, which suits the demo; production should configure API keys.

Personal data: feedback is stored under user pseudonyms (``feedback.py``); log handlers scrub
e-mail addresses and phone numbers (``logs.py``); error bodies that may echo a request are scrubbed
too; metric labels are route templates and fixed slugs, never request text. A reload may name a
registry version (``{"version": "v3"}``), verified before it is decrypted (``reload.py``).

Canary and shadow: ``/admin/models/canary`` (POST to start, DELETE to stop: admin; GET: operator)
serves a registry version to a sticky share of users, or scores it in the shadow of the primary,
judges it online from ``/v1/feedback`` labels and rolls it back by itself (``canary.py``).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from recdrill.data.pseudonymise import scrub_text
from recdrill.errors import RecdrillError, StageError, VersionNotFoundError
from recdrill.security.access import ACCESS_STATE, API_KEY_HEADER, AccessControl, require_role
from recdrill.security.audit import AuditMiddleware
from recdrill.security.roles import Role
from recdrill.serving.admission import SHED_ROUTE_KEY, AdmissionControl, WorkerLoad
from recdrill.serving.cache import CachedList, LastGoodCache
from recdrill.serving.canary import CanaryController, CanarySpec
from recdrill.serving.canary_judge import CanaryJudge
from recdrill.serving.chain import Generation, Shared, load_generation
from recdrill.serving.config import ServeConfig
from recdrill.serving.faults import FaultStore, FeedbackFaults
from recdrill.serving.feedback import FEEDBACK_DB, FeedbackEvent, FeedbackLog, FeedbackLogError
from recdrill.serving.logs import install_log_scrubbing
from recdrill.serving.metrics import ServingMetrics
from recdrill.serving.observers import (
    FeedbackSeen,
    ObserverContext,
    RecommendSeen,
    ServedModels,
    ServingObserver,
    load_factory,
)
from recdrill.serving.reload import ModelReloader, refusal_reason
from recdrill.serving.router import RoutedAnswer
from recdrill.serving.schemas import (
    CanaryRequest,
    FaultRequest,
    FeedbackLookupRequest,
    FeedbackRequest,
    RecommendRequest,
    ReloadRequest,
)
from recdrill.serving.tiers import TierRequest

log = logging.getLogger(__name__)
HISTORY_LENGTH = 50
ADMIN_KEY_HEADER = API_KEY_HEADER  # the name before there were roles


@dataclass
class ServingState:
    """A worker's state: what outlives reloads, and the current model ``generation``.

    A request reads ``generation`` once and uses that one to the end, so a reload in between
    cannot mix an old snapshot with a new model.
    """

    shared: Shared
    feedback: FeedbackLog
    reloader: ModelReloader
    generation: Generation
    canary: CanaryController

    @property
    def faults(self) -> FaultStore:
        return self.shared.faults

    @property
    def model_version(self) -> str:
        return self.generation.version


def create_app(config: ServeConfig) -> FastAPI:
    """The recdrill serving app for one worker; the model is loaded at start-up (see ``/readyz``)."""
    metrics = ServingMetrics()
    observers: list[ServingObserver] = []
    load = WorkerLoad(config.max_in_flight)
    access = AccessControl(
        config.key_store,
        config.admin_key_sha256,
        config.state_dir / "audit.db",
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
            app.state.serving = state = _load_state(config, metrics, load)
        except BaseException:
            access.close()
            raise
        follower = asyncio.create_task(state.reloader.follow(state))
        canary = asyncio.create_task(state.canary.run(state))
        watching = _start_observers(config, metrics, state, observers)
        # What start-up built (imported libraries, the model, the snapshot) lives as long as the
        # worker: frozen, a full garbage collection no longer walks it. Unfrozen, each one walked
        # ~70k objects in ~45 ms, a stall that every request in flight waited out (the p99).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            for task in watching:
                task.cancel()
            for observer in observers:
                observer.close()
            observers.clear()
            follower.cancel()
            canary.cancel()
            state.canary.close()
            del app.state.serving
            state.generation.close()
            state.feedback.close()  # before the fault table its writer reads (feedback faults)
            state.faults.close()
            access.close()

    app = FastAPI(title="recdrill", lifespan=lifespan)
    setattr(app.state, ACCESS_STATE, access)
    app.add_middleware(
        AdmissionControl,
        limit=config.max_in_flight,
        metrics=metrics,
        wait_s=config.admission_wait_ms / 1000.0,
        load=load,
    )
    app.add_middleware(AuditMiddleware)
    app.add_middleware(_MetricsMiddleware, metrics=metrics)
    reader, writer = [Depends(require_role(Role.READER))], [Depends(require_role(Role.WRITER))]
    operator, admin = [Depends(require_role(Role.OPERATOR))], [Depends(require_role(Role.ADMIN))]

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        # Neither the input nor a message echoing it goes back or into a log unscrubbed.
        errors = [
            {
                "loc": [p if isinstance(p, int) else scrub_text(str(p)) for p in e["loc"]],
                "msg": scrub_text(e["msg"]),
                "type": e["type"],
            }
            for e in exc.errors()
        ]
        return JSONResponse({"error": "invalid request", "detail": errors}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Same body shape as the 422 above, so a client reads every refusal from "error". A detail may
        # echo the request (a category, a path): e-mail addresses and phone numbers are scrubbed.
        detail = scrub_text(exc.detail) if isinstance(exc.detail, str) else exc.detail
        return JSONResponse({"error": detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def internal_error(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error: %s", type(exc).__name__)
        return JSONResponse({"error": "internal error"}, status_code=500)

    @app.post("/v1/recommend", dependencies=reader)
    async def recommend(body: RecommendRequest, s: Loaded) -> JSONResponse:
        started = time.perf_counter()
        g = s.generation  # this request's model version, whatever a reload does meanwhile
        request, unknown, user_known = _tier_request(g, body)
        arm = s.canary.choose(g, request)  # the primary's chain, or the canary's for this user
        if len(request.history) == 0:
            routed = RoutedAnswer(await g.popular.serve(request), g.popular.name)  # cold start
        else:
            routed = await arm.router.route(request)
            if routed.served_by != arm.router.tiers[0].name:
                metrics.fallbacks.inc()
            elif request.cache_key is not None:  # a primary answer: the user's new last-good list
                s.shared.remember(request.cache_key, CachedList(routed.answer.items, routed.answer.scores))
        metrics.served_by.labels(routed.served_by).inc()
        for tier, reason in routed.skipped:
            metrics.tier_skips.labels(tier, reason).inc()
        items = g.snapshot.item_ids[routed.answer.items].tolist()
        scores = routed.answer.scores.astype(float).tolist()
        latency_s = time.perf_counter() - started
        s.canary.observe(arm, g, request, routed, latency_s)
        if observers:
            seen = RecommendSeen(
                time.time(),
                request.history,
                len(body.history),
                unknown,
                user_known,
                routed.answer.items,
                routed.answer.scores,
                routed.served_by,
                arm.router.tiers[0].name,
                g.snapshot,
            )
            for observer in observers:
                observer.recommend(seen)
        return JSONResponse(
            {
                "items": [{"item_id": i, "score": v} for i, v in zip(items, scores, strict=True)],
                "served_by": routed.served_by,
                "model_version": arm.version,
                "latency_ms": latency_s * 1000.0,
            }
        )

    @app.post("/v1/feedback", dependencies=writer)
    async def feedback(body: FeedbackRequest, s: Loaded) -> JSONResponse:
        event = FeedbackEvent(body.user_id, body.item_id, body.event, body.ts, body.event_id)
        try:
            row = await s.feedback.submit(event)  # returns after the group commit, holding no thread
        except FeedbackLogError as exc:
            # Not committed, so not acknowledged: the client may retry (safely, with an event_id).
            raise HTTPException(503, detail=f"feedback not recorded: {exc}") from exc
        metrics.feedback.labels(body.event).inc()
        s.canary.feedback(body.user_id, body.item_id, body.event)  # a label for the canary judge
        for observer in observers:
            observer.feedback(FeedbackSeen(time.time(), body.item_id, body.event, body.price, row))
        return JSONResponse({"status": "committed", "id": row})

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        loaded: ServingState | None = getattr(app.state, "serving", None)
        if loaded is None:
            return JSONResponse({"status": "loading"}, status_code=503)
        return JSONResponse({"status": "ready", "model_version": loaded.model_version})

    @app.get("/metrics")
    async def prometheus_metrics() -> Response:
        return Response(metrics.exposition(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.post("/admin/faults", status_code=201, dependencies=operator)
    async def add_fault(body: FaultRequest, s: Loaded) -> dict[str, Any]:
        fault = s.faults.add(body.point, body.kind, body.ttl_s, body.latency_ms, body.rate)
        log.warning("fault %s injected: %s at %s for %.0f s", fault.id, fault.kind, fault.point, body.ttl_s)
        return fault.to_dict()

    @app.get("/admin/faults", dependencies=operator)
    async def list_faults(s: Loaded) -> list[dict[str, Any]]:
        return [f.to_dict() for f in s.faults.active(fresh=True)]

    @app.post("/admin/feedback/lookup", dependencies=operator)
    async def lookup_feedback(body: FeedbackLookupRequest, s: Loaded) -> JSONResponse:
        """Which of these client event ids are committed: a drill's proof that no acknowledged event
        was lost. ``asked`` counts distinct ids; ``missing`` keeps the order they were given in."""
        try:
            present = await asyncio.to_thread(s.feedback.present, body.event_ids)
        except FeedbackLogError as exc:
            raise HTTPException(503, detail=f"feedback log not readable: {exc}") from exc
        asked = list(dict.fromkeys(body.event_ids))
        missing = [event_id for event_id in asked if event_id not in present]
        return JSONResponse({"asked": len(asked), "present": len(asked) - len(missing), "missing": missing})

    @app.post("/admin/models/reload", dependencies=admin)
    async def reload_model(s: Loaded, body: ReloadRequest | None = None) -> JSONResponse:
        """A folder (``model_dir``), a registry version (``version``), or neither: the configured one."""
        folder = Path(body.model_dir) if body is not None and body.model_dir else None
        version = body.version if body is not None else None
        if folder is not None and version is not None:
            raise HTTPException(422, detail="give model_dir or version, not both")
        if folder is None and version is None:
            version = config.model_version  # None too: the configured folder
        try:
            if version is not None:
                result = await s.reloader.reload_version(s, version)
            else:
                result = await s.reloader.reload(s, folder)
        except RecdrillError as exc:  # refused (logged and counted by the reloader)
            return JSONResponse(
                {
                    "error": scrub_text(f"reload refused: {exc}"),
                    "reason": refusal_reason(exc),
                    "model_version": s.model_version,
                },
                status_code=422,
            )
        except Exception as exc:  # anything else still leaves the old model serving; say what it was
            log.exception("model reload failed")
            return JSONResponse(
                {
                    "error": scrub_text(f"reload failed: {type(exc).__name__}: {exc}"),
                    "reason": refusal_reason(exc),
                    "model_version": s.model_version,
                },
                status_code=500,
            )
        return JSONResponse(
            {
                "status": "reloaded",
                "model_dir": str(result.model_dir),
                "model_version": result.model_version,
                "previous_version": result.previous_version,
                "load_ms": result.load_ms,
            }
        )

    @app.post("/admin/models/canary", dependencies=admin)
    async def start_canary(body: CanaryRequest, s: Loaded) -> JSONResponse:
        """Load a registry version beside the primary as a canary or a shadow (see ``canary.py``)."""
        knobs: dict[str, Any] = {"min_samples": body.min_samples, "max_ndcg_drop": body.max_ndcg_drop}
        knobs["max_p99_ratio"] = body.max_p99_ratio
        try:
            judge = CanaryJudge(**{k: v for k, v in knobs.items() if v is not None})
            spec = CanarySpec(body.version, body.share, body.mode, body.auto_promote, judge)
            summary = await s.canary.start(spec, s.generation)
        except VersionNotFoundError as exc:
            raise HTTPException(404, detail=str(exc)) from exc
        except RecdrillError as exc:  # refused at verification or load, or by its stage
            reason = "stage" if isinstance(exc, StageError) else refusal_reason(exc)
            if reason not in ("stage", "invalid request"):  # the model itself was refused
                metrics.refusals.labels(reason).inc()
            log.warning("canary refused (%s): %s", reason, " ".join(str(exc).split()))
            return JSONResponse(
                {"error": scrub_text(f"canary refused: {exc}"), "reason": reason}, status_code=422
            )
        return JSONResponse({"status": "started", **summary})

    @app.delete("/admin/models/canary", dependencies=admin)
    async def stop_canary(s: Loaded) -> JSONResponse:
        version = await s.canary.stop()
        if version is None:
            raise HTTPException(404, detail="no canary is running")
        return JSONResponse({"status": "stopped", "version": version})

    @app.get("/admin/models/canary", dependencies=operator)
    async def canary_status(s: Loaded) -> JSONResponse:
        """Per-arm samples, mean NDCG@10 and p99 latency of this worker, and the judge's verdicts."""
        return JSONResponse(s.canary.summary(s.generation))

    @app.delete("/admin/faults/{fault_id}", dependencies=operator)
    async def remove_fault(fault_id: str, s: Loaded) -> dict[str, str]:
        if not s.faults.remove(fault_id):
            raise HTTPException(404, detail=f"no active fault {fault_id!r}")
        log.warning("fault %s removed", fault_id)
        return {"status": "removed", "id": fault_id}

    return app


async def _serving_state(request: Request) -> ServingState:
    # async on purpose: FastAPI runs a plain-def dependency in a thread pool, a hop per request.
    loaded: ServingState | None = getattr(request.app.state, "serving", None)
    if loaded is None:
        raise HTTPException(503, detail="model not loaded")
    return loaded


Loaded = Annotated[ServingState, Depends(_serving_state)]


def app_from_env() -> FastAPI:
    """Factory for uvicorn workers: the configuration comes from ``RECDRILL_*`` variables."""
    return create_app(ServeConfig.from_env())


def _load_state(config: ServeConfig, metrics: ServingMetrics, load: WorkerLoad) -> ServingState:
    config.state_dir.mkdir(parents=True, exist_ok=True)
    faults = FaultStore(config.state_dir / "faults.db")
    shared = Shared(config, metrics, faults, LastGoodCache(config.cache_users, config.cache_ttl_s), load=load)
    reloader = ModelReloader(shared)
    try:
        generation = _first_generation(config, shared, reloader)
    except BaseException:
        faults.close()
        raise
    canary = CanaryController(shared, reloader)
    feedback = FeedbackLog(config.state_dir / FEEDBACK_DB, faults=FeedbackFaults(faults))
    return ServingState(shared, feedback, reloader, generation, canary)


def _first_generation(config: ServeConfig, shared: Shared, reloader: ModelReloader) -> Generation:
    """A worker started after a reload (a replacement) serves the reloaded model, as its peers do;
    otherwise the configured registry version (verified, refused at start-up if it fails), else the
    configured folder."""
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
    return load_generation(config.model_dir, shared)


def _tier_request(s: Generation, body: RecommendRequest) -> tuple[TierRequest, int, bool | None]:
    """The request in dense ids, how many of the given history ids the catalogue lacks, and whether
    the user is known (None: anonymous)."""
    given = s.snapshot.item_index(body.history) if body.history else np.zeros(0, dtype=np.int64)
    history = given[given >= 0]
    unknown = len(given) - len(history)
    user_known: bool | None = None
    if body.user_id is not None:
        user = s.snapshot.user_index(body.user_id)
        user_known = user >= 0
        if user_known:
            history = np.concatenate([s.snapshot.histories.row(user), history])
    allowed = None
    if body.category is not None:
        allowed = s.category_items.get(body.category)
        if allowed is None:
            found = s.snapshot.category_items(body.category)
            if found is None:
                raise HTTPException(422, detail=f"unknown category {body.category!r}")
            allowed = s.category_items.setdefault(body.category, found)
    request = TierRequest(
        history[-HISTORY_LENGTH:].astype(np.int64), body.k, allowed, body.user_id, body.category
    )
    return request, unknown, user_known


def _start_observers(
    config: ServeConfig, metrics: ServingMetrics, state: ServingState, into: list[ServingObserver]
) -> list[asyncio.Task[None]]:
    """Start the configured observers (``observers.py``) in the background: importing them (the drift
    monitor loads scipy and pandas) takes seconds on a busy machine, and a replacement worker must
    answer before that, not after. Requests served meanwhile are not observed."""

    def served() -> ServedModels:
        g = state.generation
        return ServedModels(g.version, g.snapshot, g.model, g.fallback)

    context = ObserverContext(metrics.registry, config.state_dir, served)

    async def start(spec: str) -> None:
        try:
            factory = await asyncio.to_thread(load_factory, spec)
            observer = factory(context)
        except Exception:
            log.exception("observer %s did not start; serving goes on without it", spec)
            return
        into.append(observer)
        await observer.run()

    return [asyncio.create_task(start(spec)) for spec in config.observers]


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]
]


CLIENT_CLOSED = 499


class _MetricsMiddleware:
    """Counts requests and latency per route template (not per path, to bound label values).

    A plain ASGI middleware: Starlette's BaseHTTPMiddleware would cost more than the model call.
    """

    def __init__(self, app: ASGIApp, metrics: ServingMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(
        self,
        scope: Scope,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, capture)
        except asyncio.CancelledError:
            # The client went away and the server cancelled the request (Ray Serve does; uvicorn lets
            # it finish): not a server error.
            # 499 is nginx's "client closed request".
            if status == 500:
                status = CLIENT_CLOSED
            raise
        finally:
            # Admission control refuses before routing: it names the path it guarded instead.
            route = getattr(scope.get("route"), "path", None) or scope.get(SHED_ROUTE_KEY, "unmatched")
            self.metrics.requests.labels(route, str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)
            if status >= 500:
                self.metrics.errors.labels(route).inc()
