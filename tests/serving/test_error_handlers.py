"""The error handlers: every refusal is JSON with an "error" key, scrubbed of e-mail addresses and
phone numbers, and a 500 says nothing; a small FastAPI app in process."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, field_validator

from recdrill.data.pseudonymise import scrub_text
from recdrill.serving.error_handlers import install_error_handlers

EMAIL = "jane.doe@example.com"


class Body(BaseModel):
    name: str
    counts: dict[str, int] = {}

    @field_validator("name")
    @classmethod
    def _not_forbidden(cls, name: str) -> str:
        if name.startswith("bad"):
            raise ValueError(f"{name} is not allowed")
        return name


@pytest.fixture
def app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/items")
    async def items(body: Body) -> dict[str, str]:
        return {"name": body.name}

    @app.get("/user/{user}")
    async def user(user: str) -> None:
        raise HTTPException(404, detail=f"no user {user}")

    @app.get("/locked")
    async def locked() -> None:
        raise HTTPException(401, detail="missing key", headers={"WWW-Authenticate": "APIKey"})

    @app.get("/structured")
    async def structured() -> None:
        raise HTTPException(409, detail={"conflict": "version", "held_by": "v3"})

    @app.get("/crash")
    async def crash() -> None:
        raise ZeroDivisionError(f"secret detail about {EMAIL}")

    return app


def request(app: FastAPI, method: str, path: str, **kwargs: object) -> httpx.Response:
    async def run() -> httpx.Response:
        # The app answers a 500 and then re-raises (Starlette's ServerErrorMiddleware): keep the answer.
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://worker") as client:
            return await client.request(method, path, **kwargs)  # type: ignore[arg-type]

    return asyncio.run(run())


def test_an_invalid_body_is_a_422_listing_each_field(app: FastAPI) -> None:
    response = request(app, "POST", "/items", json={"counts": {"a": "x"}})
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "invalid request"
    assert [(d["loc"], d["type"]) for d in body["detail"]] == [
        (["body", "name"], "missing"),
        (["body", "counts", "a"], "int_parsing"),
    ]
    assert all(set(d) == {"loc", "msg", "type"} for d in body["detail"])


def test_a_422_is_scrubbed_of_what_the_client_sent(app: FastAPI) -> None:
    response = request(app, "POST", "/items", json={"name": f"bad {EMAIL}", "counts": {EMAIL: "x"}})
    assert response.status_code == 422
    assert EMAIL not in response.text
    by_field = {d["loc"][1]: d for d in response.json()["detail"]}
    assert by_field["name"]["msg"] == scrub_text(f"Value error, bad {EMAIL} is not allowed")
    assert by_field["counts"]["loc"] == ["body", "counts", scrub_text(EMAIL)]


def test_an_http_exception_keeps_its_status_and_headers_with_its_detail_as_the_error(app: FastAPI) -> None:
    response = request(app, "GET", "/locked")
    assert response.status_code == 401
    assert response.json() == {"error": "missing key"}
    assert response.headers["www-authenticate"] == "APIKey"


def test_an_http_exception_detail_is_scrubbed(app: FastAPI) -> None:
    response = request(app, "GET", f"/user/{EMAIL}")
    assert response.status_code == 404
    assert response.json() == {"error": f"no user {scrub_text(EMAIL)}"}
    assert EMAIL not in response.text


def test_a_detail_that_is_not_text_is_passed_on_as_it_is(app: FastAPI) -> None:
    response = request(app, "GET", "/structured")
    assert response.status_code == 409
    assert response.json() == {"error": {"conflict": "version", "held_by": "v3"}}


def test_an_unknown_route_is_a_404_in_the_same_shape(app: FastAPI) -> None:
    response = request(app, "GET", "/nowhere")
    assert response.status_code == 404 and response.json() == {"error": "Not Found"}


def test_an_unexpected_error_is_a_500_without_detail_logged_by_type_only(
    app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="recdrill.serving.error_handlers"):
        response = request(app, "GET", "/crash")
    assert response.status_code == 500
    assert response.json() == {"error": "internal error"}
    assert "secret" not in response.text
    [record] = [r for r in caplog.records if r.name == "recdrill.serving.error_handlers"]
    assert record.getMessage() == "unhandled error: ZeroDivisionError"
    assert record.exc_info is not None and record.exc_info[0] is ZeroDivisionError
