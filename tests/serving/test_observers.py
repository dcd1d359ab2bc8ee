"""Observers of served traffic: the protocol, the null observer, and resolving "module:factory" specs."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from recdrill.errors import ConfigError
from recdrill.serving.observers import (
    FeedbackSeen,
    NullObserver,
    ObserverContext,
    RecommendSeen,
    ServedModels,
    ServingObserver,
    load_factory,
)

PROTOCOL = ("recommend", "feedback", "run", "close")


def no_models() -> ServedModels:
    raise AssertionError("the null observer never asks for the served models")


def test_the_null_observer_has_every_protocol_method_with_the_same_kind() -> None:
    for name in PROTOCOL:
        ours, declared = getattr(NullObserver, name), getattr(ServingObserver, name)
        assert callable(ours)
        assert inspect.iscoroutinefunction(ours) is inspect.iscoroutinefunction(declared), name
        assert list(inspect.signature(ours).parameters) == list(inspect.signature(declared).parameters)
    assert inspect.iscoroutinefunction(ServingObserver.run)


def test_the_null_observer_keeps_its_context_and_observes_nothing(tmp_path: Path) -> None:
    context = ObserverContext(CollectorRegistry(), tmp_path, no_models)
    observer = NullObserver(context)
    assert observer.context is context and NullObserver().context is None
    seen = FeedbackSeen(at=1.0, item_id="SKU-1", event="click", price=None, row_id=3)
    assert observer.feedback(seen) is None
    assert asyncio.run(observer.run()) is None
    observer.close()
    assert list(tmp_path.iterdir()) == []  # nothing written to the state folder


def test_seen_records_are_frozen() -> None:
    seen = FeedbackSeen(at=1.0, item_id="SKU-1", event="cart", price=9.5, row_id=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        seen.event = "purchase"  # type: ignore[misc]
    assert {f.name for f in dataclasses.fields(RecommendSeen)} >= {"history", "items", "scores", "served_by"}
    assert "user_id" not in {f.name for f in dataclasses.fields(FeedbackSeen)}  # no raw id leaves a request


def test_load_factory_resolves_a_module_and_name() -> None:
    assert load_factory("recdrill.serving.observers:NullObserver") is NullObserver


def test_the_specs_users_configure_resolve_to_the_monitors_factories() -> None:
    from recdrill.monitor.anomaly.watch import anomaly_watch
    from recdrill.monitor.live import live_monitor

    assert load_factory("recdrill.monitor.live:live_monitor") is live_monitor
    assert load_factory("recdrill.monitor.anomaly_watch:anomaly_watch") is anomaly_watch  # the old spec
    for factory in (live_monitor, anomaly_watch):
        assert list(inspect.signature(factory).parameters) == ["context"]


@pytest.mark.parametrize(
    "spec", ["recdrill.serving.observers", ":NullObserver", "recdrill.serving.observers:", ""]
)
def test_a_malformed_spec_is_refused_naming_it(spec: str) -> None:
    with pytest.raises(ConfigError, match=r"must look like 'package.module:factory'") as caught:
        load_factory(spec)
    assert f"observer {spec!r}" in str(caught.value)


def test_a_missing_module_is_refused_naming_the_spec_and_module() -> None:
    spec = "recdrill.no_such_monitor:factory"
    with pytest.raises(ConfigError, match=r"cannot import recdrill.no_such_monitor") as caught:
        load_factory(spec)
    assert str(caught.value).startswith(f"observer {spec!r}: ")


@pytest.mark.parametrize(
    ("spec", "name"),
    [
        ("recdrill.serving.observers:nothing_here", "nothing_here"),
        ("recdrill.contract:API_KEY_HEADER", "API_KEY_HEADER"),
    ],
)
def test_a_missing_or_uncallable_name_is_refused(spec: str, name: str) -> None:
    module = spec.partition(":")[0]
    with pytest.raises(ConfigError, match=f"has no callable {name!r}") as caught:
        load_factory(spec)
    assert str(caught.value) == f"observer {spec!r}: {module} has no callable {name!r}"
