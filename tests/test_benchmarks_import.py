"""Importing a benchmark touches nothing process-wide (issue #17, item 10).

Ray imports benchmark modules inside its replicas, in a thread that is not the main one: a SIGTERM
handler installed at import (``signal.signal``) raised ``ValueError`` there and the plain deployment
of ``benchmarks/ray_serve.py`` never started. Scripts install handlers and set the environment only
from their ``__main__`` block (``benchmarks/harness.py``). One child process imports every module of
``benchmarks/`` in a worker thread, as a replica would, and reports what each import changed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
MODULES = sorted(p.stem for p in BENCHMARKS.glob("*.py"))
THREAD_SETTINGS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

CHILD = r"""
import importlib, json, os, signal, sys, threading

sys.path.insert(0, sys.argv[1])
catchable = [s for s in signal.valid_signals() if s not in (signal.SIGKILL, signal.SIGSTOP)]
report = {}


def name(signum):
    try:
        return signal.Signals(signum).name
    except ValueError:
        return str(signum)


def import_all():
    for module in sys.argv[2:]:
        handlers = {s: signal.getsignal(s) for s in catchable}
        environ = dict(os.environ)
        try:
            importlib.import_module(module)
            error = None
        except BaseException as exc:
            error = f"{type(exc).__name__}: {exc}"
        report[module] = {
            "error": error,
            "signals": [name(s) for s, h in handlers.items() if signal.getsignal(s) is not h],
            "environ": sorted(k for k in {*environ, *os.environ} if environ.get(k) != os.environ.get(k)),
        }


thread = threading.Thread(target=import_all)
thread.start()
thread.join()
print(json.dumps(report))
"""


@pytest.fixture(scope="module")
def imported() -> dict[str, Any]:
    """What importing each benchmark module (in a worker thread of one child process) changed."""
    # Without the thread settings benchmark scripts make, so that a setdefault at import shows too.
    env = {k: v for k, v in os.environ.items() if k not in THREAD_SETTINGS}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(BENCHMARKS), *MODULES],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def test_the_benchmarks_are_found() -> None:
    assert {"common", "harness", "ray_serve", "serving_overhead"} <= set(MODULES)


@pytest.mark.parametrize("module", MODULES)
def test_importing_off_the_main_thread_changes_nothing_process_wide(
    imported: dict[str, Any], module: str
) -> None:
    result = imported[module]
    assert result["error"] is None, f"importing {module} off the main thread failed: {result['error']}"
    assert result["signals"] == [], f"importing {module} installed signal handlers {result['signals']}"
    assert result["environ"] == [], f"importing {module} changed the environment {result['environ']}"
