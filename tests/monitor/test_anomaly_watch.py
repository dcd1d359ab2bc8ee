"""The shim that keeps the old observer spec ``recdrill.monitor.anomaly_watch:anomaly_watch`` working."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry

import recdrill.monitor.anomaly_watch as shim
from recdrill.monitor.anomaly import watch
from recdrill.serving.observers import ObserverContext, ServedModels, load_factory

OLD_SPEC = "recdrill.monitor.anomaly_watch:anomaly_watch"
NEW_SPEC = "recdrill.monitor.anomaly.watch:anomaly_watch"


def _served() -> ServedModels:
    raise AssertionError("not needed to build the observer")


def test_the_old_spec_resolves_to_the_same_factory_as_the_new_one() -> None:
    old, new = load_factory(OLD_SPEC), load_factory(NEW_SPEC)
    assert old is new is watch.anomaly_watch


def test_the_shim_exports_only_the_factory() -> None:
    assert shim.__all__ == ["anomaly_watch"]
    assert shim.anomaly_watch is watch.anomaly_watch


def test_the_old_spec_builds_the_anomaly_observer(tmp_path: Path) -> None:
    observer = load_factory(OLD_SPEC)(ObserverContext(CollectorRegistry(), tmp_path, _served))
    assert isinstance(observer, watch.AnomalyWatch)
    assert observer.context.state_dir == tmp_path and not observer.judging
