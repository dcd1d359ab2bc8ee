"""Drift and anomaly monitoring: streaming drift detectors, the default test per feature, batch checks.

The names below are imported on first use (PEP 562): scipy loads only when a detector is needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from recdrill.lazy_exports import lazy_getattr

_EXPORTS = {
    "AnomalyMonitor": "anomaly",
    "EventBatch": "anomaly",
    "ItemClickSpikeDetector": "anomaly",
    "UserBurstDetector": "anomaly",
    "LiveMonitor": "live",
    "AutoResponder": "response",
    "ResponseDecision": "response",
    "ResponsePolicy": "response_policy",
    "LiveMonitorConfig": "live",
    "DriftCheck": "batch_check",
    "check_files": "batch_check",
    "Chi2Detector": "chi2",
    "METHODS": "choose",
    "compare": "choose",
    "default_detector": "choose",
    "default_method": "choose",
    "Detector": "detector",
    "DriftResult": "detector",
    "JSDetector": "js",
    "KLDetector": "kl",
    "KSDetector": "ks",
    "MMDDetector": "mmd",
    "PSIDetector": "psi",
    "WassersteinDetector": "wasserstein",
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
    "ItemClickSpikeDetector",
    "JSDetector",
    "KLDetector",
    "KSDetector",
    "LiveMonitor",
    "LiveMonitorConfig",
    "MMDDetector",
    "PSIDetector",
    "ResponseDecision",
    "ResponsePolicy",
    "UserBurstDetector",
    "WassersteinDetector",
    "check_files",
    "compare",
    "default_detector",
    "default_method",
]

if TYPE_CHECKING:
    from recdrill.monitor.anomaly import AnomalyMonitor, EventBatch, ItemClickSpikeDetector, UserBurstDetector
    from recdrill.monitor.batch_check import DriftCheck, check_files
    from recdrill.monitor.chi2 import Chi2Detector
    from recdrill.monitor.choose import METHODS, compare, default_detector, default_method
    from recdrill.monitor.detector import Detector, DriftResult
    from recdrill.monitor.js import JSDetector
    from recdrill.monitor.kl import KLDetector
    from recdrill.monitor.ks import KSDetector
    from recdrill.monitor.live import LiveMonitor, LiveMonitorConfig
    from recdrill.monitor.mmd import MMDDetector
    from recdrill.monitor.psi import PSIDetector
    from recdrill.monitor.response import AutoResponder, ResponseDecision
    from recdrill.monitor.response_policy import ResponsePolicy
    from recdrill.monitor.wasserstein import WassersteinDetector


__getattr__ = lazy_getattr("recdrill.monitor", _EXPORTS, globals())
