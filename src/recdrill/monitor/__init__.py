"""Monitoring: streaming drift detectors (``drift/``), anomaly rules over the feedback log
(``anomaly/``), the automatic response to drift (``response/``), offline replays (``replay/``) and the
live monitor inside a server (``live``).

The names below are imported on first use (PEP 562): scipy loads only when a detector is needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from recdrill._lazy import lazy_getattr

_EXPORTS = {
    "AnomalyMonitor": "anomaly",
    "EventBatch": "anomaly",
    "ItemClickSpikeRule": "anomaly",
    "UserBurstRule": "anomaly",
    "LiveMonitor": "live",
    "LiveMonitorConfig": "live",
    "AutoResponder": "response",
    "ResponseDecision": "response",
    "ResponsePolicy": "response",
    "DriftCheck": "drift",
    "check_files": "drift",
    "Chi2Detector": "drift",
    "METHODS": "drift",
    "compare": "drift",
    "default_detector": "drift",
    "default_method": "drift",
    "Detector": "drift",
    "DriftResult": "drift",
    "JSDetector": "drift",
    "KLDetector": "drift",
    "KSDetector": "drift",
    "MMDDetector": "drift",
    "PSIDetector": "drift",
    "WassersteinDetector": "drift",
}

__all__ = [
    "METHODS",
    "AnomalyMonitor",
    "AutoResponder",
    "Chi2Detector",
    "Detector",
    "DriftCheck",
    "DriftResult",
    "EventBatch",
    "ItemClickSpikeRule",
    "JSDetector",
    "KLDetector",
    "KSDetector",
    "LiveMonitor",
    "LiveMonitorConfig",
    "MMDDetector",
    "PSIDetector",
    "ResponseDecision",
    "ResponsePolicy",
    "UserBurstRule",
    "WassersteinDetector",
    "check_files",
    "compare",
    "default_detector",
    "default_method",
]

if TYPE_CHECKING:
    from recdrill.monitor.anomaly import AnomalyMonitor, EventBatch, ItemClickSpikeRule, UserBurstRule
    from recdrill.monitor.drift import (
        METHODS,
        Chi2Detector,
        Detector,
        DriftCheck,
        DriftResult,
        JSDetector,
        KLDetector,
        KSDetector,
        MMDDetector,
        PSIDetector,
        WassersteinDetector,
        check_files,
        compare,
        default_detector,
        default_method,
    )
    from recdrill.monitor.live import LiveMonitor, LiveMonitorConfig
    from recdrill.monitor.response import AutoResponder, ResponseDecision, ResponsePolicy


__getattr__ = lazy_getattr("recdrill.monitor", _EXPORTS, globals())
