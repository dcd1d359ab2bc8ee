"""Asking a running drill to stop early: a signal, an operator's tool, a supervisor's timeout.

A :class:`StopSwitch` is the one object such a caller touches. ``trip(reason)`` records why (the
first reason wins); the runner watches the switch while its drill runs and, once it is tripped,
takes the same path as an abort condition or the drill's own deadline: it stops the traffic,
reverts every fault, runs the rollbacks and writes a journal marked ``aborted`` with the reason.

``trip`` only assigns an attribute: no lock, no I/O, no event loop call. It is meant to be called
from a signal handler, which Python runs in the main thread between two bytecodes of whatever that
thread was doing, so anything that could wait on the interrupted code (a lock it holds, a buffered
stream it is writing) could deadlock the drill. The runner polls the switch instead
(``recdrill.drills.runner.STOP_POLL_S``).

Example:
    >>> switch = StopSwitch()
    >>> switch.state, switch.trip("SIGTERM"), switch.trip("SIGINT"), switch.reason
    ('idle', True, False, 'SIGTERM')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SwitchState = Literal["idle", "armed", "done"]


@dataclass
class StopSwitch:
    """Whether, and why, a drill was asked to stop; and whether a drill is watching.

    ``state`` is ``idle`` before a runner took the switch (nothing would see a trip yet: a signal
    handler should stop the program its own way), ``armed`` while a runner watches it (from the
    start of ``DrillRunner.run`` until its journal is written), and ``done`` after.
    """

    reason: str | None = None
    state: SwitchState = "idle"

    @property
    def tripped(self) -> bool:
        return self.reason is not None

    def trip(self, reason: str) -> bool:
        """Ask the drill to stop, saying why; True the first time, False when already asked."""
        if self.reason is not None:
            return False
        self.reason = reason
        return True

    def arm(self) -> None:
        """A runner starts watching the switch."""
        self.state = "armed"

    def disarm(self) -> None:
        """The runner has written its journal: a trip from now on changes nothing."""
        self.state = "done"
