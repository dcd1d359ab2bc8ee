"""What the serving benchmarks share: a trained ItemKNN and its users, a closed-loop load generator,
the server's metrics, percentiles, and the JSON report with a description of the machine.

Each benchmark runs as ``python benchmarks/NAME.py``, which puts this folder on ``sys.path``: they
import this module as ``common`` (and :mod:`harness` for what every script shares). One copy of
the load generator keeps their figures comparable.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from recdrill.cli import main as recdrill_main
from recdrill.data.ragged import Ragged
from recdrill.data.snapshot import ShopSnapshot
from recdrill.eval.ranking import exclude, top_k
from recdrill.models.base import Recommender
from recdrill.serving.runtime.local_process import ServerProcess

K = 10
N_USERS_CYCLED = 2000

# Nothing here touches the process at import (Ray imports this module inside its replicas, off the
# main thread): a script's SIGTERM handler is installed by harness.run_main, from its __main__ block.

# --- model and users -------------------------------------------------------------------------


def train_itemknn(data: str, out: Path, params: Path | None = None) -> None:
    """``recdrill train --model itemknn`` into ``out``; exits the benchmark if training fails."""
    print(f"training itemknn on {data} ...", file=sys.stderr)
    extra = ["--params", str(params)] if params is not None else []
    if recdrill_main(["train", "--data", data, "--model", "itemknn", *extra, "--out", str(out)]) != 0:
        raise SystemExit("training failed")


def sample_users(model_dir: Path, n: int = N_USERS_CYCLED, seed: int = 0) -> list[str]:
    """Up to ``n`` users with a history in the model's snapshot, in a seeded random order: the load
    cycles through them so that every request does a real model call."""
    snapshot = ShopSnapshot.load(model_dir)
    known = np.flatnonzero(snapshot.histories.lengths > 0)
    picked = np.random.default_rng(seed).permutation(known)[:n]
    return list(snapshot.user_ids[picked].tolist())


def score_user(
    model: Recommender, snapshot: ShopSnapshot, user_id: str, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The primary tier's work for one user, without the router: score the last 50 items of the
    history, drop them, take the top ``k``. Returns (item indices, scores), each of shape (1, k)."""
    user = snapshot.user_index(user_id)
    history = snapshot.histories.row(user) if user >= 0 else np.zeros(0, dtype=np.int64)
    ragged = Ragged.from_lists([history[-50:]])
    scores = np.array(model.score(ragged), dtype=np.float32, copy=True)
    return top_k(exclude(scores, ragged), k)


def recommend(model: Recommender, snapshot: ShopSnapshot, user_id: str, k: int) -> list[dict[str, Any]]:
    """:func:`score_user` as the API's ``items`` list: ``[{"item_id": ..., "score": ...}, ...]``."""
    items, values = score_user(model, snapshot, user_id, k)
    ids = snapshot.item_ids[items[0]].tolist()
    return [{"item_id": i, "score": v} for i, v in zip(ids, values[0].tolist(), strict=True)]


def start_server_with_env(model_dir: Path, state: Path, env: dict[str, str], **options: Any) -> ServerProcess:
    """A started recdrill server whose workers see ``env`` (knobs ``recdrill serve`` has no flag for);
    this process's environment is restored afterwards. ``options`` go to :class:`ServerProcess`."""
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        return ServerProcess(model_dir, state, log_path=state.parent / f"{state.name}.log", **options).start()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# --- closed-loop load ------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadResult:
    """One closed-loop run: totals, throughput and latency percentiles in milliseconds."""

    requests: int
    seconds: float
    errors: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float


WRK_SCRIPT = """
local users = {%(users)s}
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  i = i + 1
  local body = '{"user_id":"' .. users[(i %% #users) + 1] .. '","k":%(k)d}'
  return wrk.format(nil, "/v1/recommend", nil, body)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests":%%d,"duration_us":%%d,"errors":%%d,' ..
    '"p50_us":%%d,"p90_us":%%d,"p99_us":%%d,"mean_us":%%f}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean))
end
"""


def pick_tool(choice: str) -> str:
    """``--tool auto`` means ``wrk`` when it is on PATH (cheaper per request), else httpx."""
    if choice != "auto":
        return choice
    return "wrk" if shutil.which("wrk") else "httpx"


def run_wrk(url: str, users: list[str], seconds: float, connections: int, script: Path) -> LoadResult:
    """``wrk`` with a Lua script cycling through ``users``; its summary comes back as JSON."""
    script.write_text(WRK_SCRIPT % {"users": ",".join(f'"{u}"' for u in users), "k": K})
    command = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "-s", str(script), url]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    found = re.search(r"^RESULT (\{.*\})$", out, flags=re.MULTILINE)
    if found is None:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    r = json.loads(found.group(1))
    elapsed = r["duration_us"] / 1e6
    return LoadResult(
        r["requests"],
        elapsed,
        r["errors"],
        r["requests"] / elapsed,
        r["p50_us"] / 1000,
        r["p90_us"] / 1000,
        r["p99_us"] / 1000,
        r["mean_us"] / 1000,
    )


def run_httpx(url: str, users: Sequence[str], seconds: float, connections: int) -> LoadResult:
    """Closed loop: ``connections`` clients each send the next request as soon as one returns."""

    async def drive() -> tuple[list[float], int, float]:
        latencies: list[float] = []
        errors = 0
        counter = 0
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=10.0) as client:
            started = time.perf_counter()
            stop = started + seconds

            async def worker() -> None:
                nonlocal errors, counter
                while time.perf_counter() < stop:
                    counter += 1
                    sent = time.perf_counter()
                    body = {"user_id": users[counter % len(users)], "k": K}
                    response = await client.post("/v1/recommend", json=body)
                    latencies.append(time.perf_counter() - sent)
                    errors += response.status_code != 200

            await asyncio.gather(*(worker() for _ in range(connections)))
            return latencies, errors, time.perf_counter() - started

    latencies, errors, elapsed = asyncio.run(drive())
    ms = np.asarray(latencies) * 1000
    p50, p90, p99 = np.percentile(ms, [50, 90, 99]).tolist()
    return LoadResult(len(ms), elapsed, errors, len(ms) / elapsed, p50, p90, p99, float(ms.mean()))


def drive(url: str, users: list[str], seconds: float, connections: int, tool: str, work: Path) -> LoadResult:
    """One closed-loop run with ``tool`` (``wrk`` or ``httpx``); ``work`` holds wrk's script."""
    if tool == "wrk":
        return run_wrk(url, users, seconds, connections, work / "load.lua")
    return run_httpx(url, users, seconds, connections)


def combine(rounds: list[LoadResult]) -> LoadResult:
    """All rounds of one server as one result: totals for throughput, medians for percentiles."""
    requests = sum(r.requests for r in rounds)
    seconds = sum(r.seconds for r in rounds)
    return LoadResult(
        requests,
        seconds,
        sum(r.errors for r in rounds),
        requests / seconds,
        float(np.median([r.p50_ms for r in rounds])),
        float(np.median([r.p90_ms for r in rounds])),
        float(np.median([r.p99_ms for r in rounds])),
        sum(r.mean_ms * r.requests for r in rounds) / requests,
    )


def schedule(names: Sequence[str], rounds: int) -> Iterator[tuple[int, str]]:
    """(round, name) in alternating order (AB, BA, AB, ...): slow drift in the machine's load
    spreads over every variant instead of landing on the one measured last."""
    for i in range(rounds):
        for name in names if i % 2 == 0 else names[::-1]:
            yield i, name


# --- what the server reports -----------------------------------------------------------------


def metric_samples(url: str, *names: str) -> list[Sample]:
    """The samples with one of ``names`` on the server's ``/metrics`` page (one scrape)."""
    text = httpx.get(url + "/metrics", timeout=10.0).text
    return [s for family in text_string_to_metric_families(text) for s in family.samples if s.name in names]


def served_by(url: str) -> dict[str, float]:
    """Answers per tier so far: which tier really did the work."""
    return {s.labels["tier"]: s.value for s in metric_samples(url, "recdrill_served_by_total")}


def percentile(values: Sequence[float] | np.ndarray, q: float) -> float | None:
    """The ``q``-th percentile of ``values``; None when there are none (a JSON null)."""
    return float(np.percentile(values, q)) if len(values) else None


# --- the report ------------------------------------------------------------------------------


def machine(loadavg_before: tuple[float, float, float]) -> dict[str, Any]:
    """CPU, cores, Python and platform, with the load average before the run and now."""
    cpu = platform.processor()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = re.findall(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(), flags=re.MULTILINE)
        cpu = names[0] if names else cpu
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_before": loadavg_before,
        "loadavg_after": os.getloadavg(),
    }


def load_settings(args: argparse.Namespace, tool: str) -> dict[str, Any]:
    """The closed-loop load a report was measured under (``--duration``, ``--rounds``, ``--connections``)."""
    return {
        "load_tool": tool,
        "duration_s": args.duration,
        "n_rounds": args.rounds,
        "connections": args.connections,
    }


def model_settings(data: str, loadavg_before: tuple[float, float, float]) -> dict[str, Any]:
    """The model served (an ItemKNN trained on ``data``) and the machine, for a report."""
    return {"data": data, "model": "itemknn", "machine": machine(loadavg_before)}


def machine_brief() -> dict[str, Any]:
    """The short machine description of the kill benchmarks: cores, 1-minute load, Python."""
    return {
        "cpus": os.cpu_count(),
        "load_average_1m": os.getloadavg()[0],
        "python": platform.python_version(),
    }


def write_report(path: Path, report: dict[str, Any]) -> None:
    """The benchmark's JSON result, indented, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
