"""A circuit breaker per tier: stop calling a tier that keeps failing, probe it again later.

States and transitions (Hystrix's rolling window, resilience4j's slow-call rate)::

    CLOSED --(>= min_calls in the window and failure or slow-call rate at its threshold)--> OPEN
    OPEN --(open_s passed; checked when a call asks)--> HALF_OPEN
    HALF_OPEN --(a probe fails)--> OPEN
    HALF_OPEN --(probes successes in a row)--> CLOSED

The window is ``window_s`` seconds long, kept as ``buckets`` buckets that roll over with the clock,
so old calls fall out without storing each one. A call is slow when it succeeded but took at least
``slow_call_s``; a call cut off at its deadline counts as a failure and as slow.

Every admitted call holds a :class:`Permit`; its result is only counted while the breaker is still
in the state that admitted it, so a late answer from before a transition cannot close or trip the
breaker by mistake.

Example (a manual clock makes every transition exact):
    >>> now = [0.0]
    >>> config = BreakerConfig(min_calls=2, open_s=5, probes=1)
    >>> breaker = CircuitBreaker("primary", config, clock=lambda: now[0])
    >>> for _ in range(2):
    ...     breaker.record(breaker.acquire(), ok=False, duration_s=0.01)
    >>> breaker.state.name, breaker.acquire()
    ('OPEN', None)
    >>> now[0] = 5.0
    >>> probe = breaker.acquire()
    >>> breaker.state.name
    'HALF_OPEN'
    >>> breaker.record(probe, ok=True, duration_s=0.01)
    >>> breaker.state.name
    'CLOSED'
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

from recdrill._params import validate_params


class BreakerState(IntEnum):
    """Ordered by severity, so the largest value across workers is the worst state (the gauge's max)."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


@dataclass(frozen=True)
class BreakerConfig:
    """When to trip, how long to stay open, and how many probes decide in half-open.

    Defaults follow Hystrix (10 s window in 10 buckets, 50 % errors over at least 20 calls) with a
    shorter cool-down: a recommender's primary should come back within seconds of a fault ending.
    """

    window_s: float = 10.0
    buckets: int = 10
    min_calls: int = 20
    failure_rate: float = 0.5
    slow_call_s: float = math.inf
    slow_rate: float = 0.8
    open_s: float = 3.0
    probes: int = 3

    def __post_init__(self) -> None:
        checks = {
            "window_s": (self.window_s, self.window_s > 0, "> 0"),
            "buckets": (self.buckets, self.buckets >= 1, "an int >= 1"),
            "min_calls": (self.min_calls, self.min_calls >= 1, "an int >= 1"),
            "failure_rate": (self.failure_rate, 0 < self.failure_rate <= 1, "in (0, 1]"),
            "slow_call_s": (self.slow_call_s, self.slow_call_s > 0, "> 0"),
            "slow_rate": (self.slow_rate, 0 < self.slow_rate <= 1, "in (0, 1]"),
            "open_s": (self.open_s, self.open_s >= 0, ">= 0"),
            "probes": (self.probes, self.probes >= 1, "an int >= 1"),
        }
        validate_params("BreakerConfig", checks)


@dataclass(frozen=True)
class Permit:
    """Leave to make one call; ``generation`` ties its result to the state that admitted it."""

    generation: int
    probe: bool


Listener = Callable[[str, BreakerState, BreakerState], None]


class CircuitBreaker:
    """One tier's breaker. Not thread-safe: it lives on the event loop, as the router does."""

    def __init__(
        self,
        name: str,
        config: BreakerConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
        listeners: list[Listener] | None = None,
    ) -> None:
        self.name = name
        self.config = config or BreakerConfig()
        self.clock = clock
        self.listeners = list(listeners or [])
        self.state = BreakerState.CLOSED
        self._generation = 0
        self._opened_at = 0.0
        self._probes_out = 0
        self._probe_successes = 0
        self._width = self.config.window_s / self.config.buckets
        # Per bucket: [epoch, calls, failures, slow]; a bucket whose epoch is stale counts as empty.
        self._buckets = [[-1, 0, 0, 0] for _ in range(self.config.buckets)]

    def acquire(self) -> Permit | None:
        """A permit for one call, or None when the tier must be skipped (open, or probes all out)."""
        if self.state is BreakerState.OPEN:
            if self.clock() - self._opened_at < self.config.open_s:
                return None
            self._move(BreakerState.HALF_OPEN)
        if self.state is BreakerState.HALF_OPEN:
            if self._probes_out + self._probe_successes >= self.config.probes:
                return None
            self._probes_out += 1
            return Permit(self._generation, probe=True)
        return Permit(self._generation, probe=False)

    def record(self, permit: Permit | None, ok: bool, duration_s: float) -> None:
        """Count one call's outcome (``ok`` False for errors, invalid answers and deadline misses)."""
        if permit is None or permit.generation != self._generation:
            return  # admitted under an earlier state: its result says nothing about this one
        if permit.probe:
            self._probes_out -= 1
            if not ok:
                self._open()
                return
            self._probe_successes += 1
            if self._probe_successes >= self.config.probes:
                self._move(BreakerState.CLOSED)
            return
        slow = not ok or duration_s >= self.config.slow_call_s
        bucket = self._bucket()
        bucket[1] += 1
        bucket[2] += not ok
        bucket[3] += slow
        calls, failures, slows = self.counts()
        if calls >= self.config.min_calls and (
            failures >= self.config.failure_rate * calls or slows >= self.config.slow_rate * calls
        ):
            self._open()

    def release(self, permit: Permit | None) -> None:
        """Give back a permit whose call was abandoned (cancelled) without an outcome."""
        if permit is not None and permit.probe and permit.generation == self._generation:
            self._probes_out -= 1

    def reset(self) -> None:
        """Close the breaker and forget the window (a new model was loaded into the tier)."""
        self._move(BreakerState.CLOSED)

    def counts(self) -> tuple[int, int, int]:
        """Calls, failures and slow calls in the rolling window ending now."""
        oldest = self._epoch() - self.config.buckets + 1
        live = [b for b in self._buckets if b[0] >= oldest]
        return sum(b[1] for b in live), sum(b[2] for b in live), sum(b[3] for b in live)

    def _epoch(self) -> int:
        return math.floor(self.clock() / self._width)

    def _bucket(self) -> list[int]:
        epoch = self._epoch()
        bucket = self._buckets[epoch % self.config.buckets]
        if bucket[0] != epoch:
            bucket[:] = [epoch, 0, 0, 0]
        return bucket

    def _open(self) -> None:
        self._opened_at = self.clock()
        self._move(BreakerState.OPEN)

    def _move(self, state: BreakerState) -> None:
        old = self.state
        self.state = state
        self._generation += 1
        self._probes_out = 0
        self._probe_successes = 0
        if state is BreakerState.CLOSED:
            for bucket in self._buckets:
                bucket[:] = [-1, 0, 0, 0]
        if old is not state:
            for listener in self.listeners:
                listener(self.name, old, state)
