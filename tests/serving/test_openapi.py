"""The OpenAPI document states what the server enforces: security per mode, every refusal with its
JSON schema, /metrics as text, and the run-time constraints (categories, the ts window). The
conformance fuzzing against a live server is ``benchmarks/fuzz.py`` (its --quick mode runs in CI)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from recdrill.serving.app import create_app
from recdrill.serving.config import ServeConfig
from recdrill.serving.event_time import event_time_window
from recdrill.serving.middleware.access_gate import flat_routes
from recdrill.serving.openapi import OpenApiDocument
from recdrill.serving.routes import ROUTERS

NOW = 1_800_000_000.0


def document(tmp_path: Path, keys_required: bool, categories: list[str] | None = None) -> dict[str, Any]:
    config = ServeConfig(model_dir=tmp_path / "model", state_dir=tmp_path / "state")
    app = create_app(config)
    window = (config.feedback_past_s, config.feedback_future_s)
    return OpenApiDocument(app, flat_routes(app.routes, ROUTERS), keys_required, window)(
        categories, "v1", NOW
    )


def operation(doc: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    found: dict[str, Any] = doc["paths"][path][method]
    return found


@pytest.mark.parametrize("keys_required", [False, True])
def test_security_is_stated_as_enforced_in_each_mode(tmp_path: Path, keys_required: bool) -> None:
    doc = document(tmp_path, keys_required)
    key = [{"APIKeyHeader": []}]
    assert operation(doc, "post", "/v1/recommend")["security"] == (key if keys_required else [{}, *key])
    assert operation(doc, "post", "/v1/feedback")["security"] == (key if keys_required else [{}, *key])
    assert operation(doc, "post", "/admin/faults")["security"] == key  # always a key
    assert operation(doc, "get", "/admin/models/canary")["security"] == key
    for probe in ("/healthz", "/readyz", "/metrics"):
        assert "security" not in operation(doc, "get", probe)


def test_every_refusal_is_documented_with_a_json_error(tmp_path: Path) -> None:
    doc = document(tmp_path, keys_required=False)
    recommend = operation(doc, "post", "/v1/recommend")["responses"]
    assert {"200", "400", "401", "403", "408", "413", "422", "429", "503"} <= set(recommend)
    assert recommend["422"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/InvalidRequestBody"
    }
    assert "Retry-After" in recommend["429"]["headers"]
    assert recommend["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/RecommendResponse"
    }
    assert "404" in operation(doc, "delete", "/admin/faults/{fault_id}")["responses"]
    healthz = operation(doc, "get", "/healthz")["responses"]  # the protocol's refusals reach any route
    assert {"408", "431", "503"} <= set(healthz) and "Retry-After" in healthz["503"]["headers"]
    assert "413" not in healthz  # no body to be too large
    assert "HTTPValidationError" not in doc["components"]["schemas"]  # FastAPI's shape is not ours


def test_metrics_are_text(tmp_path: Path) -> None:
    content = operation(document(tmp_path, False), "get", "/metrics")["responses"]["200"]["content"]
    assert set(content) == {"text/plain"}


def test_run_time_constraints_are_in_the_schema(tmp_path: Path) -> None:
    doc = document(tmp_path, False, categories=["toys", "beauty"])
    schemas = doc["components"]["schemas"]
    category = schemas["RecommendRequest"]["properties"]["category"]
    assert category["anyOf"][0] == {"type": "string", "enum": ["beauty", "toys"]}
    ts = schemas["FeedbackRequest"]["properties"]["ts"]
    assert (ts["minimum"], ts["maximum"]) == event_time_window(NOW, 30 * 86_400.0, 300.0)
    branches = schemas["FaultRequest"]["anyOf"]  # which kinds fit which point, as validate_fault
    assert {
        "properties": {"point": {"const": "ranker"}, "kind": {"enum": ["latency", "error", "nan"]}}
    } in branches


def test_the_document_is_rebuilt_when_the_version_or_the_window_changes(tmp_path: Path) -> None:
    config = ServeConfig(model_dir=tmp_path / "model", state_dir=tmp_path / "state")
    app = create_app(config)
    build = OpenApiDocument(app, flat_routes(app.routes, ROUTERS), False, (86_400.0, 300.0))
    first = build(["a"], "v1", NOW)
    assert build(["a"], "v1", NOW + 1) is first
    assert build(["a", "b"], "v2", NOW + 1) is not first
    assert build(["a"], "v1", NOW + 3 * 3600) is not first
