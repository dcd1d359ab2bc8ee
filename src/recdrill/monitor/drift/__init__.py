"""Streaming drift detectors (River style: ``update(batch)``, then read ``drift_detected``), the default
test per column, and the batch check of two tables.

Imported on first use (PEP 562): scipy and pandas load only when a detector or a table needs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from recdrill._lazy import lazy_getattr

_EXPORTS = {
    "Detector": "detector",
    "DriftResult": "detector",
    "KSDetector": "ks",
    "Chi2Detector": "chi2",
    "JSDetector": "js",
    "KLDetector": "kl",
    "PSIDetector": "psi",
    "WassersteinDetector": "wasserstein",
    "MMDDetector": "mmd",
    "BinnedDetector": "histogram",
    "Binning": "bins",
    "ColumnKind": "bins",
    "METHODS": "defaults",
    "compare": "defaults",
    "default_detector": "defaults",
    "default_method": "defaults",
    "method_class": "defaults",
    "DriftCheck": "batch",
    "check_files": "batch",
    "check_frames": "batch",
    "write_html": "html",
    "RingBuffer": "window",
    "SortedWindow": "window",
}

__all__ = [
    "METHODS",
    "BinnedDetector",
    "Binning",
    "Chi2Detector",
    "ColumnKind",
    "Detector",
    "DriftCheck",
    "DriftResult",
    "JSDetector",
    "KLDetector",
    "KSDetector",
    "MMDDetector",
    "PSIDetector",
    "RingBuffer",
    "SortedWindow",
    "WassersteinDetector",
    "check_files",
    "check_frames",
    "compare",
    "default_detector",
    "default_method",
    "method_class",
    "write_html",
]

if TYPE_CHECKING:
    from recdrill.monitor.drift.batch import DriftCheck, check_files, check_frames
    from recdrill.monitor.drift.bins import Binning, ColumnKind
    from recdrill.monitor.drift.chi2 import Chi2Detector
    from recdrill.monitor.drift.defaults import (
        METHODS,
        compare,
        default_detector,
        default_method,
        method_class,
    )
    from recdrill.monitor.drift.detector import Detector, DriftResult
    from recdrill.monitor.drift.histogram import BinnedDetector
    from recdrill.monitor.drift.html import write_html
    from recdrill.monitor.drift.js import JSDetector
    from recdrill.monitor.drift.kl import KLDetector
    from recdrill.monitor.drift.ks import KSDetector
    from recdrill.monitor.drift.mmd import MMDDetector
    from recdrill.monitor.drift.psi import PSIDetector
    from recdrill.monitor.drift.wasserstein import WassersteinDetector
    from recdrill.monitor.drift.window import RingBuffer, SortedWindow


__getattr__ = lazy_getattr("recdrill.monitor.drift", _EXPORTS, globals())
