"""Drills: declarative fault scenarios run against live traffic, judged, reverted and reported.

A :class:`Scenario` (validated YAML) names faults from the catalogue (``faults/``) and the
hypotheses that must hold; :class:`DrillRunner` replays traffic against a :class:`DrillTarget`,
injects and reverts each fault on schedule, checks that the target is left clean and builds the
journal that ``write_report`` turns into a report. Imported on first use (PEP 562).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from recdrill._lazy import lazy_getattr

_EXPORTS = {
    "DrillAborted": "runner",
    "DrillError": "runner",
    "DrillRunner": "runner",
    "Scenario": "scenario",
    "builtin_names": "scenario",
    "builtin_scenario": "scenario",
    "load_scenario": "scenario",
    "parse_scenario": "scenario",
    "DrillTarget": "target",
    "FaultUnavailableError": "target",
    "LocalServer": "target",
    "WorkerSource": "target",
    "ReplayPlan": "replayer",
    "Replayer": "replayer",
    "write_report": "report",
    "cleanliness_report": "cleanliness",
    "leftovers": "cleanliness",
    "FaultType": "faults.catalogue",
    "catalogue": "faults.catalogue",
    "fault_type": "faults.catalogue",
}

__all__ = [
    "DrillAborted",
    "DrillError",
    "DrillRunner",
    "DrillTarget",
    "FaultType",
    "FaultUnavailableError",
    "LocalServer",
    "ReplayPlan",
    "Replayer",
    "Scenario",
    "WorkerSource",
    "builtin_names",
    "builtin_scenario",
    "catalogue",
    "cleanliness_report",
    "fault_type",
    "leftovers",
    "load_scenario",
    "parse_scenario",
    "write_report",
]

if TYPE_CHECKING:
    from recdrill.drills.cleanliness import cleanliness_report, leftovers
    from recdrill.drills.faults.catalogue import FaultType, catalogue, fault_type
    from recdrill.drills.replayer import Replayer, ReplayPlan
    from recdrill.drills.report import write_report
    from recdrill.drills.runner import DrillRunner
    from recdrill.drills.scenario import (
        Scenario,
        builtin_names,
        builtin_scenario,
        load_scenario,
        parse_scenario,
    )
    from recdrill.drills.target import DrillTarget, LocalServer, WorkerSource
    from recdrill.errors import DrillAborted, DrillError, FaultUnavailableError


__getattr__ = lazy_getattr("recdrill.drills", _EXPORTS, globals())
