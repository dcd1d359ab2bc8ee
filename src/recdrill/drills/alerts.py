"""Alerts as a drill sees them: the target's Prometheus metrics, polled once a second.

A fault is *detected* when the deployment itself shows it: a drift flag goes up, a breaker opens,
admission starts shedding, a reload is refused, an anomaly is counted. The watcher turns each
``/metrics`` poll into signal events (a gauge switching on, a counter growing) so the drill can
report time to detect from the deployment's own alerts as well as from the hypotheses it checks.
The metric names are the ones ``deploy/prometheus/alerts.yml`` alerts on.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import httpx
from prometheus_client.parser import text_string_to_metric_families

# signal name -> (metric family, kind, threshold): a "gauge" signals when one of its series rises to
# the threshold, a "counter" when it grows
SIGNALS: dict[str, tuple[str, str, float]] = {
    "drift": ("recdrill_drift_detected", "gauge", 1.0),
    "breaker-open": ("recdrill_breaker_state", "gauge", 2.0),
    "anomaly": ("recdrill_anomalies", "counter", 0.0),
    "feedback-quarantined": ("recdrill_feedback_quarantined", "counter", 0.0),
    "model-refused": ("recdrill_model_refusals", "counter", 0.0),
    "shedding": ("recdrill_shed", "counter", 0.0),
    "server-errors": ("recdrill_errors", "counter", 0.0),
    "fallback": ("recdrill_fallbacks", "counter", 0.0),
    # A worker's event loop held past its stall threshold (its stack is in the server log): tells
    # a stall of the server from a client's own queueing in the drill's latency figures.
    "loop-stall": ("recdrill_event_loop_stalls", "counter", 0.0),
}


@dataclass(frozen=True)
class SignalEvent:
    """A signal seen at ``t`` (seconds from the start of traffic)."""

    t: float
    signal: str


def read_signals(text: str) -> dict[str, float | frozenset[str]]:
    """Per signal in one exposition: the counter's total, or the set of gauge series (by labels)
    at or over the signal's threshold."""
    families = {f.name: f for f in text_string_to_metric_families(text)}
    values: dict[str, float | frozenset[str]] = {}
    for name, (family, kind, threshold) in SIGNALS.items():
        found = families.get(family)
        if found is None:
            continue
        samples = [s for s in found.samples if not s.name.endswith("_created")]
        if kind == "gauge":
            values[name] = frozenset(
                ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
                for s in samples
                if s.value >= threshold
            )
        elif samples:
            values[name] = float(sum(s.value for s in samples))
    return values


@dataclass
class AlertWatcher:
    """Polls ``/metrics`` every ``every_s`` and records signal events; run it as an asyncio task."""

    every_s: float = 1.0
    events: list[SignalEvent] = field(default_factory=list)
    polls: int = 0
    failed_polls: int = 0
    _last: dict[str, float | frozenset[str]] = field(default_factory=dict)

    def observe(self, t: float, values: dict[str, float | frozenset[str]]) -> None:
        """Turn one poll into events: a gauge series newly at or over its threshold (a rising edge:
        a flag that stays up is one alert, not one per poll), a counter that grew."""
        for name, value in values.items():
            previous = self._last.get(name)
            if isinstance(value, frozenset):
                if value - (previous if isinstance(previous, frozenset) else frozenset()):
                    self.events.append(SignalEvent(t, name))
            elif isinstance(previous, float) and value > previous:
                self.events.append(SignalEvent(t, name))
            self._last[name] = value

    async def run(self, client: httpx.AsyncClient, t0: float) -> None:
        while True:
            try:
                response = await client.get("/metrics")
                if response.status_code == 200:
                    self.observe(time.monotonic() - t0, read_signals(response.text))
                    self.polls += 1
                else:
                    self.failed_polls += 1
            except (httpx.HTTPError, ValueError):
                self.failed_polls += 1
            await asyncio.sleep(self.every_s)

    def noisy(self, until_s: float) -> set[str]:
        """Signals already firing in the fault-free baseline: they cannot tell a fault apart."""
        return {e.signal for e in self.events if e.t < until_s}

    def first_after(
        self, start: float, end: float, ignore: set[str], only: frozenset[str] | None = None
    ) -> SignalEvent | None:
        """The first event in ``[start, end)`` of a signal not in ``ignore`` (and in ``only``, if given)."""
        for event in self.events:
            if (
                start <= event.t < end
                and event.signal not in ignore
                and (only is None or event.signal in only)
            ):
                return event
        return None
