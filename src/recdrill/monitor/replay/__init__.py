"""Offline evaluation of the monitor on recorded logs: a real shop month by month (``retail``), and a
shop replayed through the live monitor on a simulated clock (``shop``). Not the drills' HTTP replay.

Imported on first use (PEP 562).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from recdrill._lazy import lazy_getattr

_EXPORTS = {
    "Replay": "retail",
    "replay": "retail",
    "ReplayResult": "shop",
    "replay_shop": "shop",
}

__all__ = [
    "Replay",
    "ReplayResult",
    "replay",
    "replay_shop",
]

if TYPE_CHECKING:
    from recdrill.monitor.replay.retail import Replay, replay
    from recdrill.monitor.replay.shop import ReplayResult, replay_shop


__getattr__ = lazy_getattr("recdrill.monitor.replay", _EXPORTS, globals())
