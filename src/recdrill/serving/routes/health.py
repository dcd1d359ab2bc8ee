"""Liveness, readiness and metrics: open to anyone (a load balancer, Prometheus), and answering
while the model is still loading."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from recdrill.serving.metrics import ServingMetrics
from recdrill.serving.schemas import Health, Readiness
from recdrill.serving.state import STATE_KEY, ServingState

METRICS_KEY = "metrics"  # ``app.state.metrics``: the worker's ServingMetrics, there from the start

router = APIRouter()
METRICS_TEXT = {
    "description": "Prometheus text exposition format 0.0.4.",
    "content": {"text/plain": {"schema": {"type": "string"}}},
}


@router.get("/healthz", response_model=Health)
async def healthz() -> dict[str, str]:
    """The process answers."""
    return {"status": "ok"}


@router.get(
    "/readyz", response_model=Readiness, responses={503: {"model": Readiness, "description": "Loading."}}
)
async def readyz(request: Request) -> JSONResponse:
    """200 with the served version once the model is loaded; 503 before."""
    loaded: ServingState | None = getattr(request.app.state, STATE_KEY, None)
    if loaded is None:
        return JSONResponse({"status": "loading"}, status_code=503)
    return JSONResponse({"status": "ready", "model_version": loaded.model_version})


@router.get("/metrics", response_class=PlainTextResponse, responses={200: METRICS_TEXT})
async def prometheus_metrics(request: Request) -> Response:
    """Prometheus text exposition of this worker (of every worker, with several)."""
    metrics: ServingMetrics = getattr(request.app.state, METRICS_KEY)
    # Off the event loop: with several workers it reads every worker's files (the dead ones' too,
    # after restarts), which a scrape every second must not make every request wait for.
    text = await asyncio.to_thread(metrics.exposition)
    return Response(text, media_type="text/plain; version=0.0.4; charset=utf-8")
