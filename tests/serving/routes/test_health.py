"""/healthz, /readyz and /metrics: open to anyone, answering before the model is loaded (in process)
and once it is (the shared route server)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from recdrill.serving.app import create_app
from recdrill.serving.config import ServeConfig
from recdrill.serving.metrics import ServingMetrics
from recdrill.serving.middleware.admission import WorkerLoad
from recdrill.serving.routes.health import METRICS_KEY
from recdrill.serving.state import STATE_KEY, load_state
from tests.serving.test_app import metric

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


def get_all(app: FastAPI, *paths: str) -> list[httpx.Response]:
    """GET each path of ``app`` in process (no lifespan runs: the model is never loaded by this)."""

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://worker") as client:
            return [await client.get(path) for path in paths]

    return asyncio.run(run())


def test_before_the_model_is_loaded_the_worker_is_alive_but_not_ready(
    routes_model_dir: Path, tmp_path: Path
) -> None:
    app = create_app(ServeConfig(routes_model_dir, tmp_path / "state"))
    healthz, readyz, metrics = get_all(app, "/healthz", "/readyz", "/metrics")
    assert healthz.status_code == 200 and healthz.json() == {"status": "ok"}
    assert readyz.status_code == 503 and readyz.json() == {"status": "loading"}
    assert metrics.status_code == 200 and metrics.headers["content-type"] == PROMETHEUS_TEXT
    assert metric(metrics.text, "recdrill_requests_total", route="/readyz", status="503") == 1


def test_readiness_follows_the_loaded_state(routes_model_dir: Path, tmp_path: Path) -> None:
    app = create_app(ServeConfig(routes_model_dir, tmp_path / "state"))
    metrics: ServingMetrics = getattr(app.state, METRICS_KEY)
    state = load_state(ServeConfig(routes_model_dir, tmp_path / "state"), metrics, WorkerLoad(4))
    try:
        setattr(app.state, STATE_KEY, state)  # what the lifespan does once the model is loaded
        [ready] = get_all(app, "/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready", "model_version": state.model_version}
        delattr(app.state, STATE_KEY)  # what it does at shutdown
        [stopping] = get_all(app, "/readyz")
        assert stopping.status_code == 503 and stopping.json() == {"status": "loading"}
    finally:
        state.close()


def test_the_served_worker_is_ready_with_its_model_version(api: httpx.Client) -> None:
    assert api.get("/healthz").json() == {"status": "ok"}
    ready = api.get("/readyz")
    assert ready.status_code == 200
    assert set(ready.json()) == {"status", "model_version"} and ready.json()["status"] == "ready"
    answer = api.post("/v1/recommend", json={"user_id": "u0", "k": 2}).json()
    assert ready.json()["model_version"] == answer["model_version"]


def test_probes_and_metrics_ignore_a_wrong_key(api: httpx.Client) -> None:
    wrong = {"X-API-Key": "not-a-key"}
    assert api.get("/healthz", headers=wrong).status_code == 200
    assert api.get("/readyz", headers=wrong).status_code == 200
    assert api.get("/metrics", headers=wrong).status_code == 200


def test_metrics_are_prometheus_text_counting_each_route(api: httpx.Client) -> None:
    before = api.get("/metrics").text
    for _ in range(3):
        api.get("/healthz")
    response = api.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"] == PROMETHEUS_TEXT
    names = {family.name for family in text_string_to_metric_families(response.text)}
    assert {"recdrill_requests", "recdrill_request_latency_seconds", "recdrill_served_by"} <= names
    counted = metric(response.text, "recdrill_requests_total", route="/healthz", status="200")
    assert counted - metric(before, "recdrill_requests_total", route="/healthz", status="200") == 3
