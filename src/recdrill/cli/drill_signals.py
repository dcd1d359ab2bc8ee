"""SIGTERM and SIGINT for a drill run from the command line: the drill's abort path, not a corpse.

Python's default SIGTERM ends the process at once: no ``finally`` runs, so no fault is reverted, no
report or journal is written, and the server the drill started (in a process group of its own, so
that its workers can be signalled together) keeps running. A drill command therefore runs inside
:func:`drill_session`, which

- routes SIGTERM and SIGINT to the drill's :class:`~recdrill.drills.stop.StopSwitch` while a runner
  watches it: the runner stops its traffic, reverts its faults, runs its rollbacks and writes a
  report and journal marked ``aborted`` (``"reason": "stopped"``); a second signal only says that
  the drill is already on its way out;
- before the drill began (the shop being built, the model trained, the server started), ends the
  command as those signals would (SIGINT as ``KeyboardInterrupt``, SIGTERM with exit code 143),
  through every ``finally`` and context manager, so a started server is stopped;
- on the way out, however the command ends, stops every process it started that is still running
  (SIGTERM, then SIGKILL): a server, a CPU hog, a helper. Only processes born during the command
  count, so a caller's own children (a test's server) are never touched.

The handlers are installed here, on the command's way in, and only in the main thread (the only
thread a handler can be installed from); the previous handlers come back afterwards.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from types import FrameType
from typing import Any

from recdrill.drills.stop import StopSwitch
from recdrill.procs import ProcessRef, descendants, start_time, stop_processes

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
EXIT_SIGNAL_BASE = 128  # a command ended by signal N exits 128 + N, as a shell reports it
LEFTOVER_TIMEOUT_S = 10.0  # a leftover process has this long to end on SIGTERM before SIGKILL


def signal_exit_code(name: str | None) -> int | None:
    """``128 + N`` for the name of a stop signal (``"SIGTERM"``: 143), else None."""
    if name not in {s.name for s in STOP_SIGNALS}:
        return None
    return EXIT_SIGNAL_BASE + int(signal.Signals[name])


@contextmanager
def drill_session(switch: StopSwitch) -> Iterator[None]:
    """Run a drill command's body with SIGTERM/SIGINT routed to ``switch`` (see the module
    docstring) and stop, on the way out, the processes it started and left running."""
    before = _own_processes()
    previous = _install(_handler(switch))
    try:
        yield
    finally:
        try:
            _stop_new_processes(before)
        finally:
            _restore(previous)


def _handler(switch: StopSwitch) -> Callable[[int, FrameType | None], None]:
    def handle(signum: int, _: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if switch.state == "armed":
            first = switch.trip(name)
            _say(
                f"recdrill: {name}: aborting the drill (traffic stopped, faults reverted, report written)"
                if first
                else f"recdrill: {name}: the drill is already stopping; its rollbacks and report come first"
            )
            return
        if switch.state == "done":
            return  # the report is written: the command ends by itself in a moment
        switch.trip(name)
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        _say(f"recdrill: {name}: stopping before the drill began")
        raise SystemExit(EXIT_SIGNAL_BASE + signum)

    return handle


def _say(line: str) -> None:
    # os.write, not click.echo: a handler may interrupt a write to the same buffered stream.
    with suppress(OSError):
        os.write(2, (line + "\n").encode())


def _install(handler: Callable[[int, FrameType | None], None]) -> dict[int, Any] | None:
    if threading.current_thread() is not threading.main_thread():
        return None  # signal.signal works only there; a drill run from a thread keeps Python's
    # Overrides an ignored SIGINT as well: a shell without job control starts background jobs with
    # SIGINT ignored, and a drill must still stop (and revert) on it.
    return {signum: signal.signal(signum, handler) for signum in STOP_SIGNALS}


def _restore(previous: dict[int, Any] | None) -> None:
    for signum, handler in (previous or {}).items():
        signal.signal(signum, handler)


def _own_processes() -> set[ProcessRef]:
    """Every process below this one now, named with its start time."""
    refs = set()
    for pid in descendants(os.getpid()):
        started = start_time(pid)
        if started is not None:
            refs.add(ProcessRef(pid, started))
    return refs


def _stop_new_processes(before: set[ProcessRef]) -> None:
    """Stop what this command started and left running (a leftover is a bug: say so)."""
    new = sorted(_own_processes() - before, key=lambda ref: ref.pid)
    stopped = stop_processes(new, LEFTOVER_TIMEOUT_S)
    if stopped:
        _say(f"recdrill: stopped {len(stopped)} process(es) the drill left running: pids {stopped}")
