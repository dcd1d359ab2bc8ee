"""Canaries and shadows: a registry version served beside the primary to a sticky share of users (or
scored in its shadow), judged online from feedback labels and latency, and promoted or rolled back
by itself. Imported on first use (PEP 562).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from recdrill._lazy import lazy_getattr

_EXPORTS = {
    "CanaryController": "controller",
    "ArmChoice": "arm",
    "CandidateArm": "arm",
    "CanarySpec": "arm",
    "ArmStats": "judge",
    "CanaryJudge": "judge",
    "Verdict": "judge",
    "ArmTracker": "stats",
    "CanaryPointer": "records",
}

__all__ = [
    "ArmChoice",
    "ArmStats",
    "ArmTracker",
    "CanaryController",
    "CanaryJudge",
    "CanaryPointer",
    "CanarySpec",
    "CandidateArm",
    "Verdict",
]

if TYPE_CHECKING:
    from recdrill.serving.canary.arm import ArmChoice, CanarySpec, CandidateArm
    from recdrill.serving.canary.controller import CanaryController
    from recdrill.serving.canary.judge import ArmStats, CanaryJudge, Verdict
    from recdrill.serving.canary.records import CanaryPointer
    from recdrill.serving.canary.stats import ArmTracker


__getattr__ = lazy_getattr("recdrill.serving.canary", _EXPORTS, globals())
