"""Side traffic: open-loop requests a fault sends beside the drill's own replay (a surge, a bot).

A :class:`SideTraffic` sends requests on a Poisson schedule at ``rate`` per second to the target's
``traffic_url`` (through the network proxy while there is one), from a daemon thread with its own
asyncio loop and one ``httpx.AsyncClient``, until :meth:`SideTraffic.stop` or its ``ttl_s`` runs
out: a drill that dies without reverting leaves nothing running for long. Each request comes from a
factory ``(rng, i) -> SideRequest`` (method, path, JSON body or raw bytes, extra headers), so one
class serves a surge of normal requests, a storm of malformed ones and a bot posting feedback.

Open loop, as in the replayer (``recdrill.drills.replayer``): requests go out on schedule whether
or not earlier ones have answered, and latency is measured from the scheduled send time. A thread
short of CPU skips the requests it is too late for, and those scheduled while ``max_connections``
are still out, instead of sending them in a burst (``skipped_late``, ``skipped_busy``; see
:mod:`recdrill.drills.pacing`): a fault then pushes less than asked, and says how much less. Each
request is bounded as a whole by ``timeout_s``.

Outcomes are counted under a lock (the drill reads :meth:`SideTraffic.summary` from its own
thread): requests sent, 2xx, 429, other 4xx, 5xx, connection errors, client timeouts, p50/p99 of
answered requests, and free-form ``tags`` that an optional ``observe(request, response)`` callback
names (``served_by:popular``, ``bad_answer``), so a fault can count what it is about without a class
of its own.

Example (not run here: it needs a server)::

    traffic = SideTraffic(target, rate=50, make=lambda rng, i: SideRequest("GET", "/healthz"))
    traffic.start()
    ...
    print(traffic.stop())   # {"requests": ..., "ok": ..., "status_429": ..., "p99_ms": ...}
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

import httpx
import numpy as np

from recdrill.drills.pacing import Pacer
from recdrill.drills.replayer import arrival_times
from recdrill.errors import ConfigError

if TYPE_CHECKING:
    from recdrill.drills.target import DrillTarget

CHUNK_S = 10.0  # arrivals are drawn per chunk: a Poisson process is independent on disjoint spans
MAX_WAIT_S = 0.05  # the scheduler wakes at least this often to see a stop
LATENCY_SAMPLE = 20_000  # answered latencies kept (a uniform reservoir beyond that)
DRAIN_S = 5.0  # how long stop() lets requests in flight finish before cancelling them


class SideRequest(NamedTuple):
    """One request: ``body`` is sent as JSON (dict, list, str, number) or as is (bytes), or not at
    all (None); ``headers`` add to (or replace) the client's, e.g. a wrong content type."""

    method: str
    path: str
    body: Any = None
    headers: dict[str, str] | None = None
    label: str | None = None  # what kind of request this is, for the observer's tags


RequestFactory = Callable[[np.random.Generator, int], SideRequest]
# Names a tag to count for an answer (or None); exceptions in it are counted as ``observe_error``.
Observer = Callable[[SideRequest, httpx.Response], str | None]

_RUNNING: set[SideTraffic] = set()
_RUNNING_LOCK = threading.Lock()


def running() -> list[SideTraffic]:
    """Every SideTraffic of this process whose thread is still sending."""
    with _RUNNING_LOCK:
        return [t for t in _RUNNING if t.is_running]


class SideTraffic:
    """Poisson traffic from a daemon thread; see the module docstring.

    Parameters:
        target: where to send (``traffic_url``), with which key (``admin_key``) and TLS context.
        rate: mean requests per second (> 0).
        make: the request factory, called on the traffic's thread with its own generator.
        name: what :func:`running` and leftovers call it (the fault's name).
        ttl_s: the traffic stops by itself after this long.
        observe: optional tagger of answers (see ``tags`` in :meth:`summary`).
        timeout_s: client timeout per request.
        seed: seeds the schedule and the factory's generator.
    """

    def __init__(
        self,
        target: DrillTarget,
        rate: float,
        make: RequestFactory,
        *,
        name: str = "side-traffic",
        ttl_s: float = 600.0,
        observe: Observer | None = None,
        timeout_s: float = 2.0,
        max_connections: int = 256,
        seed: int = 0,
    ) -> None:
        if not rate > 0 or not np.isfinite(rate):
            raise ConfigError(f"side traffic {name!r}: rate must be a positive number, got {rate!r}")
        if not ttl_s > 0:
            raise ConfigError(f"side traffic {name!r}: ttl_s must be positive, got {ttl_s!r}")
        self.name = name
        self.owner = target.base_url  # which deployment this traffic belongs to (leftovers)
        self.url = target.traffic_url
        self.headers = dict(target.traffic_headers)
        self.verify = target.verify
        self.rate = float(rate)
        self.ttl_s = float(ttl_s)
        self.make = make
        self.observe = observe
        self.timeout_s = timeout_s
        self.max_connections = max_connections
        self.seed = seed
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._started_at: float | None = None
        self._ended_at: float | None = None
        self._counts: Counter[str] = Counter()
        self._tags: Counter[str] = Counter()
        self._latencies: list[float] = []
        self._answered = 0
        self._sample_rng = np.random.default_rng(seed + 2)
        self._pacer = Pacer(max_in_flight=max_connections)  # so no request queues inside the pool
        self.failure: str | None = None  # why the thread ended early, if it did

    # --- control -------------------------------------------------------------------------------

    @property
    def is_running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> SideTraffic:
        """Start sending; a second call is an error (one thread per traffic)."""
        if self._thread is not None:
            raise RuntimeError(f"side traffic {self.name!r} was already started")
        self._started_at = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=f"recdrill-{self.name}", daemon=True)
        with _RUNNING_LOCK:
            _RUNNING.add(self)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = DRAIN_S + 5.0) -> dict[str, Any]:
        """Stop sending, let requests in flight finish (or cancel them), join the thread; the
        summary. Safe to call again, and before :meth:`start`."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        with _RUNNING_LOCK:
            if not self.is_running:
                _RUNNING.discard(self)
        return self.summary()

    def describe(self) -> str:
        """One line for leftovers: what is sending where."""
        with self._lock:
            sent = self._counts["requests"]
        return f"{self.name}: side traffic at {self.rate:g}/s to {self.url} ({sent} sent)"

    # --- reading -------------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """Counts so far: ``requests`` sent, ``ok`` (2xx), ``status_429``, ``status_4xx`` (other
        4xx), ``status_5xx``, ``other_status``, ``connect_errors``, ``timeouts``, ``cancelled``
        (still in flight at stop), ``p50_ms`` and ``p99_ms`` of answered requests (None before any),
        ``elapsed_s``, ``running``, ``tags``, and ``skipped_late``/``skipped_busy`` (scheduled but
        not sent: the thread was too far behind its schedule, or ``max_connections`` were out)."""
        with self._lock:
            counts = dict(self._counts)
            tags = dict(self._tags)
            latencies = np.asarray(self._latencies, dtype=np.float64)
        skipped = self._pacer.counts()  # ints set by the thread: each read is whole
        end = self._ended_at if self._ended_at is not None else time.monotonic()
        elapsed = 0.0 if self._started_at is None else end - self._started_at
        p50, p99 = (None, None) if not len(latencies) else np.percentile(latencies, [50, 99]).tolist()
        keys = ("requests", "ok", "status_429", "status_4xx", "status_5xx", "other_status")
        out: dict[str, Any] = {key: counts.get(key, 0) for key in keys}
        out.update(
            connect_errors=counts.get("connect_errors", 0),
            timeouts=counts.get("timeouts", 0),
            cancelled=counts.get("cancelled", 0),
            skipped_late=skipped["skipped_late"],
            skipped_busy=skipped["skipped_busy"],
            p50_ms=None if p50 is None else round(p50, 2),
            p99_ms=None if p99 is None else round(p99, 2),
            rate=self.rate,
            elapsed_s=round(elapsed, 2),
            running=self.is_running,
            tags=tags,
        )
        if self.failure is not None:
            out["failure"] = self.failure
        return out

    # --- the thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception as exc:  # never silent: the drill reads it from the summary
            self.failure = f"{type(exc).__name__}: {exc}"[:300]
        finally:
            self._ended_at = time.monotonic()
            with _RUNNING_LOCK:
                _RUNNING.discard(self)

    async def _main(self) -> None:
        limits = httpx.Limits(max_connections=self.max_connections, max_keepalive_connections=64)
        rng = np.random.default_rng(self.seed + 1)
        tasks: set[asyncio.Task[None]] = set()
        assert self._started_at is not None
        t0 = self._started_at
        async with httpx.AsyncClient(
            base_url=self.url, headers=self.headers, timeout=self.timeout_s, limits=limits, verify=self.verify
        ) as client:
            for scheduled in self._schedule():
                go = await self._pacer.wait(t0 + scheduled, stopped=self._stop.is_set, poll_s=MAX_WAIT_S)
                if self._stop.is_set():
                    break
                if not go:
                    continue
                # i counts requests sent, not scheduled: a factory cycling through kinds keeps its mix
                request = self.make(rng, self._pacer.sent - 1)
                with self._lock:
                    self._counts["requests"] += 1
                task = self._pacer.launch(self._one(client, request, t0 + scheduled))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            if tasks:  # let what is in flight answer, within reason; the rest is cancelled
                _, pending = await asyncio.wait(set(tasks), timeout=DRAIN_S)
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)

    def _schedule(self) -> Iterator[float]:
        """Arrival times (seconds from start) up to ``ttl_s``, drawn a chunk at a time."""
        chunk = 0
        while chunk * CHUNK_S < self.ttl_s:
            span = min(CHUNK_S, self.ttl_s - chunk * CHUNK_S)
            for offset in arrival_times(self.rate, span, self.seed + 1000 * (chunk + 1)).tolist():
                yield chunk * CHUNK_S + offset
            chunk += 1

    async def _one(self, client: httpx.AsyncClient, request: SideRequest, scheduled: float) -> None:
        kwargs: dict[str, Any] = {"headers": request.headers}
        if isinstance(request.body, bytes | bytearray):
            kwargs["content"] = bytes(request.body)
        elif request.body is not None:
            kwargs["json"] = request.body
        try:
            async with asyncio.timeout(self.timeout_s):  # httpx bounds each phase alone, not the whole
                response = await client.request(request.method, request.path, **kwargs)
        except asyncio.CancelledError:  # still in flight when stop() gave up waiting
            self._count("cancelled")
            raise
        except (httpx.TimeoutException, TimeoutError):
            self._count("timeouts")
            return
        except httpx.HTTPError:
            self._count("connect_errors")
            return
        latency_ms = (time.monotonic() - scheduled) * 1000.0
        status = response.status_code
        key = (
            "ok" if 200 <= status < 300
            else "status_429" if status == 429
            else "status_4xx" if 400 <= status < 500
            else "status_5xx" if status >= 500
            else "other_status"
        )  # fmt: skip
        tag = None
        if self.observe is not None:
            try:
                tag = self.observe(request, response)
            except Exception:
                tag = "observe_error"
        with self._lock:
            self._counts[key] += 1
            if tag is not None:
                self._tags[tag] += 1
            self._keep_latency(latency_ms)

    def _count(self, key: str) -> None:
        with self._lock:
            self._counts[key] += 1

    def _keep_latency(self, latency_ms: float) -> None:
        """Reservoir sampling (called under the lock): percentiles of a long run in bounded memory."""
        self._answered += 1
        if len(self._latencies) < LATENCY_SAMPLE:
            self._latencies.append(latency_ms)
            return
        slot = int(self._sample_rng.integers(0, self._answered))
        if slot < LATENCY_SAMPLE:
            self._latencies[slot] = latency_ms
