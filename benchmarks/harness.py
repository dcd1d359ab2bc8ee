"""What every benchmark script shares, none of it done at import: the process-wide setup of a script
run as ``__main__`` (:func:`run_main`).

Importing a benchmark must not touch the process: Ray imports benchmark modules inside its replicas,
in a thread that is not the main one, where ``signal.signal`` raises ``ValueError`` (issue #17: the
plain deployment of ``ray_serve.py`` never started). So a benchmark installs handlers and changes
the environment only from its ``if __name__ == "__main__":`` block; ``tests/test_benchmarks_import.py``
checks it. This module imports nothing but the standard library: scripts that set thread counts
before numpy loads can import it first.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from typing import NoReturn


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
