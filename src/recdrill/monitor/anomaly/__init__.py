"""Anomalies in feedback (bot bursts, poisoned click spikes) and the quarantine of the events involved.

``AnomalyMonitor`` runs the rules over the feedback log; ``anomaly_watch`` is its observer inside a
server (one judging worker at a time). Imported on first use (PEP 562).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from recdrill._lazy import lazy_getattr

_EXPORTS = {
    "AnomalyMonitor": "monitor",
    "PollResult": "monitor",
    "UserBurstRule": "user_bursts",
    "ItemClickSpikeRule": "item_spikes",
    "EventBatch": "flags",
    "Flag": "flags",
    "FlagBook": "flags",
    "AnomalyWatch": "watch",
    "anomaly_watch": "watch",
}

__all__ = [
    "AnomalyMonitor",
    "AnomalyWatch",
    "EventBatch",
    "Flag",
    "FlagBook",
    "ItemClickSpikeRule",
    "PollResult",
    "UserBurstRule",
    "anomaly_watch",
]

if TYPE_CHECKING:
    from recdrill.monitor.anomaly.flags import EventBatch, Flag, FlagBook
    from recdrill.monitor.anomaly.item_spikes import ItemClickSpikeRule
    from recdrill.monitor.anomaly.monitor import AnomalyMonitor, PollResult
    from recdrill.monitor.anomaly.user_bursts import UserBurstRule
    from recdrill.monitor.anomaly.watch import AnomalyWatch, anomaly_watch


__getattr__ = lazy_getattr("recdrill.monitor.anomaly", _EXPORTS, globals())
