"""What every benchmark script shares, none of it done at import: the process-wide setup of a script
run as ``__main__`` (:func:`run_main`), the ``--quick`` flag (:func:`parse_args`), where a quick run
writes (``benchmarks/results/quick/``, git-ignored, so a smoke run never overwrites a real figure),
and the small slices of the shared datasets that quick runs use.

Importing a benchmark must not touch the process: Ray imports benchmark modules inside its replicas,
in a thread that is not the main one, where ``signal.signal`` raises ``ValueError`` (issue #17: the
plain deployment of ``ray_serve.py`` never started). So a benchmark installs handlers and changes
the environment only from its ``if __name__ == "__main__":`` block; ``tests/test_benchmarks_import.py``
checks it. This module imports nothing but the standard library: scripts that set thread counts
before numpy loads can import it first.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

BENCHMARKS = Path(__file__).resolve().parent
RESULTS = BENCHMARKS / "results"
QUICK_RESULTS = RESULTS / "quick"
SHARED_DATASETS = BENCHMARKS.parents[1] / "shared" / "datasets"
# Data for a quick run that trains and serves a model: it only has to load and answer.
QUICK_SHOP = "shopsim:n_items=500,n_users=400,n_events=8000"
QUICK_HELP = "a smoke run (seconds, tiny data) of the same code path; writes under results/quick/"


def run_main(main: Callable[[], int | None]) -> NoReturn:
    """Run a benchmark's ``main`` as a script and exit with what it returns.

    A benchmark stopped with SIGTERM (``timeout``, CI, ``run_quick.py`` past its limit) must still
    run its ``finally`` blocks, which stop the servers it started: by default SIGTERM ends Python
    without them and leaves servers behind. So SIGTERM becomes ``SystemExit(143)`` here, in the
    main thread of a script, never at import.
    """
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    sys.exit(main())


def _exit_on_sigterm(signum: int, frame: object) -> NoReturn:
    raise SystemExit(128 + signum)


def parse_args(
    parser: argparse.ArgumentParser, quick: dict[str, Any], argv: Sequence[str] | None = None
) -> argparse.Namespace:
    """Add ``--quick`` to ``parser`` and parse ``argv``: with ``--quick``, ``quick`` replaces the
    parser's defaults (each a parser ``dest``); options given on the command line still win."""
    parser.add_argument("--quick", action="store_true", help=QUICK_HELP)
    args = list(sys.argv[1:] if argv is None else argv)
    if "--quick" in args:
        parser.set_defaults(**quick)
    return parser.parse_args(args)


def quick_path(name: str) -> Path:
    """Where a quick run writes the file ``name`` (``results/quick/NAME``)."""
    return QUICK_RESULTS / name


def skip(name: str, why: str) -> int:
    """A quick run that cannot run here says so on one line and succeeds (exit code 0), as the
    ``shared_data`` tests skip without ``../shared/datasets``."""
    print(f"{name} --quick: skipped: {why}", flush=True)
    return 0


def sequence_head(source: Path, n_users: int, folder: Path) -> Path:
    """The first ``n_users`` lines of a sequence file (``user item item ...``) as a file of the same
    name in ``folder``, with its ``<stem>_item2attributes.json`` beside it when the source has one."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / source.name
    with source.open("rb") as lines, target.open("wb") as out:
        for i, line in enumerate(lines):
            if i >= n_users:
                break
            out.write(line)
    attributes = source.with_name(f"{source.stem}_item2attributes.json")
    if attributes.is_file():
        shutil.copyfile(attributes, folder / attributes.name)
    return target
