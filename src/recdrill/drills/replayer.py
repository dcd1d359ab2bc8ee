"""Open-loop traffic replay: Poisson arrivals at a target rate, each request scored against the
user's true next item.

Open loop means requests are sent on schedule whether or not earlier ones have answered, so a slow
server cannot slow the clock, and latency is measured from the *scheduled* send time (no
coordinated omission). A replayer that cannot keep its schedule (its process is short of CPU)
skips the requests it is too late for rather than sending them in a burst (see
:mod:`recdrill.drills.pacing`): their scheduled times are kept in ``skipped``, apart from the
records, since no request was sent. Each attempt is bounded as a whole by ``timeout_s``.

A failed request may be retried once (``retry=True``), as a resilient client would: ``/v1/recommend``
is idempotent (reading it twice changes nothing), so a second try is safe. Retried are the failures
that say "this attempt did not reach a working server" (the rule is :mod:`recdrill.drills.retry`):
the connection was refused, reset or closed without a response (a worker died), or 502/503/504. Not
retried: a client timeout (the request's time budget is spent, and under overload a retry adds
load), 429 (the server asked for fewer requests, not more) and other statuses (a retry would fail
the same way).
Each record keeps the first attempt's outcome, so reports show availability on first try and after
the retry separately. Feedback posts are never replayed this way: a lost connection does not say
whether the event was committed, so a blind retry could store it twice (the feedback log
deduplicates only events that carry a client ``event_id``).

With ``feedback=True`` (opt-in; off for drills) each answered request is followed by a
``/v1/feedback`` post of the user's true next item (a ``click``), as if the user then took it: the
labels a canary judge scores each arm by (``recdrill.serving.canary.controller``). The post is sent after the
answer's latency is taken, and its status is kept in the record.

An https ``base_url`` is verified (chain and host name) against the ``verify`` context, by default
the system store; give :func:`recdrill.security.tls.client_ssl_context` a CA bundle for a private
CA. There is no switch that turns verification off.
"""

from __future__ import annotations

import asyncio
import math
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import numpy as np

from recdrill.contract import API_KEY_HEADER
from recdrill.data.splits import EvalFold
from recdrill.drills.pacing import SEND_SLACK_S, Pacer
from recdrill.drills.retry import is_retriable_error, is_retriable_status
from recdrill.errors import ConfigError
from recdrill.eval.metrics import ndcg_of_item
from recdrill.security.tls import client_ssl_context


@dataclass(frozen=True)
class ReplayPlan:
    """Who to ask for and what each should have got: external user ids and their true next items."""

    user_ids: tuple[str, ...]
    targets: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.user_ids or len(self.user_ids) != len(self.targets):
            raise ConfigError("a replay plan needs as many targets as users, and at least one user")

    @classmethod
    def from_fold(cls, fold: EvalFold) -> ReplayPlan:
        """The fold's users, each to be recommended to and judged against its held-out item."""
        data = fold.fit_data
        users = tuple(str(u) for u in data.user_ids[fold.users])
        targets = tuple(str(i) for i in data.catalog.item_ids[fold.targets])
        return cls(users, targets)


@dataclass(frozen=True)
class RequestRecord:
    """One replayed request. Times are seconds from the start of traffic."""

    scheduled_s: float
    latency_ms: float
    status: int  # HTTP status, or 0 when no response came (connection error, client timeout)
    served_by: str | None
    hit10: float
    ndcg10: float
    error: str | None = None
    first_status: int | None = None  # the first attempt's status when it was retried, else None
    model_version: str | None = None  # what the answer said served it
    feedback_status: int | None = None  # with feedback=True: the feedback post's status (0: no answer)

    @property
    def ok(self) -> bool:
        """Answered with a 2xx status, after at most one retry."""
        return 200 <= self.status < 300

    @property
    def retried(self) -> bool:
        return self.first_status is not None

    @property
    def ok_first_try(self) -> bool:
        """Answered with a 2xx status by the first attempt."""
        return self.ok and not self.retried


@dataclass(frozen=True)
class _Attempt:
    status: int
    served_by: str | None = None
    hit10: float = 0.0
    ndcg10: float = 0.0
    error: str | None = None
    retriable: bool = False
    model_version: str | None = None


def arrival_times(rate: float, duration_s: float, seed: int) -> np.ndarray:
    """Poisson arrival times in ``[0, duration_s)`` for a mean ``rate`` per second."""
    rng = np.random.default_rng(seed)
    expected = rate * duration_s
    draws = int(expected + 6 * math.sqrt(expected) + 16)
    times = np.cumsum(rng.exponential(1.0 / rate, size=draws))
    return times[times < duration_s]


def shaped_arrival_times(
    rate_at: Callable[[np.ndarray], np.ndarray], peak_rate: float, duration_s: float, seed: int
) -> np.ndarray:
    """Arrivals of a Poisson process whose rate changes over time (a ramp, a spike), by thinning:
    draw at the peak rate, keep each arrival with probability ``rate_at(t) / peak_rate``."""
    candidates = arrival_times(peak_rate, duration_s, seed)
    keep = np.random.default_rng(seed + 101).random(len(candidates)) * peak_rate < rate_at(candidates)
    return candidates[keep]


class Replayer:
    """Replays a :class:`ReplayPlan` against ``base_url``'s ``/v1/recommend``.

    Example (not run here: it needs a server)::

        records = asyncio.run(Replayer(url, plan).run(rate=40, duration_s=30))
    """

    def __init__(
        self,
        base_url: str,
        plan: ReplayPlan,
        *,
        k: int = 10,
        timeout_s: float = 2.0,
        max_connections: int = 256,
        verify: ssl.SSLContext | None = None,
        retry: bool = False,
        api_key: str | None = None,
        feedback: bool = False,
        slack_s: float = SEND_SLACK_S,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        # Sent as X-API-Key on every request: a server with a key store wants a reader key even on
        # /v1/recommend (the drill's operator key includes the reader role).
        self.headers = {API_KEY_HEADER: api_key} if api_key else {}
        self.retry = retry
        self.feedback = feedback
        self.plan = plan
        self.k = k
        self.timeout_s = timeout_s
        self.max_connections = max_connections
        self.verify = client_ssl_context() if verify is None else verify
        self.records: list[RequestRecord] = []
        # max_connections bounds the requests in flight too, so none ever queues inside the pool.
        self.pacer = Pacer(slack_s=slack_s, max_in_flight=max_connections)
        self.skipped: list[float] = []  # scheduled times of requests not sent (see the pacer)

    async def run(
        self,
        rate: float,
        duration_s: float,
        seed: int = 0,
        started: float | None = None,
        times: np.ndarray | None = None,
    ) -> list[RequestRecord]:
        """Send requests on a Poisson schedule for ``duration_s``; return every record, in send order.

        ``started`` (a ``time.monotonic()`` value) lets a caller share one clock with other tasks;
        ``times`` replaces the constant-rate schedule (see :func:`shaped_arrival_times`).
        """
        times = arrival_times(rate, duration_s, seed) if times is None else times
        users = np.random.default_rng(seed + 1).integers(0, len(self.plan.user_ids), size=len(times))
        limits = httpx.Limits(
            max_connections=self.max_connections, max_keepalive_connections=self.max_connections
        )
        t0 = time.monotonic() if started is None else started
        async with httpx.AsyncClient(
            base_url=self.base_url,
            timeout=self.timeout_s,
            limits=limits,
            verify=self.verify,
            headers=self.headers,
        ) as client:
            tasks = []
            for scheduled, user in zip(times.tolist(), users.tolist(), strict=True):
                if await self.pacer.wait(t0 + scheduled):
                    tasks.append(self.pacer.launch(self._one(client, t0, scheduled, int(user))))
                else:
                    self.skipped.append(scheduled)
            await asyncio.gather(*tasks)
        return self.records

    async def warm_up(self, requests: int) -> None:
        """Send ``requests`` unjudged requests one after another, so connections and caches are warm."""
        async with httpx.AsyncClient(
            base_url=self.base_url, timeout=self.timeout_s, verify=self.verify, headers=self.headers
        ) as client:
            for i in range(requests):
                user = self.plan.user_ids[i % len(self.plan.user_ids)]
                try:
                    async with asyncio.timeout(self.timeout_s):
                        await client.post("/v1/recommend", json={"user_id": user, "k": self.k})
                except (httpx.HTTPError, TimeoutError):
                    continue

    async def _one(self, client: httpx.AsyncClient, t0: float, scheduled: float, user: int) -> None:
        first = await self._attempt(client, user)
        final = await self._attempt(client, user) if self.retry and first.retriable else first
        latency_ms = (time.monotonic() - t0 - scheduled) * 1000.0
        feedback_status = (
            await self._feedback(client, user) if self.feedback and final.status == 200 else None
        )
        self.records.append(
            RequestRecord(
                scheduled,
                latency_ms,
                final.status,
                final.served_by,
                final.hit10,
                final.ndcg10,
                final.error,
                first_status=None if final is first else first.status,
                model_version=final.model_version,
                feedback_status=feedback_status,
            )
        )

    async def _feedback(self, client: httpx.AsyncClient, user: int) -> int:
        """Post the user's true next item as a click; the status, or 0 when no answer came."""
        body = {"user_id": self.plan.user_ids[user], "item_id": self.plan.targets[user], "event": "click"}
        try:
            async with asyncio.timeout(self.timeout_s):
                response = await client.post("/v1/feedback", json=body)
        except (httpx.HTTPError, TimeoutError):
            return 0
        return response.status_code

    async def _attempt(self, client: httpx.AsyncClient, user: int) -> _Attempt:
        body = {"user_id": self.plan.user_ids[user], "k": self.k}
        try:
            # httpx bounds each phase (connect, write, read, pool) alone: bound the whole as well.
            async with asyncio.timeout(self.timeout_s):
                response = await client.post("/v1/recommend", json=body)
        except httpx.HTTPError as exc:  # refused, reset, closed, timed out: see recdrill.drills.retry
            return _Attempt(0, error=f"{type(exc).__name__}: {exc}"[:200], retriable=is_retriable_error(exc))
        except TimeoutError:  # a client timeout, as httpx's own: not retried
            return _Attempt(0, error=f"TimeoutError: no answer within {self.timeout_s:g} s")
        if not response.is_success:
            retriable = is_retriable_status(response.status_code)
            return _Attempt(response.status_code, error=response.text[:200], retriable=retriable)
        try:
            payload = response.json()
            items = [str(entry["item_id"]) for entry in payload.get("items", [])]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            # A 2xx body that is not the promised JSON counts as a failure, and is not retried.
            return _Attempt(0, error=f"bad response body: {exc}"[:200])
        target = self.plan.targets[user]
        hit, ndcg = float(target in items[: self.k]), ndcg_of_item(items, target, self.k)
        version = payload.get("model_version")
        return _Attempt(
            response.status_code,
            str(payload.get("served_by")),
            hit,
            ndcg,
            model_version=None if version is None else str(version),
        )
