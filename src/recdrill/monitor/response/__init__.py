"""The automatic response to sustained drift: fine-tune on recent data, judge on a held-out slice,
then promote through the registry (a canary on a server) or keep (``apply.apply``).

Imported on first use (PEP 562): the model stack loads only when a response runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from recdrill._lazy import lazy_getattr

_EXPORTS = {
    "AutoResponder": "responder",
    "ResponseDecision": "responder",
    "ResponsePolicy": "policy",
    "read_decisions": "apply",
    "record_decision": "apply",
    "RecentWindow": "data",
    "split_recent": "data",
    "fine_tune": "tuning",
    "heldout_metrics": "tuning",
}

__all__ = [
    "AutoResponder",
    "RecentWindow",
    "ResponseDecision",
    "ResponsePolicy",
    "fine_tune",
    "heldout_metrics",
    "read_decisions",
    "record_decision",
    "split_recent",
]

if TYPE_CHECKING:
    from recdrill.monitor.response.apply import read_decisions, record_decision
    from recdrill.monitor.response.data import RecentWindow, split_recent
    from recdrill.monitor.response.policy import ResponsePolicy
    from recdrill.monitor.response.responder import AutoResponder, ResponseDecision
    from recdrill.monitor.response.tuning import fine_tune, heldout_metrics


__getattr__ = lazy_getattr("recdrill.monitor.response", _EXPORTS, globals())
