"""The tier router: try each tier in order, each within its share of the request's deadline.

Skip reasons, as counted in ``recdrill_tier_skips_total``:

- ``open``: the tier's circuit breaker is open (or all half-open probes are out): skipped at once;
- ``late``: no answer within the tier's budget, or no time left when its turn came;
- ``error``: the tier raised;
- ``invalid``: NaN or infinite scores, or a malformed list;
- any :class:`~recdrill.serving.tiers.TierSkip` reason (``miss``, ``no_category``): nothing to say.

The last tier always answers and has no breaker or deadline. A route with ``first_when`` is tried
before all others while that says so (the ``cache/stale`` fault: a cache in front of the model).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from recdrill.errors import ConfigError
from recdrill.serving.breaker import CircuitBreaker
from recdrill.serving.tiers import InvalidAnswerError, Tier, TierAnswer, TierRequest, TierSkip

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RoutedAnswer:
    answer: TierAnswer
    served_by: str
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (tier, reason)


@dataclass(frozen=True)
class Route:
    """A tier in the chain: at most ``share`` of the request deadline, behind an optional breaker."""

    tier: Tier
    share: float = 1.0
    breaker: CircuitBreaker | None = None
    first_when: Callable[[], bool] | None = None  # asked per request: True puts this route first

    def __post_init__(self) -> None:
        if not 0 < self.share <= 1:
            raise ConfigError(f"The 'share' of tier {self.tier.name!r} must be in (0, 1], got {self.share}")


class TierRouter:
    """Tries ``tiers`` in order within ``deadline_s`` in all; ``last`` always answers.

    ``tiers`` may be plain tiers (the whole remaining deadline, no breaker) or :class:`Route` s.
    """

    def __init__(self, tiers: Sequence[Tier | Route], last: Tier, deadline_s: float = 0.05) -> None:
        self.routes = [t if isinstance(t, Route) else Route(t) for t in tiers]
        self.last = last
        self.deadline_s = deadline_s
        # Only routes that may jump the queue are asked per request (none, unless a cache is wired).
        self._may_lead = [(i, r) for i, r in enumerate(self.routes) if i > 0 and r.first_when is not None]

    @property
    def tiers(self) -> list[Tier]:
        return [route.tier for route in self.routes]

    async def route(self, request: TierRequest) -> RoutedAnswer:
        started = time.perf_counter()
        skipped: list[tuple[str, str]] = []
        for route in self._ordered():
            reason, answer = await self._try(route, request, started)
            if answer is not None:
                return RoutedAnswer(answer, route.tier.name, skipped)
            skipped.append((route.tier.name, reason))
        return RoutedAnswer(await self.last.serve(request), self.last.name, skipped)

    def _ordered(self) -> list[Route]:
        for index, leader in self._may_lead:
            assert leader.first_when is not None
            if leader.first_when():
                return [leader, *self.routes[:index], *self.routes[index + 1 :]]
        return self.routes

    async def _try(self, route: Route, request: TierRequest, started: float) -> tuple[str, TierAnswer | None]:
        """One tier's attempt: ("", answer) or (skip reason, None); the breaker hears the outcome."""
        remaining = self.deadline_s - (time.perf_counter() - started)
        budget = min(remaining, route.share * self.deadline_s)
        if budget <= 0:
            return "late", None
        breaker = route.breaker
        permit = breaker.acquire() if breaker is not None else None
        if breaker is not None and permit is None:
            return "open", None
        called = time.perf_counter()
        reason = ""
        answer: TierAnswer | None = None
        try:
            # asyncio.timeout runs the tier in this task: wait_for would create a task per
            # request, and its wait in the loop's ready queue would eat into the deadline.
            async with asyncio.timeout(budget):
                answer = await route.tier.serve(request)
        except TimeoutError:
            reason = "late"
        except InvalidAnswerError:
            reason = "invalid"
        except TierSkip as skip:
            if breaker is not None:
                breaker.release(permit)
            return skip.reason, None
        except asyncio.CancelledError:
            if breaker is not None:
                breaker.release(permit)
            raise
        except Exception as exc:  # any tier failure is survivable: that is the point of tiers
            log.debug("tier %s failed: %s", route.tier.name, exc)
            reason = "error"
        duration = time.perf_counter() - called
        if answer is not None:
            if duration > budget:
                reason = "late"  # answered, but after its budget (it blocked the loop): discard
            elif not _is_valid(answer, request):
                reason = "invalid"
        if breaker is not None:
            breaker.record(permit, ok=not reason, duration_s=duration)
        return (reason, None) if reason else ("", answer)


def _is_valid(answer: TierAnswer, request: TierRequest) -> bool:
    return (
        len(answer.items) == len(answer.scores)
        and len(answer.items) <= request.k
        and bool(np.all(np.isfinite(answer.scores)))
    )
