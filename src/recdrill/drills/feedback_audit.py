"""Proof that nothing acknowledged is lost: feedback posted through the drill, audited afterwards.

While the drill runs, the audit posts ``click`` events at a steady rate, each with its own
``event_id``. An event the server acknowledged (200, "committed") must be in the feedback log at the
end, whatever the faults did; a refused one (503) was never promised. After the faults are reverted
the audit asks ``POST /admin/feedback/lookup`` which acknowledged ids are present: the missing ones
are lost events, counted per fault window. A post whose answer never came may or may not be
committed: it is retried once with the same ``event_id`` (the log stores each id once), and counted
as unanswered if that fails too. A drill short of CPU skips the posts it is too late for (counted
as ``skipped``: never posted, so never promised; see :mod:`recdrill.drills.pacing`), and each
attempt is bounded as a whole by ``timeout_s``.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field

import httpx
import numpy as np

from recdrill.drills.pacing import Pacer
from recdrill.drills.replayer import ReplayPlan, arrival_times

LOOKUP_BATCH = 5000
MAX_IN_FLIGHT = 64  # audited posts out at once: a few per second, each answered within its timeout


@dataclass(frozen=True)
class PostedEvent:
    t: float
    event_id: str
    status: int  # 0: no answer


@dataclass
class FeedbackAudit:
    """Posts audited feedback at ``rate`` per second to ``/v1/feedback``."""

    plan: ReplayPlan
    rate: float
    seed: int = 0
    posted: list[PostedEvent] = field(default_factory=list)
    missing: set[str] | None = None  # after ``check``: acknowledged ids not in the log; None: unknown
    check_error: str | None = None
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    timeout_s: float = 5.0
    pacer: Pacer = field(default_factory=lambda: Pacer(max_in_flight=MAX_IN_FLIGHT))

    async def run(self, client: httpx.AsyncClient, duration_s: float, t0: float) -> None:
        """Post on a Poisson schedule from ``t0`` (a ``time.monotonic()`` value) for ``duration_s``."""
        if self.rate <= 0:
            return
        times = arrival_times(self.rate, duration_s, self.seed + 7)
        users = np.random.default_rng(self.seed + 8).integers(0, len(self.plan.user_ids), size=len(times))
        tasks = []
        for n, (at, user) in enumerate(zip(times.tolist(), users.tolist(), strict=True)):
            if await self.pacer.wait(t0 + at):
                tasks.append(self.pacer.launch(self._post(client, at, f"drill-{self.run_id}-{n}", int(user))))
        await asyncio.gather(*tasks)

    async def _post(self, client: httpx.AsyncClient, at: float, event_id: str, user: int) -> None:
        body = {
            "user_id": self.plan.user_ids[user],
            "item_id": self.plan.targets[user],
            "event": "click",
            "event_id": event_id,
        }
        status = 0
        for _ in range(2):  # same event_id: a retry cannot store the event twice
            try:
                async with asyncio.timeout(self.timeout_s):
                    status = (await client.post("/v1/feedback", json=body)).status_code
            except (httpx.HTTPError, TimeoutError):
                status = 0
            if status != 0:
                break
        self.posted.append(PostedEvent(at, event_id, status))

    @property
    def acknowledged(self) -> list[PostedEvent]:
        return [p for p in self.posted if p.status == 200]

    def verify(self, admin: httpx.Client) -> None:
        """Ask the server which acknowledged events it holds; sets ``missing`` (or ``check_error``)."""
        ids = [p.event_id for p in self.acknowledged]
        missing: set[str] = set()
        for start in range(0, len(ids), LOOKUP_BATCH):
            try:
                response = admin.post(
                    "/admin/feedback/lookup", json={"event_ids": ids[start : start + LOOKUP_BATCH]}
                )
            except httpx.HTTPError as exc:
                self.check_error = f"lookup failed: {type(exc).__name__}: {exc}"
                return
            if response.status_code != 200:
                self.check_error = f"lookup failed: HTTP {response.status_code} {response.text[:200]}"
                return
            missing.update(str(i) for i in response.json()["missing"])
        self.missing = missing

    def lost_between(self, start: float, end: float) -> int | None:
        """Acknowledged events posted in ``[start, end)`` that are not in the log (None: not checked)."""
        if self.missing is None:
            return None
        return sum(1 for p in self.acknowledged if start <= p.t < end and p.event_id in self.missing)

    def summary(self) -> dict[str, int | str | None]:
        statuses = [p.status for p in self.posted]
        return {
            "posted": len(statuses),
            "acknowledged": statuses.count(200),
            "refused": sum(1 for s in statuses if s not in (0, 200)),
            "unanswered": statuses.count(0),
            "skipped": self.pacer.skipped,  # never posted: the drill was short of CPU
            "lost": None if self.missing is None else len(self.missing),
            "check_error": self.check_error,
        }
