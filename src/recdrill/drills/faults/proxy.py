"""A Toxiproxy-style TCP proxy on loopback, in this process: network faults between traffic and server.

:class:`LoopbackProxy` listens on 127.0.0.1 (a free port) and forwards bytes both ways to the
upstream server's host and port. It never looks inside the bytes, so HTTPS passes through
untouched (the client still verifies the server's certificate, issued for the same host name).
It runs asyncio streams on its own event loop in a daemon thread, so synchronous code (the drill
runner, Chaos Toolkit actions) can start it, change its toxics and stop it from any thread.

Toxics, each under its own id so that several act at once:

* ``latency`` (``latency_ms``, ``jitter_ms``): each chunk from the server to the client is held
  for ``latency_ms`` +- ``jitter_ms`` after it arrived. Chunks are timed on arrival and queued, so a
  response in several chunks is late by the latency once, not once per chunk, and never reordered.
* ``drop`` (``rate``): a client request is, with probability ``rate``, not forwarded; the proxy
  closes the connection instead (a FIN), and the client sees "server disconnected without sending
  a response".
* ``reset`` (``rate``): the same, but the connection is closed with a TCP RST (``SO_LINGER`` 0):
  the client sees "connection reset by peer".

Clients keep connections alive (httpx does), so drop and reset decide per request, not per
connection: the first chunk the client sends after the server last sent something starts a new
request. (Through TLS the handshake's flights count as requests too; either way the client sees a
transport error.)

Example (not run here: it needs a server)::

    with LoopbackProxy("http://127.0.0.1:8000", seed=1) as proxy:
        slow = proxy.add_toxic("latency", latency_ms=200)
        httpx.get(proxy.url + "/healthz")  # ~200 ms late
        proxy.remove_toxic(slow)
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

from recdrill.errors import ConfigError, ProxyError

CHUNK = 65536
CONNECT_TIMEOUT_S = 10.0
TOXIC_PARAMS = {"latency": {"latency_ms", "jitter_ms"}, "drop": {"rate"}, "reset": {"rate"}}


@dataclass
class _Toxic:
    id: str
    kind: str
    params: dict[str, float]
    expires_at: float | None  # time.monotonic(); None: until removed
    hits: int = 0  # chunks delayed, requests dropped or reset
    seen: int = 0  # chunks or requests it was asked about

    def describe(self, active: bool) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            **self.params,
            "hits": self.hits,
            "seen": self.seen,
            "active": active,
        }


@dataclass(eq=False)  # held in a set, by identity
class _Connection:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    new_request: bool = True  # the next client chunk starts a request (drop/reset decide on it)
    dropped: bool = False
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


class LoopbackProxy:
    """A TCP proxy from ``127.0.0.1:<free port>`` to ``upstream_url``'s host and port, with toxics.

    ``seed`` makes drop/reset decisions and jitter repeatable. Counters and toxics are safe to read
    and change from any thread while it runs.
    """

    def __init__(self, upstream_url: str, *, seed: int | None = None, host: str = "127.0.0.1") -> None:
        parts = urlsplit(upstream_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"proxy upstream must be an http(s)://HOST[:PORT] URL, not {upstream_url!r}")
        self.scheme = parts.scheme
        self.upstream_host = parts.hostname
        self.upstream_port = parts.port or (443 if parts.scheme == "https" else 80)
        self.host = host
        self.port: int | None = None
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._toxics: dict[str, _Toxic] = {}
        self._retired: dict[str, _Toxic] = {}  # removed or expired: their counters stay readable
        self._counters = dict.fromkeys(
            ("connections", "open", "bytes_up", "bytes_down", "dropped", "reset"), 0
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()
        self._stopped = False

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The proxy's URL: the upstream's scheme, the proxy's port."""
        if self.port is None:
            raise ProxyError("the proxy has not started")
        return f"{self.scheme}://{self.host}:{self.port}"

    def start(self, timeout_s: float = 10.0) -> Self:
        """Start listening; returns once connections are accepted."""
        if self._thread is not None:
            raise ProxyError("the proxy was started already (start a new LoopbackProxy)")
        loop = asyncio.new_event_loop()
        listening = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                self._server = loop.run_until_complete(asyncio.start_server(self._serve, self.host, 0))
                self.port = int(self._server.sockets[0].getsockname()[1])
            except OSError as exc:
                failure.append(exc)
                listening.set()
                loop.close()
                return
            listening.set()
            loop.run_forever()
            # stop() ran _shutdown in the loop; let cancelled tasks finish before closing it.
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name=f"recdrill-proxy-{self.upstream_port}", daemon=True)
        self._thread.start()
        if not listening.wait(timeout_s) or failure:
            self._thread.join(timeout_s)
            raise ProxyError(
                f"the proxy could not listen on {self.host}: {failure[0] if failure else 'timed out'}"
            )
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Close the listener and every connection, and end the thread. Safe to call twice."""
        if self._stopped or self._loop is None or self._thread is None:
            self._stopped = True
            return
        self._stopped = True
        if self._thread.is_alive():
            try:
                asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout_s)
            finally:
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                    self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout_s)

    def __enter__(self) -> Self:
        return self.start() if self._thread is None else self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for conn in list(self._connections):
            _abort(conn.client)
            if conn.upstream is not None:
                _abort(conn.upstream)
        # Aborted transports end every connection's pipes; cancel whatever has not ended in time.
        current = asyncio.current_task()
        pending = [t for t in asyncio.all_tasks() if t is not current]
        if pending:
            _, late = await asyncio.wait(pending, timeout=2.0)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    # -- toxics ------------------------------------------------------------------------------

    def add_toxic(self, kind: str, *, ttl_s: float | None = None, **params: float) -> str:
        """Add a toxic (see the module docstring); its id. ``ttl_s``: it ends by itself after that."""
        if kind not in TOXIC_PARAMS:
            raise ConfigError(f"unknown toxic {kind!r}; known: {', '.join(TOXIC_PARAMS)}")
        unknown = set(params) - TOXIC_PARAMS[kind]
        if unknown:
            raise ConfigError(f"toxic {kind!r} has no parameter(s) {', '.join(sorted(unknown))}")
        values = {k: float(v) for k, v in params.items()}
        if kind == "latency":
            values.setdefault("latency_ms", 0.0)
            values.setdefault("jitter_ms", 0.0)
            if values["latency_ms"] < 0 or values["jitter_ms"] < 0:
                raise ConfigError("toxic 'latency': latency_ms and jitter_ms must be >= 0")
        else:
            values.setdefault("rate", 1.0)
            if not 0.0 <= values["rate"] <= 1.0:
                raise ConfigError(f"toxic {kind!r}: rate must be within [0, 1], not {values['rate']}")
        if ttl_s is not None and ttl_s <= 0:
            raise ConfigError(f"toxic {kind!r}: ttl_s must be > 0")
        with self._lock:
            toxic_id = f"{kind}-{next(self._ids)}"
            expires = None if ttl_s is None else time.monotonic() + ttl_s
            self._toxics[toxic_id] = _Toxic(toxic_id, kind, values, expires)
        return toxic_id

    def remove_toxic(self, toxic_id: str) -> bool:
        """Remove a toxic; False when it is not active (removed already, expired, or unknown)."""
        with self._lock:
            toxic = self._toxics.pop(toxic_id, None)
            if toxic is not None:
                self._retired[toxic_id] = toxic
        return toxic is not None

    def toxics(self) -> list[dict[str, Any]]:
        """The active toxics: ``{"id", "kind", <params>, "hits", "seen", "active"}`` each."""
        with self._lock:
            self._expire()
            return [t.describe(True) for t in self._toxics.values()]

    def toxic(self, toxic_id: str) -> dict[str, Any] | None:
        """One toxic's description and counters, active or not; None for an id never added."""
        with self._lock:
            self._expire()
            if toxic_id in self._toxics:
                return self._toxics[toxic_id].describe(True)
            retired = self._retired.get(toxic_id)
            return None if retired is None else retired.describe(False)

    def counters(self) -> dict[str, int]:
        """``connections`` accepted, ``open`` now, ``bytes_up``/``bytes_down``, ``dropped``/``reset``."""
        with self._lock:
            return dict(self._counters)

    def _expire(self) -> None:
        """Retire toxics past their TTL (called with the lock held)."""
        now = time.monotonic()
        for toxic_id in [
            i for i, t in self._toxics.items() if t.expires_at is not None and t.expires_at <= now
        ]:
            self._retired[toxic_id] = self._toxics.pop(toxic_id)

    def _decide(self, kind: str) -> _Toxic | None:
        """The first active toxic of ``kind`` that hits this request (counted), if any."""
        with self._lock:
            self._expire()
            for toxic in self._toxics.values():
                if toxic.kind == kind:
                    toxic.seen += 1
                    if self._rng.random() < toxic.params["rate"]:
                        toxic.hits += 1
                        return toxic
        return None

    def _delay_s(self) -> float:
        """The latency the active latency toxics add to one chunk, in seconds (counted)."""
        with self._lock:
            self._expire()
            total = 0.0
            for toxic in self._toxics.values():
                if toxic.kind == "latency":
                    jitter = toxic.params["jitter_ms"]
                    total += max(0.0, toxic.params["latency_ms"] + self._rng.uniform(-jitter, jitter))
                    toxic.seen += 1
                    toxic.hits += 1
            return total / 1000.0

    def _count(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._counters[name] += amount

    # -- forwarding --------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = _Connection(writer)
        self._connections.add(conn)
        self._count("connections")
        self._count("open")
        try:
            try:
                up_reader, conn.upstream = await asyncio.wait_for(
                    asyncio.open_connection(self.upstream_host, self.upstream_port), CONNECT_TIMEOUT_S
                )
            except (OSError, TimeoutError):
                return  # the client sees its connection closed, as with a dead server
            conn.tasks = [
                asyncio.create_task(self._client_to_upstream(conn, reader)),
                asyncio.create_task(self._upstream_to_client(conn, up_reader)),
            ]
            await asyncio.gather(*conn.tasks, return_exceptions=True)
        except asyncio.CancelledError:
            # Only stop() cancels; asyncio's stream callback would log a cancelled handler as an error.
            for task in conn.tasks:
                task.cancel()
        finally:
            for end in (conn.client, conn.upstream):
                if end is not None:
                    end.close()
                    with contextlib.suppress(OSError, asyncio.CancelledError):
                        await end.wait_closed()
            self._connections.discard(conn)
            self._count("open", -1)

    async def _client_to_upstream(self, conn: _Connection, reader: asyncio.StreamReader) -> None:
        assert conn.upstream is not None
        try:
            while chunk := await reader.read(CHUNK):
                if conn.new_request:
                    conn.new_request = False
                    if self._decide("reset") is not None:
                        self._count("reset")
                        # Take the rest of the request first (a body sent after the headers): a
                        # client still writing would meet the RST there and then read a plain EOF.
                        await _discard(reader, timeout_s=0.1)
                        _reset(conn.client)
                        _abort(conn.upstream)
                        return
                    if self._decide("drop") is not None:
                        self._count("dropped")
                        conn.dropped = True
                        _abort(conn.upstream)
                        conn.client.write_eof()  # a FIN without a response...
                        await _discard(reader)  # ...and no RST: closing on unread bytes would send one
                        conn.client.close()
                        return
                self._count("bytes_up", len(chunk))  # before writing: readers may look at once
                conn.upstream.write(chunk)
                await conn.upstream.drain()
            if conn.upstream.can_write_eof():
                conn.upstream.write_eof()  # the client finished sending; the answer may still come
        except (OSError, RuntimeError):  # reset, or a transport closed under us
            _abort(conn.upstream)
            _abort(conn.client)

    async def _upstream_to_client(self, conn: _Connection, reader: asyncio.StreamReader) -> None:
        """Forward the server's bytes, each chunk held until its own arrival time + latency."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        async def receive() -> None:
            try:
                while chunk := await reader.read(CHUNK):
                    await queue.put((loop.time() + self._delay_s(), chunk))
            except OSError:
                pass
            await queue.put((0.0, b""))  # end of stream

        receiving = asyncio.create_task(receive())
        try:
            while True:
                due, chunk = await queue.get()
                if not chunk:
                    break
                await asyncio.sleep(max(0.0, due - loop.time()))
                conn.new_request = True  # the server answered: the client's next chunk is a new request
                self._count("bytes_down", len(chunk))
                conn.client.write(chunk)
                await conn.client.drain()
            if not conn.dropped:  # a drop closes the client's side itself
                conn.client.close()  # the server closed: so does the proxy, towards the client
        except (OSError, RuntimeError):
            _abort(conn.client)
            if conn.upstream is not None:
                _abort(conn.upstream)
        finally:
            receiving.cancel()
            await asyncio.gather(receiving, return_exceptions=True)


async def _discard(reader: asyncio.StreamReader, timeout_s: float = 5.0) -> None:
    """Read and forget until the client closes (or sends nothing for ``timeout_s``)."""
    with contextlib.suppress(OSError, TimeoutError):
        while await asyncio.wait_for(reader.read(CHUNK), timeout_s):
            pass


def _abort(writer: asyncio.StreamWriter) -> None:
    """Close at once, dropping anything unsent."""
    writer.transport.abort()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST: ``SO_LINGER`` on with a zero timeout makes close() send one."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
