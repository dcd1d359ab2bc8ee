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

Run: ``python benchmarks/serving_overhead.py [--duration 15] [--connections 8]``; ``--quick``: a smoke
run (seconds, a tiny shop) into ``benchmarks/results/quick/``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Self

import httpx
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from common import (
    K,
    LoadResult,
    combine,
    drive,
    load_settings,
    metric_samples,
    model_settings,
    pick_tool,
    recommend,
    sample_users,
    schedule,
    served_by,
    train_itemknn,
    write_report,
)
from harness import QUICK_SHOP, parse_args, quick_path, run_main
from recdrill.data.snapshot import ShopSnapshot
from recdrill.models.factory import load_model
from recdrill.serving.runtime.child import ChildServer, free_port, spawn, wait_ready
from recdrill.serving.runtime.local_backend import SINGLE_THREAD_ENV
from recdrill.serving.runtime.local_process import ServerProcess

RESULTS = Path(__file__).resolve().parent / "results" / "serving_overhead.json"
QUICK = {
    "duration": 2.0, "rounds": 2, "warmup": 0.5, "data": QUICK_SHOP,
    "out": quick_path("serving_overhead.json"),
}  # fmt: skip


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
    async def answer(body: Body) -> JSONResponse:
        return JSONResponse({"items": recommend(model, snapshot, body.user_id, body.k)})

    @app.get("/readyz")
    async def readyz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def serve_bare(model_dir: Path, port: int) -> None:
    import uvicorn

    uvicorn.run(
        create_bare_app(model_dir), host="127.0.0.1", port=port, log_level="warning", access_log=False
    )


class BareServer(ChildServer):
    """This file's bare app in a child process, started and stopped like ``ServerProcess``."""

    def __init__(self, model_dir: Path, log_path: Path) -> None:
        self.model_dir = model_dir
        self.log_path = log_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        command = [sys.executable, __file__, "--serve-bare", str(self.model_dir), "--port", str(self.port)]
        self._process = spawn(command, SINGLE_THREAD_ENV, self.log_path)
        if not wait_ready(self._process, self.url, self.log_path, time.monotonic() + 60, name="bare server"):
            self.stop()
            raise RuntimeError("bare server did not start in 60 s")
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        self._terminate(timeout_s, whole_group=False)


# --- the run ---------------------------------------------------------------------------------


def tier_chain(url: str) -> list[str]:
    """The tiers recdrill's chain holds (each has a breaker), to show every tier was wired in."""
    return [s.labels["tier"] for s in metric_samples(url, "recdrill_breaker_state")]


def same_answers(bare_url: str, recdrill_url: str, users: list[str]) -> bool:
    """Both servers rank the same items for the same users: they really do the same work."""
    for user in users:
        body = {"user_id": user, "k": K}
        ours = httpx.post(recdrill_url + "/v1/recommend", json=body, timeout=10.0).json()
        bare = httpx.post(bare_url + "/v1/recommend", json=body, timeout=10.0).json()
        if [i["item_id"] for i in ours["items"]] != [i["item_id"] for i in bare["items"]]:
            return False
    return True


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
    args = parse_args(parser, QUICK)
    if args.serve_bare is not None:
        serve_bare(args.serve_bare, args.port)
        return
    tool = pick_tool(args.tool)
    load_before = os.getloadavg()

    with tempfile.TemporaryDirectory(prefix="recdrill-bench-") as tmp:
        work = Path(tmp)
        model_dir = work / "itemknn"
        train_itemknn(args.data, model_dir)
        # The fallback tier: a cheaper ItemKNN, loaded by recdrill from the model's fallback/ folder.
        params = work / "fallback.json"
        params.write_text(json.dumps({"neighbours": 20, "history_length": 3}))
        train_itemknn(args.data, model_dir / "fallback", params)
        users = sample_users(model_dir)

        rounds: dict[str, list[LoadResult]] = {"bare": [], "recdrill": []}
        with (
            BareServer(model_dir, work / "bare.log") as bare,
            ServerProcess(model_dir, work / "state", log_path=work / "recdrill.log") as ours,
        ):
            urls = {"bare": bare.url, "recdrill": ours.url}
            identical = same_answers(bare.url, ours.url, users[:50])
            # Both processes stay up, but only one is driven at a time: an idle server costs no CPU.
            for url in urls.values():
                drive(url, users, args.warmup, args.connections, tool, work)
            for i, name in schedule(("bare", "recdrill"), args.rounds):
                print(f"round {i + 1}/{args.rounds}: {name} under {tool} ...", file=sys.stderr)
                slot = drive(urls[name], users, args.duration / args.rounds, args.connections, tool, work)
                rounds[name].append(slot)
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
        **load_settings(args, tool),
        "warmup_s": args.warmup,
        "workers": 1,
        **model_settings(args.data, load_before),
    }
    write_report(args.out, report)

    print(f"{'server':<10}{'req/s':>10}{'p50 ms':>10}{'p90 ms':>10}{'p99 ms':>10}{'errors':>8}")
    for name, r in results.items():
        print(f"{name:<10}{r.rps:>10.0f}{r.p50_ms:>10.2f}{r.p90_ms:>10.2f}{r.p99_ms:>10.2f}{r.errors:>8}")
    per_round = ", ".join(
        f"{o.rps / b.rps:.3f}" for b, o in zip(rounds["bare"], rounds["recdrill"], strict=True)
    )
    print(f"ratio recdrill/bare = {report['ratio']:.3f} (per round {per_round})")
    print(f"{tool}, {args.duration:.0f} s per server, {args.connections} connections, served_by {tiers}")


if __name__ == "__main__":
    run_main(main)
