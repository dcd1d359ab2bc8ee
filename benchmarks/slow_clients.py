"""Slow clients against recdrill: recommend probes while 64 slow-body and 64 slow-header connections
are held open, and the same probes with no slow clients.

Issue #17's acceptance criterion, measured as written: "64 slow-body and 64 slow-header connections
held for 30 s while 100 recommend probes all get 200 within the deadline plus 20 ms." A slow-body
connection sends a recommend request's headers (``Content-Length: 100``) and then one body byte every
``--trickle-s``; a slow-header one sends a request line and then one header line every ``--trickle-s``,
never the blank line. The server cuts both off (the body reader's ``RECDRILL_BODY_TIMEOUT_S``, the
protocol's ``RECDRILL_HEADER_TIMEOUT_S``, 10 s each by default: a 408 and a close), which is shorter
than the hold, so "held" means held at all times: a connection the server ends is replaced at once,
and the replacements and the statuses the slow connections got are counted. The connections are
opened one after another over one timeout (10 s), and the hold starts once all are open: the
server's cut-offs and the replacements then come spread over the hold (about 13 a second), not in
three bursts that most probes would miss.

The probes: ``POST /v1/recommend`` with ``{"history": [...], "k": 5}``, histories of the model's own
users, sent on schedule (evenly spread over ``--hold-s``), each on a fresh connection as a new
shopper's would be, timed from the start of the connect to the last byte of the answer. The same
probes go first to the same server with no slow clients (the baseline), after a short warm-up. The
bound is the server's request deadline (``--deadline-ms``, 50 ms as in the demo) plus 20 ms.

The server is ``recdrill serve`` as the demo starts it (2 workers, live monitor on), from an ItemKNN
trained on ``--data`` (default ShopSim); the slow connections and the probes share one asyncio event
loop in this process (asyncio streams, 128 sockets), on the same cores as the server.

Results: ``benchmarks/results/slow_clients.json``: ``settings``, ``baseline`` and ``attack`` probe
figures (n, statuses, p50/p99/max ms, the tiers that answered), ``ratios`` (attack / baseline),
``slow_connections`` (opened, replaced, statuses received, per kind; the fewest open when a probe
was sent), ``deadline_ms``, ``bound_ms``, ``checks`` and ``passed``.

Run: ``python benchmarks/slow_clients.py [--hold-s 30] [--probes 100]``; ``--quick``: a smoke run (a
tiny shop, 8+8 slow connections, 10 probes, a 4 s hold, timeouts lowered to 1.5 s so that cut-offs
and replacements happen too) into ``benchmarks/results/quick/``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from itertools import zip_longest
from pathlib import Path
from typing import Any

import numpy as np

from common import (
    model_settings,
    percentile,
    sample_users,
    start_server_with_env,
    train_itemknn,
    write_report,
)
from harness import QUICK_SHOP, parse_args, quick_path, run_main
from light_client import LOST, REFUSED, TIMEOUT
from recdrill.data.snapshot import ShopSnapshot

RESULTS = Path(__file__).resolve().parent / "results" / "slow_clients.json"
QUICK = {
    "data": QUICK_SHOP, "slow_body": 8, "slow_header": 8, "probes": 10, "hold_s": 4.0,
    "trickle_s": 0.25, "body_timeout_s": 1.5, "header_timeout_s": 1.5,
    "out": quick_path("slow_clients.json"),
}  # fmt: skip
MARGIN_MS = 20.0  # the criterion's "deadline plus 20 ms"
PROBE_K = 5
HISTORY_ITEMS = 10  # the last items of a user's history a probe sends
SLOW_BODY_LENGTH = 100  # the Content-Length a slow-body connection declares (and never completes)
STATUS_NAMES = {TIMEOUT: "client_timeout", REFUSED: "refused", LOST: "connection_lost"}


# --- the probes ------------------------------------------------------------------------------


def probe_bodies(model_dir: Path, n: int, seed: int = 0) -> list[bytes]:
    """``n`` recommend bodies, each the last items of one of the model's users' histories."""
    snapshot = ShopSnapshot.load(model_dir)
    users = sample_users(model_dir, n, seed)
    out = []
    for user_id in users:
        row = snapshot.histories.row(snapshot.user_index(user_id))[-HISTORY_ITEMS:]
        history = snapshot.item_ids[row].tolist()
        out.append(json.dumps({"history": history, "k": PROBE_K}).encode())
    return [out[i % len(out)] for i in range(n)]


@dataclass(frozen=True)
class Probe:
    status: int  # the HTTP status, or TIMEOUT / REFUSED / LOST
    latency_ms: float  # from the start of the connect to the answer's last byte
    served_by: str | None  # the tier that answered a 200
    slow_open: int | None = None  # slow connections open when it was sent (under attack)


async def probe(host: str, port: int, body: bytes, timeout_s: float) -> Probe:
    """One recommend request on a fresh connection, closed after its answer."""
    started = time.perf_counter()
    status, served_by, writer = TIMEOUT, None, None
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(
                b"POST /v1/recommend HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (host.encode(), len(body), body)
            )
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").lower().split("\r\n")
            lengths = [int(line.split(":", 1)[1]) for line in lines if line.startswith("content-length:")]
            payload = await reader.readexactly(lengths[0] if lengths else 0)
            status = int(head[9:12])
        if status == 200:
            served_by = json.loads(payload).get("served_by")
    except TimeoutError:
        status = TIMEOUT
    except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
        status = LOST  # broken off, or an answer that is not HTTP
    except OSError:
        status = REFUSED
    finally:
        if writer is not None:
            writer.close()
    return Probe(status, (time.perf_counter() - started) * 1000.0, served_by)


async def probes_over(
    url: tuple[str, int], bodies: list[bytes], seconds: float, timeout_s: float, fleet: SlowFleet | None
) -> list[Probe]:
    """Each body sent once, on schedule (evenly over ``seconds``), whatever the earlier ones are
    doing, and returns once ``seconds`` have passed; with ``fleet``, each probe notes how many slow
    connections were open when it was sent."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    interval = seconds / len(bodies)

    async def one(i: int) -> Probe:
        await asyncio.sleep(max(0.0, start + (i + 0.5) * interval - loop.time()))
        open_now = None if fleet is None else fleet.open_now()
        result = await probe(*url, bodies[i], timeout_s)
        return Probe(result.status, result.latency_ms, result.served_by, open_now)

    probes = list(await asyncio.gather(*(one(i) for i in range(len(bodies)))))
    await asyncio.sleep(max(0.0, start + seconds - loop.time()))  # the phase lasts ``seconds``
    return probes


def summarise(probes: list[Probe]) -> dict[str, Any]:
    """n, statuses, latency percentiles (of every probe, whatever its status) and answering tiers."""
    ms = np.array([p.latency_ms for p in probes])
    statuses = Counter(STATUS_NAMES.get(p.status, str(p.status)) for p in probes)
    return {
        "n": len(probes),
        "statuses": dict(sorted(statuses.items())),
        "ok": sum(p.status == 200 for p in probes),
        "p50_ms": percentile(ms, 50),
        "p99_ms": percentile(ms, 99),
        "max_ms": percentile(ms, 100),
        "mean_ms": float(ms.mean()) if len(ms) else None,
        "served_by": dict(sorted(Counter(p.served_by for p in probes if p.served_by).items())),
        "latencies_ms": [round(p.latency_ms, 3) for p in probes],
    }


# --- the slow connections --------------------------------------------------------------------


@dataclass
class SlowFleet:
    """``slow_body`` + ``slow_header`` connections kept open until :meth:`stop`: each one the server
    ends (an answer or a close) is replaced at once."""

    host: str
    port: int
    slow_body: int
    slow_header: int
    trickle_s: float
    opened: Counter[str] = field(default_factory=Counter)
    replaced: Counter[str] = field(default_factory=Counter)
    connect_failures: Counter[str] = field(default_factory=Counter)
    received: dict[str, Counter[str]] = field(
        default_factory=lambda: {"body": Counter(), "header": Counter()}
    )
    open: Counter[str] = field(default_factory=Counter)
    lifetimes_s: dict[str, list[float]] = field(default_factory=lambda: {"body": [], "header": []})
    gap_ms_max: float = 0.0  # the longest a slot went without a connection, between one and the next
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def open_now(self) -> int:
        return self.open["body"] + self.open["header"]

    async def start(self, ramp_s: float, timeout_s: float = 10.0) -> bool:
        """Open the connections one after another over ``ramp_s`` (the kinds alternating), so that
        the server's cut-offs, and the replacements, come spread over time rather than all at once;
        return once all are open (True) or ``timeout_s`` after the ramp (False)."""
        pairs = zip_longest(["body"] * self.slow_body, ["header"] * self.slow_header)
        kinds = [kind for pair in pairs for kind in pair if kind is not None]
        n = len(kinds)
        self._tasks = [asyncio.create_task(self._slot(kind, i * ramp_s / n)) for i, kind in enumerate(kinds)]
        deadline = time.monotonic() + ramp_s + timeout_s
        while self.open_now() < n and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        return self.open_now() == n

    async def stop(self) -> int:
        """Close every connection; how many were still open (not yet ended by the server)."""
        still_open = self.open_now()
        self._stopping.set()
        await asyncio.gather(*self._tasks)
        return still_open

    async def _slot(self, kind: str, delay_s: float) -> None:
        """After ``delay_s``, one slow connection after another until stopped."""
        await asyncio.sleep(delay_s)
        ended_at: float | None = None  # when the server ended the previous one
        while not self._stopping.is_set():
            try:
                reader, writer = await asyncio.open_connection(self.host, self.port)
            except OSError:
                self.connect_failures[kind] += 1
                await asyncio.sleep(0.05)
                continue
            began = time.monotonic()
            if ended_at is not None:
                self.replaced[kind] += 1
                self.gap_ms_max = max(self.gap_ms_max, (began - ended_at) * 1000.0)
            self.opened[kind] += 1
            self.open[kind] += 1
            try:
                outcome = await self._trickle(kind, reader, writer)
            finally:
                self.open[kind] -= 1
                writer.close()
            ended_at = time.monotonic()
            if outcome is not None:  # the server ended it, not stop()
                self.received[kind][outcome] += 1
                self.lifetimes_s[kind].append(ended_at - began)

    async def _trickle(
        self, kind: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> str | None:
        """Send the start of a request, then a byte (body) or a header line every ``trickle_s``, until
        the server answers or closes (what it did: the status, ``closed`` or ``reset``) or stop()
        (None)."""
        if kind == "body":
            writer.write(
                b"POST /v1/recommend HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n{" % SLOW_BODY_LENGTH
            )
        else:
            writer.write(b"POST /v1/recommend HTTP/1.1\r\nHost: x\r\n")
        answer = asyncio.create_task(reader.read(65536))
        stopping = asyncio.create_task(self._stopping.wait())
        sent = 1
        try:
            while True:
                done, _ = await asyncio.wait(
                    {answer, stopping}, timeout=self.trickle_s, return_when="FIRST_COMPLETED"
                )
                if answer in done:
                    return _what_came(answer)
                if stopping in done:
                    return None
                if kind == "header":
                    writer.write(b"X-Slow-%d: 1\r\n" % sent)
                elif sent < SLOW_BODY_LENGTH - 1:  # the body is never completed
                    writer.write(b" ")
                sent += 1
        finally:
            for task in (answer, stopping):
                task.cancel()

    def report(self, still_open: int) -> dict[str, Any]:
        return {
            "requested": {"slow_body": self.slow_body, "slow_header": self.slow_header},
            "opened": {"slow_body": self.opened["body"], "slow_header": self.opened["header"]},
            "replaced": {"slow_body": self.replaced["body"], "slow_header": self.replaced["header"]},
            "connect_failures": dict(self.connect_failures),
            "received": {f"slow_{k}": dict(sorted(v.items())) for k, v in self.received.items()},
            "lifetime_s_median": {
                f"slow_{k}": float(np.median(v)) if v else None for k, v in self.lifetimes_s.items()
            },
            "replacement_gap_ms_max": self.gap_ms_max,
            "open_at_end": still_open,
        }


def _what_came(answer: asyncio.Task[bytes]) -> str:
    """A slow connection's end: the status the server answered, ``closed`` (nothing) or ``reset``."""
    try:
        data = answer.result()
    except (ConnectionError, OSError):
        return "reset"
    first = data.split(b"\r\n", 1)[0].split()
    return first[1].decode() if len(first) >= 2 and first[1].isdigit() else "closed"


# --- the run ---------------------------------------------------------------------------------


async def measure(url: tuple[str, int], bodies: list[bytes], args: argparse.Namespace) -> dict[str, Any]:
    """Warm-up, the baseline (no slow clients), then the same probes with the slow clients held."""
    for body in bodies[:20]:  # warm-up: not measured
        await probe(*url, body, args.probe_timeout_s)
    print(f"baseline: {len(bodies)} probes over {args.hold_s:g} s ...", file=sys.stderr)
    baseline = await probes_over(url, bodies, args.hold_s, args.probe_timeout_s, None)
    fleet = SlowFleet(*url, args.slow_body, args.slow_header, args.trickle_s)
    print(
        f"attack: {args.slow_body} slow-body + {args.slow_header} slow-header connections ...",
        file=sys.stderr,
    )
    began = time.monotonic()
    all_open = await fleet.start(max(args.body_timeout_s, args.header_timeout_s))
    held_from = time.monotonic()
    opened_in_s = held_from - began if all_open else None
    try:
        attack = await probes_over(url, bodies, args.hold_s, args.probe_timeout_s, fleet)
    finally:
        still_open = await fleet.stop()
    slow = fleet.report(still_open)
    slow["all_open_after_s"] = opened_in_s
    slow["held_s"] = time.monotonic() - held_from
    slow["open_when_probed"] = {
        "min": min(p.slow_open or 0 for p in attack),
        "median": float(np.median([p.slow_open or 0 for p in attack])),
    }
    return {"baseline": baseline, "attack": attack, "slow": slow}


def verdict(attack: list[Probe], slow: dict[str, Any], bound_ms: float) -> dict[str, bool]:
    """The criterion's checks, on the probes sent while the slow connections were held."""
    statuses = [str(p.status) for p in attack] + [s for v in slow["received"].values() for s in v]
    return {
        "all_probes_200": all(p.status == 200 for p in attack),
        "all_within_bound": all(p.latency_ms <= bound_ms for p in attack),
        "no_5xx": not any(s.isdigit() and int(s) >= 500 for s in statuses),
        # every slot kept a connection open the whole hold: each the server ended was replaced at once
        "slow_connections_held": not slow["connect_failures"] and slow["all_open_after_s"] is not None,
    }


def ratios(baseline: dict[str, Any], attack: dict[str, Any]) -> dict[str, float | None]:
    """Attack / baseline for each latency figure."""
    out: dict[str, float | None] = {}
    for key in ("p50_ms", "p99_ms", "max_ms", "mean_ms"):
        a, b = attack[key], baseline[key]
        out[key.removesuffix("_ms")] = a / b if a is not None and b else None
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slow-body", type=int, default=64, help="Slow-body connections held.")
    parser.add_argument("--slow-header", type=int, default=64, help="Slow-header connections held.")
    parser.add_argument("--probes", type=int, default=100, help="Recommend probes per phase.")
    parser.add_argument("--hold-s", type=float, default=30.0, help="How long the slow connections are held.")
    parser.add_argument(
        "--trickle-s", type=float, default=1.0, help="A slow connection's pace (s per byte/line)."
    )
    parser.add_argument("--deadline-ms", type=float, default=50.0, help="The server's --deadline-ms.")
    parser.add_argument("--workers", type=int, default=2, help="The server's --workers (the demo's 2).")
    parser.add_argument("--body-timeout-s", type=float, default=10.0, help="RECDRILL_BODY_TIMEOUT_S.")
    parser.add_argument("--header-timeout-s", type=float, default=10.0, help="RECDRILL_HEADER_TIMEOUT_S.")
    parser.add_argument("--probe-timeout-s", type=float, default=5.0, help="When a probe gives up.")
    parser.add_argument("--data", default="shopsim", help="Data to train on (recdrill train --data).")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parse_args(parser, QUICK)
    load_before = os.getloadavg()
    bound_ms = args.deadline_ms + MARGIN_MS

    with tempfile.TemporaryDirectory(prefix="recdrill-slow-clients-") as tmp:
        work = Path(tmp)
        model_dir = work / "itemknn"
        train_itemknn(args.data, model_dir)
        bodies = probe_bodies(model_dir, args.probes)
        knobs = {
            "RECDRILL_BODY_TIMEOUT_S": str(args.body_timeout_s),
            "RECDRILL_HEADER_TIMEOUT_S": str(args.header_timeout_s),
        }
        server = start_server_with_env(
            model_dir, work / "state", knobs, workers=args.workers, deadline_ms=args.deadline_ms
        )
        try:
            runs = asyncio.run(measure(("127.0.0.1", server.port), bodies, args))
        finally:
            server.stop()

    baseline, attack = summarise(runs["baseline"]), summarise(runs["attack"])
    checks = verdict(runs["attack"], runs["slow"], bound_ms)
    report = {
        "criterion": "64 slow-body and 64 slow-header connections held for 30 s while 100 recommend "
        "probes all get 200 within the deadline plus 20 ms (issue #17)",
        "passed": all(checks.values()),
        "checks": checks,
        "deadline_ms": args.deadline_ms,
        "bound_ms": bound_ms,
        "baseline": baseline,
        "attack": attack,
        "ratios": ratios(baseline, attack),
        "over_bound_ms": sorted(
            round(p.latency_ms - bound_ms, 3) for p in runs["attack"] if p.latency_ms > bound_ms
        ),
        "slow_connections": runs["slow"],
        "settings": {
            key: getattr(args, key)
            for key in (
                "slow_body",
                "slow_header",
                "probes",
                "hold_s",
                "trickle_s",
                "workers",
                "body_timeout_s",
                "header_timeout_s",
                "probe_timeout_s",
            )
        }
        | {"probe_k": PROBE_K, "history_items": HISTORY_ITEMS, "slow_body_content_length": SLOW_BODY_LENGTH},
        **model_settings(args.data, load_before),
    }
    write_report(args.out, report)
    print_summary(report)
    return 0


def print_summary(report: dict[str, Any]) -> None:
    print(f"{'probes':<10}{'n':>5}{'200':>6}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for name in ("baseline", "attack"):
        r = report[name]
        print(f"{name:<10}{r['n']:>5}{r['ok']:>6}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}{r['max_ms']:>9.2f}")
    slow = report["slow_connections"]
    print(f"ratios (attack/baseline): {report['ratios']}")
    print(
        f"slow connections: opened {slow['opened']}, replaced {slow['replaced']}, received {slow['received']}"
    )
    print(f"bound {report['bound_ms']:g} ms; checks {report['checks']}; passed: {report['passed']}")


if __name__ == "__main__":
    run_main(main)
