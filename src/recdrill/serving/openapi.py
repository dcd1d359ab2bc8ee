"""The OpenAPI document as the server enforces it, so that a client generator, a reader or a
conformance fuzzer (``benchmarks/fuzz.py``: schemathesis) can trust it.

FastAPI's own document left out most of what the API does: the refusals (400, 401, 403, 408, 413, 431,
422 in the API's own shape, 429, 503), the text of ``/metrics``, the security as it depends on the
key store, and the catalogue's categories. :func:`enforced_openapi` starts from FastAPI's document
and adds, per operation:

* ``security``: none on the probes and ``/metrics``; the API key required on operator and admin
  routes always, and on reader and writer routes when a key store is configured; optional
  (``[{}, {APIKeyHeader: []}]``) on those routes of a server without keys (the demo);
* every status the middleware and the route can answer, each with its JSON error schema
  (``{"error": ...}``; a 422 lists the invalid fields; ``Retry-After`` on 429 and 503);
* constraints checked at run time, written into the schema as they stand now: the categories of the
  catalogue being served (an enum), and the feedback ``ts`` window around the server's clock
  (``minimum``/``maximum``: the window moves in whole hours, ``event_time.py``); the document is
  rebuilt when the served model or the window changes.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.routing import BaseRoute

from recdrill.security.roles import Role
from recdrill.serving.event_time import event_time_window
from recdrill.serving.middleware.access_gate import role_of
from recdrill.serving.state import STATE_KEY

SCHEME = "APIKeyHeader"


class ErrorBody(BaseModel):
    """Every refusal: what went wrong, for a person."""

    error: str


class InvalidField(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class InvalidRequestBody(ErrorBody):
    """A 422: the invalid fields, each with its location (``["body", "k"]``) and why (a refused
    model change names its ``reason`` instead, see :class:`ModelRefusalBody`)."""

    detail: list[InvalidField] | None = None


class ModelRefusalBody(ErrorBody):
    """A refused model change: a stable ``reason`` slug, and the version still serving."""

    reason: str
    model_version: str | None = None


DESCRIPTIONS = {
    400: "Malformed request: an HTTP/1.1 request without Host, or an invalid Content-Length.",
    401: "Missing, unknown or revoked API key (X-API-Key).",
    403: "The API key's role does not grant this route.",
    404: "Not found.",
    408: "The request's headers or body did not arrive within the server's deadline.",
    413: "The request body is larger than the server's limit (1 MiB by default).",
    431: "The request line and headers are larger than 64 KiB.",
    422: "Invalid request: the fields and why.",
    429: "Too many requests: this worker is at its admission limit, or the key past its rate limit.",
    500: "Internal error (no detail is given).",
    503: "Not ready: the model is loading, or a store the route needs is unavailable; or this worker "
    "holds as many connections as it accepts (with Retry-After).",
}
_RETRY_AFTER = {
    "Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}
}


def error_responses(*statuses: int, model: type[BaseModel] = ErrorBody) -> dict[int | str, dict[str, Any]]:
    """``responses=`` of a route decorator: these statuses, each with an error body ``model``."""
    return {
        status: {"model": model, "description": DESCRIPTIONS.get(status, "Refused.")} for status in statuses
    }


class OpenApiDocument:
    """Builds the document for one app and caches it while the served version and the clock allow.

    ``state`` is read when the document is built (the served catalogue's categories); the app's
    routes are given flat (``access_gate.flat_routes``)."""

    def __init__(
        self, app: FastAPI, routes: Sequence[BaseRoute], keys_required: bool, ts_window: tuple[float, float]
    ):
        self.app = app
        self.routes = [r for r in routes if isinstance(r, APIRoute) and r.include_in_schema]
        self.keys_required = keys_required
        self.ts_window = ts_window
        self._cached: tuple[tuple[str | None, tuple[float, float]], dict[str, Any]] | None = None

    def __call__(self, categories: Sequence[str] | None, version: str | None, now: float) -> dict[str, Any]:
        key = (version, event_time_window(now, *self.ts_window))  # what the document states
        if self._cached is not None and self._cached[0] == key:
            return self._cached[1]
        document = self.build(categories, now)
        self._cached = (key, document)
        return document

    def build(self, categories: Sequence[str] | None, now: float) -> dict[str, Any]:
        app = self.app
        document = get_openapi(
            title=app.title, version=app.version, routes=app.routes, description=app.description
        )
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        for model in (ErrorBody, InvalidField, InvalidRequestBody, ModelRefusalBody):
            schemas[model.__name__] = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        for route in self.routes:
            for method in sorted(route.methods or ()):
                operation = document["paths"][route.path_format][method.lower()]
                self._complete(operation, route)
        _constrain(schemas, categories, now, self.ts_window)
        return document

    def _complete(self, operation: dict[str, Any], route: APIRoute) -> None:
        role = role_of(route)
        responses: dict[str, Any] = operation.setdefault("responses", {})
        statuses = [400, 408, 431, 500, 503]  # any request: the protocol's own refusals and the cap
        if route.body_field is not None or route.dependant.path_params:
            statuses += [413, 422] if route.body_field is not None else [422]
        if role is not None:
            statuses += [401, 403, 429]
            if role.audited or self.keys_required:
                operation["security"] = [{SCHEME: []}]
            else:
                operation["security"] = [{}, {SCHEME: []}]  # optional: a key given is checked
        else:
            operation.pop("security", None)
        for status in statuses:
            responses.setdefault(str(status), _error(status))
        if "422" in responses:
            responses["422"] = _error(422, "InvalidRequestBody")
        for busy in ("429", "503"):
            if busy in responses:
                responses[busy].setdefault("headers", _RETRY_AFTER)
        if role is Role.ADMIN and route.path.startswith("/admin/models") and "422" in responses:
            refusal = {"$ref": "#/components/schemas/ModelRefusalBody"}
            invalid = {"$ref": "#/components/schemas/InvalidRequestBody"}
            responses["422"]["content"]["application/json"]["schema"] = {"anyOf": [invalid, refusal]}


def _error(status: int, schema: str = "ErrorBody") -> dict[str, Any]:
    content = {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}
    return {"description": DESCRIPTIONS.get(status, "Refused."), "content": content}


def _constrain(
    schemas: dict[str, Any], categories: Sequence[str] | None, now: float, ts_window: tuple[float, float]
) -> None:
    """Write the run-time constraints into the request schemas as they stand now."""
    recommend = schemas.get("RecommendRequest", {}).get("properties", {})
    if categories is not None and "category" in recommend:
        named = [{"type": "string", "enum": sorted(categories)}] if categories else []
        recommend["category"] = {
            "anyOf": [*named, {"type": "null"}],
            "description": "A category of the served catalogue (sub-categories included): its items only.",
        }
    feedback = schemas.get("FeedbackRequest", {}).get("properties", {})
    if "ts" in feedback:
        feedback["ts"]["minimum"], feedback["ts"]["maximum"] = event_time_window(now, *ts_window)


def install_openapi(
    app: FastAPI, routes: Sequence[BaseRoute], keys_required: bool, ts_window: tuple[float, float]
) -> None:
    """Serve :class:`OpenApiDocument`'s document at ``/openapi.json`` (and in ``/docs``)."""
    document = OpenApiDocument(app, routes, keys_required, ts_window)

    def openapi() -> dict[str, Any]:
        state = getattr(app.state, STATE_KEY, None)
        if state is None:  # still loading: no catalogue yet
            return document(None, None, time.time())
        generation = state.generation
        return document(generation.snapshot.category_names, generation.version, time.time())

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to replace it
