"""Run every benchmark's ``--quick`` mode, one after the other (``make bench-quick``, CI): a benchmark
that no longer starts fails here, naming itself, instead of rotting unseen until someone reruns it.

Every ``benchmarks/*.py`` but the shared modules below is a benchmark, so a new one is run without
being listed. Each gets ``LIMIT_S``; past it, SIGTERM (the benchmark's ``finally`` blocks stop the
servers it started), then SIGKILL. The first failure stops the run, named on the last line. Quick
runs write under ``results/quick/`` only: a file changed elsewhere in ``results/`` is a failure too.

    .venv/bin/python benchmarks/run_quick.py                  # all (ray_serve skips without Ray)
    .venv/bin/python benchmarks/run_quick.py --ray            # those needing the ray extra; Ray required
    .venv/bin/python benchmarks/run_quick.py surge batching   # some
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from harness import BENCHMARKS, QUICK_RESULTS, RESULTS, run_main

SHARED = {"common", "harness", "light_client", "run_quick"}  # modules the benchmarks import
NEEDS_RAY = {"ray_serve"}
LIMIT_S = 300.0


def benchmarks() -> list[str]:
    """Every benchmark script's name, sorted."""
    return sorted(p.stem for p in BENCHMARKS.glob("*.py") if p.stem not in SHARED)


def real_results() -> dict[Path, tuple[int, int]]:
    """(modification time, size) of each file in ``results/`` outside ``results/quick/``."""
    return {
        p: (p.stat().st_mtime_ns, p.stat().st_size)
        for p in RESULTS.rglob("*")
        if p.is_file() and QUICK_RESULTS not in p.parents
    }


def run_one(name: str, env: dict[str, str]) -> int:
    """``python benchmarks/NAME.py --quick``; its exit code (a timeout counts as 124)."""
    process = subprocess.Popen([sys.executable, str(BENCHMARKS / f"{name}.py"), "--quick"], env=env)
    try:
        return process.wait(LIMIT_S)
    except subprocess.TimeoutExpired:
        print(f"run_quick: {name} still running after {LIMIT_S:.0f} s: SIGTERM", file=sys.stderr)
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        return 124
    except BaseException:  # Ctrl-C or SIGTERM of this runner: stop the benchmark the same way
        process.terminate()
        process.wait()
        raise


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    parser.add_argument("--ray", action="store_true", help="only those needing the ray extra, Ray required")
    args = parser.parse_args()
    known = benchmarks()
    unknown = [n for n in args.names if n not in known]
    if unknown:
        parser.error(f"no benchmark {unknown[0]!r}; known: {', '.join(known)}")
    names = args.names or known
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if args.ray:
        names = [n for n in names if n in NEEDS_RAY]
        env["RECDRILL_REQUIRE_RAY"] = "1"  # ray_serve --quick fails instead of skipping without Ray
    timings: list[tuple[str, float]] = []
    started = time.perf_counter()
    for name in names:
        print(f"=== bench-quick: {name}", flush=True)
        before = real_results()
        began = time.perf_counter()
        code = run_one(name, env)
        seconds = time.perf_counter() - began
        if code != 0:
            print(f"bench-quick: FAILED: {name} (exit code {code}, after {seconds:.0f} s)", flush=True)
            return 1
        after = real_results()
        changed = sorted(p for p in after.keys() | before.keys() if after.get(p) != before.get(p))
        if changed:
            wrote = ", ".join(str(p.relative_to(BENCHMARKS)) for p in changed)
            print(f"bench-quick: FAILED: {name} --quick wrote {wrote} (quick runs write in results/quick/)")
            return 1
        timings.append((name, seconds))
        print(f"=== bench-quick: {name} ok in {seconds:.1f} s", flush=True)
    total = time.perf_counter() - started
    print("bench-quick: " + ", ".join(f"{n} {s:.0f} s" for n, s in timings))
    print(f"bench-quick: {len(timings)} ok in {total:.0f} s")
    return 0


if __name__ == "__main__":
    run_main(main)
