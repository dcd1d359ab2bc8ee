"""The fault catalogue: every fault a drill can inject, as a named inject/revert pair of plain functions.

``catalogue`` registers the fault types; each other module holds one family (model, cache, store,
network, host, process, traffic, artifact, bad push) or a mechanism they use (the loopback
``proxy``, ``side_traffic``, the server's fault table). Imported on first use (PEP 562).
(The list of every fault type is catalogue.catalogue(): a package attribute of that name would be
shadowed by the submodule.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from recdrill._lazy import lazy_getattr

_EXPORTS = {
    "FAULT_MODULES": "catalogue",
    "FaultParams": "catalogue",
    "FaultType": "catalogue",
    "NoParams": "catalogue",
    "Observations": "catalogue",
    "fault_type": "catalogue",
    "register": "catalogue",
}

__all__ = [
    "FAULT_MODULES",
    "FaultParams",
    "FaultType",
    "NoParams",
    "Observations",
    "fault_type",
    "register",
]

if TYPE_CHECKING:
    from recdrill.drills.faults.catalogue import (
        FAULT_MODULES,
        FaultParams,
        FaultType,
        NoParams,
        Observations,
        fault_type,
        register,
    )


__getattr__ = lazy_getattr("recdrill.drills.faults", _EXPORTS, globals())
