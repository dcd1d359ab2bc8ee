"""A small HTTP/1.1 keep-alive load generator on asyncio streams, for the serving benchmarks.

httpx costs about a millisecond of CPU per request, too much to offer a surge (or half the capacity
of two workers) from the same two cores as the server; this client costs a fraction of that.

Open loop (:func:`open_loop`): requests go out on schedule whatever the earlier ones are doing, and
latency counts from the scheduled send time, so a client stuck behind a slow server is not hidden.
With ``retry=True`` a request that failed the way a dead worker fails (connection lost or refused,
502/503/504) is sent once more on a fresh connection, and one shed with a 429 is sent once more
after its ``Retry-After``; both outcomes are kept.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

TIMEOUT = 0  # status recorded for a request the client gave up on
REFUSED = -1  # no connection: the client was at its limit, or the server refused to connect
LOST = -2  # the connection broke before an answer came (for example, its worker died)
RETRYABLE = frozenset({REFUSED, LOST, 429, 502, 503, 504})


@dataclass(frozen=True)
class Outcome:
    phase: str
    status: int  # final status, after the retry when there was one
    latency_s: float
    first_status: int  # status of the first try
    scheduled: float  # when it was due to be sent (the event loop's clock, time.monotonic)


class Client:
    """HTTP/1.1 keep-alive connections to one server; a new one whenever none is idle."""

    def __init__(self, host: str, port: int, max_connections: int, path: str = "/v1/recommend") -> None:
        self.host = host
        self.port = port
        self.path = path
        self.max_connections = max_connections
        self.open = 0
        self.stale_retries = 0  # requests resent because their idle connection had been closed
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def post(self, body: bytes, *, resend_stale: bool = True, fresh: bool = False) -> int:
        """POST ``body``; the status code, or REFUSED when no connection could be had."""
        status, _ = await self.post_for_retry(body, resend_stale=resend_stale, fresh=fresh)
        return status

    async def post_for_retry(
        self, body: bytes, *, resend_stale: bool = True, fresh: bool = False
    ) -> tuple[int, float]:
        """POST ``body``; the status code (REFUSED when no connection could be had) and the seconds
        of the answer's ``Retry-After`` header (0 without one).

        ``resend_stale``: resend once when a reused idle connection turns out closed (nothing was
        answered on it). ``fresh``: never reuse an idle connection.
        """
        reused = bool(self._idle) and not fresh
        try:
            return await self._post_once(body, fresh)
        except (ConnectionError, asyncio.IncompleteReadError):
            if not (reused and resend_stale):
                raise
            # The server closed this idle keep-alive connection (uvicorn drops them after 5 s) just as
            # it was reused: nothing was answered, so resend once on a fresh connection, as HTTP
            # clients do (RFC 9112 section 9.3.1).
            self.stale_retries += 1
            self._drop_idle()
            return await self._post_once(body, fresh=True)

    async def _post_once(self, body: bytes, fresh: bool) -> tuple[int, float]:
        if self._idle and not fresh:
            reader, writer = self._idle.pop()
        elif self.open < self.max_connections:
            self.open += 1
            try:
                reader, writer = await asyncio.open_connection(self.host, self.port)
            except OSError:
                self.open -= 1
                return REFUSED, 0.0
        else:
            return REFUSED, 0.0
        try:
            writer.write(
                b"POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (self.path.encode(), self.host.encode(), len(body), body)
            )
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            lines = head.decode("latin-1").lower().split("\r\n")
            lengths = [int(line.split(":", 1)[1]) for line in lines if line.startswith("content-length:")]
            length = lengths[0] if lengths else 0
            waits = [float(line.split(":", 1)[1]) for line in lines if line.startswith("retry-after:")]
            await reader.readexactly(length)
        except BaseException:
            self.open -= 1
            writer.close()
            raise
        if any(line.startswith("connection: close") for line in lines):
            self.open -= 1
            writer.close()
        else:
            self._idle.append((reader, writer))
        return status, waits[0] if waits else 0.0

    def _drop_idle(self) -> None:
        """Close every idle connection: after one went stale, the others idled as long or longer."""
        for _, writer in self._idle:
            writer.close()
        self.open -= len(self._idle)
        self._idle.clear()

    def close(self) -> None:
        for _, writer in self._idle:
            writer.close()
        self._idle.clear()


def bodies(users: list[str], k: int) -> list[bytes]:
    return [json.dumps({"user_id": user, "k": k}).encode() for user in users]


async def _attempt(client: Client, body: bytes, retry: bool, fresh: bool) -> tuple[int, float]:
    try:
        return await client.post_for_retry(body, resend_stale=not retry, fresh=fresh)
    except (ConnectionError, asyncio.IncompleteReadError):
        return LOST, 0.0
    except (OSError, asyncio.LimitOverrunError, ValueError):
        return REFUSED, 0.0


async def timed(
    client: Client, body: bytes, phase: str, scheduled: float, timeout_s: float, retry: bool = False
) -> Outcome:
    """One request (and at most one retry, within the same ``timeout_s``) timed from ``scheduled``."""
    loop = asyncio.get_running_loop()
    first = status = TIMEOUT
    try:
        async with asyncio.timeout(timeout_s):
            first, wait_s = await _attempt(client, body, retry, fresh=False)
            status = first
            if retry and first in RETRYABLE:
                status = TIMEOUT
                await asyncio.sleep(wait_s)
                status, _ = await _attempt(client, body, retry, fresh=True)
    except TimeoutError:
        pass
    return Outcome(phase, status, loop.time() - scheduled, first, scheduled)


async def open_loop(
    url: tuple[str, int],
    phases: list[tuple[str, float, float]],
    requests: list[bytes],
    timeout_s: float,
    retry: bool = False,
) -> tuple[list[Outcome], int]:
    """Send at each phase's rate (requests/s) for its seconds, on schedule, never waiting for answers.

    Returns the outcomes and how many requests were resent after finding their connection closed
    (only without ``retry``; with it, that is a first-try failure and its retry).
    """
    loop = asyncio.get_running_loop()
    client = Client(*url, max_connections=4096)
    tasks: list[asyncio.Task[Outcome]] = []
    next_at = loop.time() + 0.05
    sent = 0
    for phase, rate, seconds in phases:
        end = next_at + seconds
        interval = 1.0 / rate
        while next_at < end:
            now = loop.time()
            while next_at <= now and next_at < end:  # everything due: sleep granularity is ~1 ms
                body = requests[sent % len(requests)]
                tasks.append(asyncio.create_task(timed(client, body, phase, next_at, timeout_s, retry)))
                sent += 1
                next_at += interval
            await asyncio.sleep(max(0.0, min(next_at, end) - loop.time()))
    outcomes = await asyncio.gather(*tasks)
    client.close()
    return outcomes, client.stale_retries


async def closed_loop(url: tuple[str, int], requests: list[bytes], seconds: float, concurrency: int) -> float:
    """Answers per second with ``concurrency`` clients each sending the next request at once."""
    client = Client(*url, max_connections=concurrency)
    answered = 0
    stop = time.perf_counter() + seconds

    async def worker(offset: int) -> None:
        nonlocal answered
        i = offset
        while time.perf_counter() < stop:
            status = await client.post(requests[i % len(requests)])
            answered += status == 200
            i += concurrency

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    client.close()
    return answered / (time.perf_counter() - started)
