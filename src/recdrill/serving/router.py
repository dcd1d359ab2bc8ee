"""The tier router: try each tier in order within the request's deadline, fall back to the last."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

import numpy as np

from recdrill.serving.tiers import InvalidAnswerError, Tier, TierAnswer, TierRequest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RoutedAnswer:
    answer: TierAnswer
    served_by: str
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (tier, reason): error, late, invalid


class TierRouter:
    """Tries ``tiers`` in order, each within what is left of ``deadline_s``; ``last`` always answers.

    A tier is skipped when it raises (``error``), has not answered by the deadline (``late``) or
    returns non-finite scores or a malformed list (``invalid``).
    """

    def __init__(self, tiers: list[Tier], last: Tier, deadline_s: float = 0.05) -> None:
        self.tiers = tiers
        self.last = last
        self.deadline_s = deadline_s

    async def route(self, request: TierRequest) -> RoutedAnswer:
        started = time.perf_counter()
        skipped: list[tuple[str, str]] = []
        for tier in self.tiers:
            remaining = self.deadline_s - (time.perf_counter() - started)
            if remaining <= 0:
                skipped.append((tier.name, "late"))
                continue
            try:
                # asyncio.timeout runs the tier in this task: wait_for would create a task per
                # request, and its wait in the loop's ready queue would eat into the deadline.
                async with asyncio.timeout(remaining):
                    answer = await tier.serve(request)
            except TimeoutError:
                skipped.append((tier.name, "late"))
                continue
            except InvalidAnswerError:
                skipped.append((tier.name, "invalid"))
                continue
            except Exception as exc:  # any tier failure is survivable: that is the point of tiers
                log.debug("tier %s failed: %s", tier.name, exc)
                skipped.append((tier.name, "error"))
                continue
            if time.perf_counter() - started > self.deadline_s:
                skipped.append((tier.name, "late"))  # answered, but after the deadline: discard
            elif not _is_valid(answer, request):
                skipped.append((tier.name, "invalid"))
            else:
                return RoutedAnswer(answer, tier.name, skipped)
        return RoutedAnswer(await self.last.serve(request), self.last.name, skipped)


def _is_valid(answer: TierAnswer, request: TierRequest) -> bool:
    return (
        len(answer.items) == len(answer.scores)
        and len(answer.items) <= request.k
        and bool(np.all(np.isfinite(answer.scores)))
    )
