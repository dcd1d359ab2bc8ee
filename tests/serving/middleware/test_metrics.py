"""RequestMetrics: statuses, latencies and 5xx per route template, around tiny hand-written ASGI apps
and a real FastAPI app, in process."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from recdrill.serving.metrics import ServingMetrics
from recdrill.serving.middleware.admission import SHED_ROUTE_KEY
from recdrill.serving.middleware.metrics import CLIENT_CLOSED, RequestMetrics


def value(metrics: ServingMetrics, name: str, **labels: str) -> float:
    found = metrics.registry.get_sample_value(name, labels)
    return 0.0 if found is None else found


def responding(status: int, route: str | None = None, shed: str | None = None) -> ASGIApp:
    """An ASGI app answering ``status``; as Starlette's router does, it names the matched ``route``
    in the scope (or, as admission control does, the ``shed`` path it refused)."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if route is not None:
            scope["route"] = SimpleNamespace(path=route)
        if shed is not None:
            scope[SHED_ROUTE_KEY] = shed
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    return app


async def call(app: RequestMetrics, path: str = "/x", kind: str = "http") -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app({"type": kind, "path": path, "method": "GET", "headers": []}, receive, send)
    return sent


def test_an_answer_is_counted_under_its_route_template_with_its_status() -> None:
    metrics = ServingMetrics()
    app = RequestMetrics(responding(201, route="/admin/faults/{fault_id}"), metrics)
    sent = asyncio.run(call(app, "/admin/faults/abc123"))
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]  # passed on
    assert value(metrics, "recdrill_requests_total", route="/admin/faults/{fault_id}", status="201") == 1
    assert value(metrics, "recdrill_request_latency_seconds_count", route="/admin/faults/{fault_id}") == 1
    assert value(metrics, "recdrill_requests_total", route="/admin/faults/abc123", status="201") == 0
    assert value(metrics, "recdrill_errors_total", route="/admin/faults/{fault_id}") == 0


def test_a_request_no_route_matched_is_counted_as_unmatched() -> None:
    metrics = ServingMetrics()
    asyncio.run(call(RequestMetrics(responding(404), metrics), "/no/such/path"))
    assert value(metrics, "recdrill_requests_total", route="unmatched", status="404") == 1


def test_a_request_shed_before_routing_is_counted_under_the_path_it_guarded() -> None:
    metrics = ServingMetrics()
    asyncio.run(call(RequestMetrics(responding(429, shed="/v1/recommend"), metrics), "/v1/recommend"))
    assert value(metrics, "recdrill_requests_total", route="/v1/recommend", status="429") == 1


def test_a_5xx_answer_is_also_counted_as_an_error() -> None:
    metrics = ServingMetrics()
    app = RequestMetrics(responding(503, route="/v1/feedback"), metrics)
    asyncio.run(call(app))
    asyncio.run(call(app))
    assert value(metrics, "recdrill_requests_total", route="/v1/feedback", status="503") == 2
    assert value(metrics, "recdrill_errors_total", route="/v1/feedback") == 2


def test_an_exception_before_any_answer_counts_as_a_500_and_propagates() -> None:
    metrics = ServingMetrics()

    async def failing(scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = SimpleNamespace(path="/boom")
        raise ZeroDivisionError("inside the app")

    with pytest.raises(ZeroDivisionError, match="inside the app"):
        asyncio.run(call(RequestMetrics(failing, metrics)))
    assert value(metrics, "recdrill_requests_total", route="/boom", status="500") == 1
    assert value(metrics, "recdrill_errors_total", route="/boom") == 1


def test_a_cancelled_request_is_a_499_not_a_server_error() -> None:
    metrics = ServingMetrics()

    async def hanging(scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = SimpleNamespace(path="/v1/recommend")
        await asyncio.Event().wait()  # until the server cancels it (the client went away)

    async def cancel_it() -> None:
        task = asyncio.ensure_future(call(RequestMetrics(hanging, metrics)))
        await asyncio.sleep(0)  # the request is inside the app
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_it())
    assert CLIENT_CLOSED == 499
    assert value(metrics, "recdrill_requests_total", route="/v1/recommend", status="499") == 1
    assert value(metrics, "recdrill_errors_total", route="/v1/recommend") == 0


def test_a_request_cancelled_after_its_answer_started_keeps_that_status() -> None:
    metrics = ServingMetrics()

    async def streaming(scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = SimpleNamespace(path="/stream")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await asyncio.Event().wait()

    async def cancel_it() -> None:
        task = asyncio.ensure_future(call(RequestMetrics(streaming, metrics)))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_it())
    assert value(metrics, "recdrill_requests_total", route="/stream", status="200") == 1
    assert value(metrics, "recdrill_requests_total", route="/stream", status="499") == 0


def test_scopes_other_than_http_pass_through_uncounted() -> None:
    metrics = ServingMetrics()
    seen: list[str] = []

    async def lifespan_app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    asyncio.run(call(RequestMetrics(lifespan_app, metrics), kind="lifespan"))
    assert seen == ["lifespan"]
    families = {family.name: family for family in metrics.registry.collect()}
    assert families["recdrill_requests"].samples == []
    assert families["recdrill_request_latency_seconds"].samples == []


def test_a_real_apps_path_parameters_are_counted_under_the_template() -> None:
    metrics = ServingMetrics()
    app = FastAPI()

    @app.get("/things/{thing_id}")
    async def thing(thing_id: str) -> dict[str, str]:
        return {"id": thing_id}

    async def run() -> None:
        transport = httpx.ASGITransport(app=RequestMetrics(app, metrics))
        async with httpx.AsyncClient(transport=transport, base_url="http://worker") as client:
            for thing_id in ("1", "2", "jane@example.com"):
                assert (await client.get(f"/things/{thing_id}")).status_code == 200
            assert (await client.get("/elsewhere")).status_code == 404

    asyncio.run(run())
    assert value(metrics, "recdrill_requests_total", route="/things/{thing_id}", status="200") == 3
    assert value(metrics, "recdrill_requests_total", route="unmatched", status="404") == 1
    assert "jane@example.com" not in metrics.exposition().decode()  # no request text in a label
