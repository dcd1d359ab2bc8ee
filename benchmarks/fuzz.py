"""Conformance fuzzing of the HTTP API: schemathesis 4.32.5 with ``--checks all`` against a real
server on loopback, with and without an API key, from a fixed seed.

A server with an admin key and no key store (the demo's mode) is fuzzed in four runs: every
operation but ``/admin/faults`` with the key and without it, then ``/admin/faults`` on its own with
and without (the faults it injects would degrade the other operations). Any failure of any check
(server errors, undocumented statuses or bodies, schema-valid requests refused, schema-violating
ones accepted, ignored auth, incomplete ``Allow``...) fails the benchmark; the counts per run and
their sum go to ``benchmarks/results/fuzz.json``.

The feedback ``ts`` window moves in whole hours (``recdrill.serving.event_time``) and the document
states it as of its download: a run (each reads it anew) that could cross an hour boundary first
waits for it.

Run: ``python benchmarks/fuzz.py`` (over 20,000 cases in about 5 minutes; ``--max-examples`` scales it);
``--quick``: a bounded run of a few hundred cases per run (CI), into ``benchmarks/results/quick/``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import machine_brief, train_itemknn, write_report
from harness import QUICK_SHOP, parse_args, quick_path, run_main
from recdrill.serving.event_time import STEP_S
from recdrill.serving.runtime.local_process import ServerProcess

KEY = "fuzz-admin-key"
SEED = 12345
RUNS = (  # name, filter options, key given
    ("api-with-key", ["--exclude-path-regex", "^/admin/faults"], True),
    ("api-without-key", ["--exclude-path-regex", "^/admin/faults"], False),
    ("faults-with-key", ["--include-path-regex", "^/admin/faults"], True),
    ("faults-without-key", ["--include-path-regex", "^/admin/faults"], False),
)
QUICK = {"max_examples": 10, "max_time_s": 15, "shop": QUICK_SHOP, "out": quick_path("fuzz.json")}


def schemathesis(
    url: str, filters: list[str], key: bool, args: argparse.Namespace, reports: Path
) -> dict[str, Any]:
    """One ``st run``; its JSON report, read back."""
    command = [
        str(Path(sys.executable).with_name("st")),
        "run",
        f"{url}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        str(args.max_examples),
        "--max-time",
        str(args.max_time_s),
        "--workers",
        "1",
        "--seed",
        str(SEED),
        "--suppress-health-check",
        "all",
        "--no-color",
        "--report",
        "json",
        "--report-dir",
        str(reports),
        *filters,
    ]
    if key:
        command += ["-H", f"X-API-Key: {KEY}"]
    before = set(reports.glob("json-*.json"))
    finished = subprocess.run(command, capture_output=True, text=True, check=False)
    (new,) = set(reports.glob("json-*.json")) - before
    report: dict[str, Any] = json.loads(new.read_text())
    if report["exit_code"] != 0:
        print(finished.stdout[-6000:], file=sys.stderr)
    return report


def wait_clear_of_window_step(seconds: float) -> float:
    """Sleep past the next whole hour if a run of ``seconds`` would cross it; returns the wait."""
    left = STEP_S - time.time() % STEP_S
    if left > seconds:
        return 0.0
    time.sleep(left + 2.0)
    return left + 2.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=50, help="per operation and phase")
    parser.add_argument("--max-time-s", type=int, default=240, help="time budget of each run")
    parser.add_argument("--shop", default="shopsim:n_items=2000,n_users=2000,n_events=40000")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "fuzz.json")
    args = parse_args(parser, QUICK)
    root = Path(tempfile.mkdtemp(prefix="recdrill-fuzz-"))
    model = root / "model"
    train_itemknn(args.shop, model)
    reports = root / "reports"
    reports.mkdir()
    waited = 0.0
    runs = []
    with ServerProcess(
        model, root / "state", admin_key=KEY, deadline_ms=5000, extra_args=["--no-monitor"]
    ) as server:
        for name, filters, key in RUNS:
            waited += wait_clear_of_window_step(args.max_time_s + 30)  # each run reads the document anew
            report = schemathesis(server.url, filters, key, args, reports)
            cases = report["test_cases"]
            runs.append(
                {
                    "run": name,
                    "cases": cases["generated"],
                    "failures": cases["unique_failures"],
                    "errored": cases["errored"],
                    "failed_checks": [
                        f"{f['code']} {f['title']} ({', '.join(f['operations'])})" for f in report["failures"]
                    ],
                    "exit_code": report["exit_code"],
                    "seconds": round(report["running_time"], 1),
                }
            )
            print(f"{name}: {cases['generated']} cases, {cases['unique_failures']} failures", flush=True)
    total = sum(r["cases"] for r in runs)
    failures = sum(r["failures"] + r["errored"] for r in runs)
    write_report(
        args.out,
        {
            "benchmark": "fuzz",
            "tool": "schemathesis 4.32.5 --checks all",
            "seed": SEED,
            "max_examples": args.max_examples,
            "cases": total,
            "failures": failures,
            "waited_for_window_step_s": round(waited, 1),
            "runs": runs,
            "machine": machine_brief(),
        },
    )
    print(f"fuzz: {total} cases, {failures} failures -> {args.out}")
    return 0 if failures == 0 and all(r["exit_code"] == 0 for r in runs) else 1


if __name__ == "__main__":
    run_main(main)
