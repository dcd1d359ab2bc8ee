"""Repeated SIGKILLs during feedback writes: is every acknowledged event still there afterwards?

A ``recdrill serve --workers 2`` process on a free loopback port takes ``POST /v1/feedback`` from
``--clients`` threads, each posting events with unique item ids and recording the row id of every
200 answer (an acknowledgement: the server answers only after the event's group commit). Meanwhile
the benchmark SIGKILLs, ``--kills`` times in all, at random moments while posts are in flight
(after at least ``--acks-between`` new acknowledgements each time):

* mostly one worker (the supervisor replaces it; the other worker keeps committing);
* every ``--whole-every``-th kill, the whole server (supervisor and workers, as a lost machine or an
  OOM kill of the group would), then a restart on the same state directory, which must recover the
  SQLite WAL left behind.

Afterwards every acknowledged id must be present with its item (``lost`` counts those missing or
different) and the database must pass ``PRAGMA integrity_check``. Also counted: posts that failed
without an answer but whose event *was* committed (``unacknowledged_committed``): the reason a client
must not retry a feedback post blindly. Side by side, the same clients post for the same time
without kills (``baseline``), giving the throughput ratio.

Results: ``benchmarks/results/feedback_kill.json``.
Run: ``python benchmarks/feedback_kill.py``; ``--quick``: a smoke run (4 kills, 2 of the whole server)
into ``benchmarks/results/quick/``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import signal
import sqlite3
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from common import machine_brief, train_itemknn, write_report
from harness import QUICK_SHOP, parse_args, quick_path, run_main
from recdrill.procs import ProcessRef
from recdrill.serving.runtime.local_process import ServerProcess

RESULTS = Path(__file__).resolve().parent / "results" / "feedback_kill.json"
QUICK = {
    "kills": 4, "whole_every": 2, "acks_between": 5, "baseline_s": 2.0,
    "out": quick_path("feedback_kill.json"),
}  # fmt: skip
DATA = QUICK_SHOP  # the model only has to load; feedback is the load


@dataclass
class Tally:
    """What the clients saw, shared between their threads."""

    acknowledged: dict[int, str] = field(default_factory=dict)
    ambiguous: list[str] = field(default_factory=list)  # no answer, though the request was sent
    refused: int = 0  # no connection at all: certainly not committed
    lock: threading.Lock = field(default_factory=threading.Lock)

    def acks(self) -> int:
        with self.lock:
            return len(self.acknowledged)


class Clients:
    """``count`` threads posting feedback to whatever ``url()`` returns, until stopped."""

    def __init__(self, url: list[str], count: int, tag: str) -> None:
        self.url = url  # a one-element list: the server's URL changes when it is restarted
        self.tally = Tally()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._post, args=(f"{tag}-{c}",)) for c in range(count)]

    def __enter__(self) -> Clients:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()

    def _post(self, name: str) -> None:
        tally = self.tally
        i = 0
        while not self.stop.is_set():
            url = self.url[0]
            with httpx.Client(base_url=url, timeout=10.0) as http:
                while not self.stop.is_set() and self.url[0] == url:
                    item = f"{name}-{i}"
                    i += 1
                    body = {"user_id": name, "item_id": item, "event": "click"}
                    try:
                        response = http.post("/v1/feedback", json=body)
                    except httpx.ConnectError:
                        with tally.lock:
                            tally.refused += 1
                        time.sleep(0.02)
                        break
                    except httpx.TransportError:
                        with tally.lock:
                            tally.ambiguous.append(item)
                        break  # a fresh connection for the next post
                    if response.status_code == 200:
                        with tally.lock:
                            tally.acknowledged[int(response.json()["id"])] = item
                    else:
                        with tally.lock:
                            tally.ambiguous.append(item)


def wait_for(condition: Any, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the clients made no progress: is the server up?")
        time.sleep(0.005)


def verify(db: Path, tally: Tally) -> dict[str, Any]:
    with contextlib.closing(sqlite3.connect(db)) as connection:
        integrity = connection.execute("PRAGMA integrity_check").fetchone()[0]
        rows = dict(connection.execute("SELECT id, item_id FROM feedback"))
        items = set(rows.values())
    lost = sum(rows.get(row) != item for row, item in tally.acknowledged.items())
    return {
        "acknowledged": len(tally.acknowledged),
        "lost": lost,
        "rows": len(rows),
        "integrity": integrity,
        "unacknowledged": len(tally.ambiguous),
        "unacknowledged_committed": sum(item in items for item in tally.ambiguous),
        "refused": tally.refused,
    }


def kill_loop(model: Path, state: Path, args: argparse.Namespace) -> tuple[dict[str, Any], float]:
    rng = random.Random(args.seed)
    server = ServerProcess(model, state, workers=2).start()
    url = [server.url]
    whole = workers = 0
    gaps: dict[str, list[float]] = {"worker": [], "server": []}
    started = time.monotonic()
    try:
        with Clients(url, args.clients, "kill") as clients:
            for k in range(1, args.kills + 1):
                floor = clients.tally.acks() + args.acks_between
                waited = time.monotonic()
                wait_for(lambda floor=floor: clients.tally.acks() >= floor, 120)
                if k > 1:  # how long the clients took to get N more acknowledgements after a kill
                    gaps["server" if (k - 1) % args.whole_every == 0 else "worker"].append(
                        time.monotonic() - waited
                    )
                time.sleep(rng.uniform(0, 0.05))  # land anywhere in a commit cycle
                if k % args.whole_every == 0:
                    server.kill()  # supervisor and both workers, no shutdown code anywhere
                    server = ServerProcess(model, state, workers=2).start()
                    url[0] = server.url
                    whole += 1
                else:
                    wait_for(server.worker_pids, 60)  # a replacement may still be on its way
                    ProcessRef.of(rng.choice(server.worker_pids())).signal(signal.SIGKILL)
                    workers += 1
                if k % 10 == 0:
                    print(f"  {k} kills, {clients.tally.acks()} acknowledged", flush=True)
            elapsed = time.monotonic() - started
    finally:
        server.stop()
    result = verify(state / "feedback.db", clients.tally)
    result.update({"kills": whole + workers, "worker_kills": workers, "server_kills": whole})
    for kind, values in gaps.items():
        if values:
            result[f"s_to_{args.acks_between}_acks_after_{kind}_kill"] = {
                "median": statistics.median(values),
                "max": max(values),
            }
    return result, elapsed


def baseline(model: Path, state: Path, args: argparse.Namespace) -> dict[str, Any]:
    with ServerProcess(model, state, workers=2) as server:
        url = [server.url]
        with Clients(url, args.clients, "base") as clients:
            wait_for(lambda: clients.tally.acks() > 0, 60)
            before, started = clients.tally.acks(), time.monotonic()
            time.sleep(args.baseline_s)
            rate = (clients.tally.acks() - before) / (time.monotonic() - started)
    result = verify(state / "feedback.db", clients.tally)
    result["acks_per_s"] = rate
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--whole-every", type=int, default=10, help="Every Nth kill takes the whole server.")
    parser.add_argument("--acks-between", type=int, default=20, help="New acknowledgements before each kill.")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--baseline-s", type=float, default=15.0, help="Seconds of the no-kill run.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parse_args(parser, QUICK)

    work = Path(tempfile.mkdtemp(prefix="feedback_kill-"))
    model = work / "model"
    train_itemknn(DATA, model)
    base = baseline(model, work / "baseline", args)
    print(f"baseline: {base}", flush=True)
    killed, elapsed = kill_loop(model, work / "kill", args)
    killed["acks_per_s"] = killed["acknowledged"] / elapsed  # includes the restarts' downtime
    print(f"kills: {killed}", flush=True)

    report = {
        "kills": killed["kills"],
        "acknowledged": killed["acknowledged"],
        "lost": killed["lost"],
        "integrity": killed["integrity"],
        "kill_run": killed,
        "kill_run_s": elapsed,
        "baseline": base,
        "ratios": {"acks_per_s_kill_over_baseline": killed["acks_per_s"] / base["acks_per_s"]},
        "clients": args.clients,
        "machine": machine_brief(),
    }
    write_report(args.out, report)
    print(json.dumps({k: report[k] for k in ("kills", "acknowledged", "lost")}))


if __name__ == "__main__":
    run_main(main)
