"""recdrill's Ray Serve backend against a plain one-request-per-call Ray Serve deployment of the same model.

Both serve the same saved ItemKNN folder (trained here on the default ShopSim: 10k items, 20k users,
500k events) with the same Ray setup for a small machine (2 replicas of 0.5 CPU, no dashboard, one
BLAS thread per replica, access logs off) and answer ``POST /v1/recommend {"user_id": ..., "k": 10}``:

- ``plain``: the textbook deployment: a class whose ``__call__(request)`` parses the JSON, scores the
  user's history, removes it and returns the top 10; requests arrive through Ray's HTTP proxy, which
  forwards each one to a replica as a Ray actor call.
- ``recdrill``: ``recdrill.serving.runtime.ray_backend`` as ``recdrill serve --backend ray`` runs it: the full
  app (tier router, metrics, strict bodies) with Ray Serve's direct ingress: HAProxy in front, each
  replica answering HTTP itself.
- ``recdrill_via_proxy`` (diagnostic): the same full app behind Ray's Python proxy, to separate what
  the ingress costs from what the app costs.

Each variant runs in its own child process (Ray reads its feature flags once, at import) with its
own local Ray cluster, one at a time: an idle Ray cluster still spends CPU. Rounds alternate the
order (ABC, CBA, ...). Each slot: a warm-up, a closed-loop ``wrk`` load (httpx when wrk is missing),
then a sequential probe that splits each request's latency into time inside the handler (the
response's ``latency_ms``/``handler_ms``) and the rest (ingress, routing, serialisation). CPU seconds
per process role (proxy, replica, HAProxy, Ray core, controller, load generator) during the load come
from ``/proc``. The model call alone is timed in this process. Results: ``benchmarks/results/ray_serve.json``.

Run: ``python benchmarks/ray_serve.py [--duration 40] [--rounds 2] [--variants plain,recdrill]`` (needs
the ``ray`` extra). ``--quick``: a smoke run (one 2 s slot per variant, a tiny shop) into
``benchmarks/results/quick/``; without Ray installed it skips with one line, unless
``RECDRILL_REQUIRE_RAY=1`` (``make bench-quick-ray``) makes that a failure.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from common import (
    K,
    LoadResult,
    combine,
    drive,
    load_settings,
    model_settings,
    pick_tool,
    recommend,
    sample_users,
    schedule,
    score_user,
    train_itemknn,
    write_report,
)
from harness import QUICK_SHOP, parse_args, quick_path, run_main, skip
from recdrill.data.snapshot import ShopSnapshot
from recdrill.models.factory import load_model
from recdrill.serving.runtime.ray_backend import RayOptions, StopServing, ray_cluster, serve_forever
from recdrill.serving.runtime.ray_process import RayServerProcess

RESULTS = Path(__file__).resolve().parent / "results" / "ray_serve.json"
QUICK = {"duration": 2.0, "rounds": 1, "warmup": 0.5, "data": QUICK_SHOP, "out": quick_path("ray_serve.json")}
REPLICAS = 2
VARIANTS = ("plain", "recdrill", "recdrill_via_proxy")


# --- the servers (each runs in a child process: python ray_serve.py --serve NAME ...) ------------


class PlainRecommender:
    """The plain deployment: one model call per HTTP request, Ray's proxy in front."""

    def __init__(self, model_dir: str) -> None:
        self.model = load_model(model_dir)
        self.snapshot = ShopSnapshot.load(model_dir)

    async def __call__(self, request: Any) -> dict[str, Any]:
        if request.method == "GET":
            return {"status": "ready"}
        started = time.perf_counter()
        body = await request.json()
        items = recommend(self.model, self.snapshot, body["user_id"], int(body.get("k", K)))
        return {"items": items, "handler_ms": (time.perf_counter() - started) * 1000.0}


def ray_options(name: str) -> RayOptions:
    """The same small-machine setup for every variant; only the ingress differs."""
    return RayOptions(
        min_replicas=REPLICAS,
        max_replicas=REPLICAS,
        ingress="direct" if name == "recdrill" else "proxy",
    )


def serve_plain(model_dir: Path, state_dir: Path, port: int) -> None:
    """The plain deployment's server process (``--serve-plain``): Ray's proxy, one call per request."""
    options = dataclasses.replace(ray_options("plain"), http_port=port)
    with contextlib.suppress(StopServing), ray_cluster(state_dir, options) as serve:
        deployment = serve.deployment(
            PlainRecommender,
            name="plain",
            num_replicas=REPLICAS,
            ray_actor_options=options.actor_options(),
        )
        serve.run(deployment.bind(str(model_dir)), name="plain", route_prefix="/")
        serve_forever()


class PlainServerProcess(RayServerProcess):
    """The plain deployment in a child process, started and stopped like recdrill's."""

    def command(self) -> list[str]:
        return [
            sys.executable, __file__, "--serve-plain", str(self.model_dir),
            "--state", str(self.state_dir), "--port", str(self.options.http_port),
        ]  # fmt: skip


def server(name: str, model_dir: Path, work: Path) -> RayServerProcess:
    """``plain`` or ``recdrill serve --backend ray`` (direct or proxy ingress), not yet started."""
    # Short state paths: Ray's unix sockets live under <state>/ray.
    state = work / f"s{VARIANTS.index(name)}"
    kind = PlainServerProcess if name == "plain" else RayServerProcess
    return kind(model_dir, state, ray_options(name), log_path=work / f"{name}.log")


# --- where the time goes ---------------------------------------------------------------------

ROLES = (
    ("ServeReplica", "replica"),
    ("ProxyActor", "ray_proxy"),
    ("haproxy", "haproxy"),
    ("ServeController", "controller"),
    ("raylet", "ray_core"),
    ("gcs_server", "ray_core"),
    ("wrk", "load_generator"),
)


def cpu_ticks() -> dict[int, tuple[str, int]]:
    """utime + stime of every process, with the role its command line names."""
    found: dict[int, tuple[str, int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        other = "ray_other" if "ray" in cmdline else "rest_of_machine"  # e.g. another benchmark
        role = next((r for key, r in ROLES if key in cmdline), other)
        found[int(entry.name)] = (role, int(fields[11]) + int(fields[12]))
    return found


def cpu_by_role(before: dict[int, tuple[str, int]], after: dict[int, tuple[str, int]]) -> dict[str, float]:
    seconds: dict[str, float] = defaultdict(float)
    hz = os.sysconf("SC_CLK_TCK")
    for pid, (role, ticks) in after.items():
        seconds[role] += (ticks - before.get(pid, (role, 0))[1]) / hz
    return dict(sorted(seconds.items()))


def probe(url: str, users: list[str], n: int) -> dict[str, float]:
    """Sequential requests: end-to-end latency split into handler time and everything around it."""
    total, inside = [], []
    with httpx.Client(base_url=url, timeout=10.0) as client:
        for user in users[:n]:
            sent = time.perf_counter()
            answer = client.post("/v1/recommend", json={"user_id": user, "k": K}).json()
            total.append((time.perf_counter() - sent) * 1000.0)
            inside.append(answer.get("latency_ms", answer.get("handler_ms", float("nan"))))
    e2e, handler = float(np.median(total)), float(np.median(inside))
    return {"e2e_ms_p50": e2e, "handler_ms_p50": handler, "outside_handler_ms_p50": e2e - handler}


def model_call_ms(model_dir: Path, users: list[str], n: int = 300) -> float:
    """The model's own share: score, exclude and top 10 for one user, in this process."""
    model, snapshot = load_model(model_dir), ShopSnapshot.load(model_dir)
    times = []
    for user in users[:n]:
        started = time.perf_counter()
        score_user(model, snapshot, user, K)
        times.append((time.perf_counter() - started) * 1000.0)
    return float(np.median(times))


def top10(url: str, users: list[str], patience_s: float = 30.0) -> list[list[str]]:
    """Each user's top 10; a just-started server may refuse for a moment while routes settle."""
    found = []
    for user in users:
        deadline = time.monotonic() + patience_s
        while True:
            response = httpx.post(url + "/v1/recommend", json={"user_id": user, "k": K}, timeout=30.0)
            if response.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        if response.status_code != 200:
            raise RuntimeError(f"{url}: {response.status_code} {response.text[:200]}")
        found.append([i["item_id"] for i in response.json()["items"]])
    return found


# --- the run ---------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=40.0, help="Measured seconds per variant.")
    parser.add_argument("--rounds", type=int, default=2, help="Alternating rounds the duration is split in.")
    parser.add_argument("--warmup", type=float, default=5.0, help="Unmeasured seconds per slot first.")
    parser.add_argument("--connections", type=int, default=16, help="Concurrent connections.")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"Comma-separated, of {VARIANTS}")
    parser.add_argument("--data", default="shopsim", help="Data to train on (recdrill train --data).")
    parser.add_argument("--tool", choices=["auto", "wrk", "httpx"], default="auto")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--serve-plain", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--state", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parse_args(parser, QUICK)
    if args.serve_plain:
        serve_plain(args.serve_plain, args.state, args.port)
        return 0
    if not ray_installed():
        missing = "Ray is not installed (pip install -e '.[ray]')"
        if args.quick and os.environ.get("RECDRILL_REQUIRE_RAY") != "1":
            return skip("ray_serve", missing)
        parser.exit(1, f"ray_serve: {missing}\n")
    variants = args.variants.split(",")
    if not {"plain", "recdrill"} <= set(variants) <= set(VARIANTS):
        parser.error(f"--variants must include plain and recdrill, from {VARIANTS}")
    tool = pick_tool(args.tool)
    load_before = os.getloadavg()
    slot_s = args.duration / args.rounds

    with tempfile.TemporaryDirectory(prefix="rd-ray-", dir="/tmp") as tmp:
        work = Path(tmp)
        model_dir = work / "itemknn"
        train_itemknn(args.data, model_dir)
        users = sample_users(model_dir)
        model_ms = model_call_ms(model_dir, users)

        slots: dict[str, list[LoadResult]] = defaultdict(list)
        extras: dict[str, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
        answers: dict[str, list[list[str]]] = {}
        order = [name for _, name in schedule(variants, args.rounds)]  # ABC, CBA, ABC, ...
        i = 0
        while i < len(order):
            name = order[i]
            with server(name, model_dir, work) as running:
                extras[name]["start_s"].append(running.start_s)
                answers.setdefault(name, top10(running.url, users[:20]))
                while i < len(order) and order[i] == name:  # CBA|ABC: keep C up for both slots
                    print(f"slot {i + 1}/{len(order)}: {name} under {tool} ...", file=sys.stderr)
                    drive(running.url, users, args.warmup, args.connections, tool, work)
                    before = cpu_ticks()
                    slots[name].append(drive(running.url, users, slot_s, args.connections, tool, work))
                    extras[name]["cpu_s"].append(cpu_by_role(before, cpu_ticks()))
                    extras[name]["probe"].append(probe(running.url, users, 200))
                    i += 1

    results = {name: combine(each) for name, each in slots.items()}
    plain_rps, recdrill_rps = results["plain"].rps, results["recdrill"].rps
    report = {
        "plain_rps": plain_rps,
        "recdrill_rps": recdrill_rps,
        "ratio": recdrill_rps / plain_rps,
        **{name: asdict(r) for name, r in results.items()},
        "where_time_goes": {name: breakdown(slots[name], extras[name], model_ms) for name in results},
        "model_call_ms_p50": model_ms,
        "slots": {name: [asdict(r) for r in each] for name, each in slots.items()},
        "same_top10_for_20_users": all(a == answers["plain"] for a in answers.values()),
        "ray_version": ray_version(),
        "schedule": order,
        **load_settings(args, tool),
        "warmup_s": args.warmup,
        "replicas": REPLICAS,
        "cpus_per_replica": ray_options("plain").cpus_per_replica,
        **model_settings(args.data, load_before),
    }
    write_report(args.out, report)
    print_table(report, results)
    return 0


def breakdown(slots: list[LoadResult], extras: dict[str, list[Any]], model_ms: float) -> dict[str, Any]:
    """CPU milliseconds per request by process role, and the probe's latency split."""
    requests = sum(r.requests for r in slots)
    cpu: dict[str, float] = defaultdict(float)
    for each in extras["cpu_s"]:
        for role, seconds in each.items():
            cpu[role] += seconds
    probes = extras["probe"]
    return {
        "cpu_ms_per_request": {role: 1000.0 * s / requests for role, s in sorted(cpu.items())},
        "cpu_s_total": dict(sorted(cpu.items())),
        "probe": {key: float(np.median([p[key] for p in probes])) for key in probes[0]},
        "model_call_ms_p50": model_ms,
        "start_s": extras["start_s"],
    }


def ray_installed() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def ray_version() -> str:
    import ray

    return str(ray.__version__)


def print_table(report: dict[str, Any], results: dict[str, LoadResult]) -> None:
    print(f"{'variant':<20}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}  cpu ms/request by role")
    for name, r in results.items():
        cpu = report["where_time_goes"][name]["cpu_ms_per_request"]
        roles = ", ".join(f"{k} {v:.2f}" for k, v in cpu.items() if k != "rest_of_machine" and v >= 0.01)
        print(f"{name:<20}{r.rps:>9.0f}{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}{r.errors:>8}  {roles}")
    model_ms = report["model_call_ms_p50"]
    print(f"ratio recdrill/plain = {report['ratio']:.2f}; the model call alone: {model_ms:.3f} ms")


if __name__ == "__main__":
    run_main(main)
