"""What the serving machinery costs: recdrill's server against a bare FastAPI app doing the same work.

Both load the same saved ItemKNN folder (trained here on the default ShopSim: 10k items, 20k users,
500k events) and answer ``POST /v1/recommend {"user_id": ..., "k": 10}``. The bare app maps the user
to its snapshot history, calls ``model.score``, removes the history and returns the top 10 as JSON:
the primary tier's work without the router, fault points, metrics or validation. recdrill's request
goes through its whole resilient path: admission control, strict request bodies, the tier chain
(primary -> fallback ItemKNN from ``fallback/`` -> last-good cache -> category popularity -> global
popularity, a circuit breaker and a deadline share per tier; the primary answers when healthy, and
its answer fills the cache), the model call micro-batched in a worker thread, and Prometheus metrics.

Each server is its own process (one uvicorn worker, ``OPENBLAS_NUM_THREADS=1``) on a free loopback
port; they are driven one after the other by the same closed-loop load generator (``wrk`` with a Lua
script when it is on PATH, else an asyncio httpx client) for the same duration after a warm-up,
cycling through known user ids. Results go to ``benchmarks/results/serving_overhead.json``.

Run: ``python benchmarks/serving_overhead.py [--duration 15] [--connections 8]``
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
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from recdrill.cli import main as recdrill_main
from recdrill.data.ragged import Ragged
from recdrill.data.snapshot import ShopSnapshot
from recdrill.eval.ranking import exclude, top_k
from recdrill.models.factory import load_model
from recdrill.serving.process import SINGLE_THREAD_ENV, ServerProcess, free_port

RESULTS = Path(__file__).resolve().parent / "results" / "serving_overhead.json"
K = 10
N_USERS_CYCLED = 2000


# --- the bare app ----------------------------------------------------------------------------


class Body(BaseModel):
    """The bare app's request (module level: FastAPI resolves the annotation by name)."""

    user_id: str
    k: int = K


def create_bare_app(model_dir: Path) -> FastAPI:
    """The primary tier's work behind one FastAPI endpoint: no router, faults, metrics or checks."""
    model = load_model(model_dir)
    snapshot = ShopSnapshot.load(model_dir)
    app = FastAPI()

    @app.post("/v1/recommend")
    async def recommend(body: Body) -> JSONResponse:
        user = snapshot.user_index(body.user_id)
        history = snapshot.histories.row(user) if user >= 0 else np.zeros(0, dtype=np.int64)
        ragged = Ragged.from_lists([history[-50:]])
        scores = np.array(model.score(ragged), dtype=np.float32, copy=True)
        items, values = top_k(exclude(scores, ragged), body.k)
        return JSONResponse(
            {
                "items": [
                    {"item_id": i, "score": v}
                    for i, v in zip(snapshot.item_ids[items[0]].tolist(), values[0].tolist(), strict=True)
                ]
            }
        )

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def serve_bare(model_dir: Path, port: int) -> None:
    import uvicorn

    uvicorn.run(
        create_bare_app(model_dir), host="127.0.0.1", port=port, log_level="warning", access_log=False
    )


class BareServer:
    """This file's bare app in a child process, like ``ServerProcess`` for recdrill."""

    def __init__(self, model_dir: Path, log_path: Path) -> None:
        self.model_dir = model_dir
        self.log_path = log_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> BareServer:
        command = [sys.executable, __file__, "--serve-bare", str(self.model_dir), "--port", str(self.port)]
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                command, env={**os.environ, **SINGLE_THREAD_ENV}, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"bare server exited: see {self.log_path}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError("bare server did not start in 60 s")

    def __exit__(self, *_: object) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(timeout=10)


# --- load generators -------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadResult:
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


def run_wrk(url: str, users: list[str], seconds: float, connections: int, script: Path) -> LoadResult:
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


def run_httpx(url: str, users: list[str], seconds: float, connections: int) -> LoadResult:
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


# --- the run ---------------------------------------------------------------------------------


def served_by(url: str) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(url + "/metrics", timeout=10.0).text
    return {
        s.labels["tier"]: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "recdrill_served_by_total"
    }


def tier_chain(url: str) -> list[str]:
    """The tiers recdrill's chain holds (each has a breaker), to show every tier was wired in."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(url + "/metrics", timeout=10.0).text
    return [
        s.labels["tier"]
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "recdrill_breaker_state"
    ]


def same_answers(bare_url: str, recdrill_url: str, users: list[str]) -> bool:
    """Both servers rank the same items for the same users: they really do the same work."""
    for user in users:
        body = {"user_id": user, "k": K}
        ours = httpx.post(recdrill_url + "/v1/recommend", json=body, timeout=10.0).json()
        bare = httpx.post(bare_url + "/v1/recommend", json=body, timeout=10.0).json()
        if [i["item_id"] for i in ours["items"]] != [i["item_id"] for i in bare["items"]]:
            return False
    return True


def machine() -> dict[str, Any]:
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
    }


def drive(
    url: str, users: list[str], seconds: float, args: argparse.Namespace, tool: str, work: Path
) -> LoadResult:
    if tool == "wrk":
        return run_wrk(url, users, seconds, args.connections, work / "load.lua")
    return run_httpx(url, users, seconds, args.connections)


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=15.0, help="Measured seconds per server.")
    parser.add_argument("--rounds", type=int, default=3, help="Alternating rounds the duration is split in.")
    parser.add_argument("--warmup", type=float, default=3.0, help="Unmeasured seconds per server first.")
    parser.add_argument("--connections", type=int, default=8, help="Concurrent connections.")
    parser.add_argument("--data", default="shopsim", help="Data to train on (recdrill train --data).")
    parser.add_argument("--tool", choices=["auto", "wrk", "httpx"], default="auto")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--serve-bare", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare is not None:
        serve_bare(args.serve_bare, args.port)
        return
    tool = args.tool if args.tool != "auto" else ("wrk" if shutil.which("wrk") else "httpx")
    load_before = os.getloadavg()

    with tempfile.TemporaryDirectory(prefix="recdrill-bench-") as tmp:
        work = Path(tmp)
        model_dir = work / "itemknn"
        print(f"training itemknn on {args.data} ...", file=sys.stderr)
        if recdrill_main(["train", "--data", args.data, "--model", "itemknn", "--out", str(model_dir)]) != 0:
            raise SystemExit("training failed")
        # The fallback tier: a cheaper ItemKNN, loaded by recdrill from the model's fallback/ folder.
        params = work / "fallback.json"
        params.write_text(json.dumps({"neighbours": 20, "history_length": 3}))
        fallback = ["--params", str(params), "--out", str(model_dir / "fallback")]
        if recdrill_main(["train", "--data", args.data, "--model", "itemknn", *fallback]) != 0:
            raise SystemExit("training the fallback failed")
        snapshot = ShopSnapshot.load(model_dir)
        known = np.flatnonzero(snapshot.histories.lengths > 0)
        picked = np.random.default_rng(0).permutation(known)[:N_USERS_CYCLED]
        users = snapshot.user_ids[picked].tolist()

        rounds: dict[str, list[LoadResult]] = {"bare": [], "recdrill": []}
        with (
            BareServer(model_dir, work / "bare.log") as bare,
            ServerProcess(model_dir, work / "state", log_path=work / "recdrill.log") as ours,
        ):
            urls = {"bare": bare.url, "recdrill": ours.url}
            identical = same_answers(bare.url, ours.url, users[:50])
            # Both processes stay up, but only one is driven at a time: an idle server costs no CPU.
            # Alternating rounds (ABBA...) spread slow drift in the machine's load over both.
            for url in urls.values():
                drive(url, users, args.warmup, args, tool, work)
            for i in range(args.rounds):
                for name in ("bare", "recdrill") if i % 2 == 0 else ("recdrill", "bare"):
                    print(f"round {i + 1}/{args.rounds}: {name} under {tool} ...", file=sys.stderr)
                    rounds[name].append(
                        drive(urls[name], users, args.duration / args.rounds, args, tool, work)
                    )
            tiers = served_by(ours.url)
            chain = tier_chain(ours.url)

    results = {name: combine(each) for name, each in rounds.items()}
    bare_rps, recdrill_rps = results["bare"].rps, results["recdrill"].rps
    report = {
        "bare_rps": bare_rps,
        "recdrill_rps": recdrill_rps,
        "ratio": recdrill_rps / bare_rps,
        "bare": asdict(results["bare"]),
        "recdrill": asdict(results["recdrill"]),
        "rounds": {name: [asdict(r) for r in each] for name, each in rounds.items()},
        "recdrill_served_by": tiers,
        "recdrill_tier_chain": chain,
        "same_top10_for_50_users": identical,
        "load_tool": tool,
        "duration_s": args.duration,
        "n_rounds": args.rounds,
        "warmup_s": args.warmup,
        "connections": args.connections,
        "workers": 1,
        "data": args.data,
        "model": "itemknn",
        "machine": {**machine(), "loadavg_before": load_before, "loadavg_after": os.getloadavg()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")

    print(f"{'server':<10}{'req/s':>10}{'p50 ms':>10}{'p90 ms':>10}{'p99 ms':>10}{'errors':>8}")
    for name, r in results.items():
        print(f"{name:<10}{r.rps:>10.0f}{r.p50_ms:>10.2f}{r.p90_ms:>10.2f}{r.p99_ms:>10.2f}{r.errors:>8}")
    per_round = ", ".join(
        f"{o.rps / b.rps:.3f}" for b, o in zip(rounds["bare"], rounds["recdrill"], strict=True)
    )
    print(f"ratio recdrill/bare = {report['ratio']:.3f} (per round {per_round})")
    print(f"{tool}, {args.duration:.0f} s per server, {args.connections} connections, served_by {tiers}")


if __name__ == "__main__":
    main()
