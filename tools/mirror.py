"""How far ``tests/`` mirrors ``src/``: the share of modules with a test file of their own.

A module ``src/recdrill/AREA/[FAMILY/]NAME.py`` is mirrored by ``tests/AREA/[FAMILY/]test_NAME.py``
(a private ``_NAME.py`` by ``test_NAME.py``). Package ``__init__.py`` files hold no logic and
``__main__.py`` only calls the CLI, so they are not counted.

usage: python tools/mirror.py [--min-share 0.85] [--list]
Prints the share; with ``--min-share``, exits 1 (one line on stderr) when it is lower.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "recdrill"
TESTS = ROOT / "tests"
NOT_COUNTED = {"__init__.py", "__main__.py"}


def test_file_for(module: Path) -> Path:
    """The test file that mirrors ``module`` (a path under ``src/recdrill``)."""
    relative = module.relative_to(SRC)
    return TESTS / relative.parent / f"test_{relative.stem.lstrip('_')}.py"


def mirroring() -> tuple[list[Path], list[Path]]:
    """The counted modules with a mirroring test file, and those without, both sorted."""
    modules = sorted(p for p in SRC.rglob("*.py") if p.name not in NOT_COUNTED)
    mirrored = [m for m in modules if test_file_for(m).is_file()]
    missing = [m for m in modules if not test_file_for(m).is_file()]
    return mirrored, missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min-share", type=float, default=None, help="fail below this share (0..1)")
    parser.add_argument("--list", action="store_true", help="name the modules without a test file")
    args = parser.parse_args(argv)
    mirrored, missing = mirroring()
    total = len(mirrored) + len(missing)
    share = len(mirrored) / total if total else 1.0
    print(f"tests/ mirrors src/ for {len(mirrored)} of {total} modules ({share:.1%})")
    if args.list:
        for module in missing:
            print(f"  no {test_file_for(module).relative_to(ROOT)} for {module.relative_to(ROOT)}")
    if args.min_share is not None and share < args.min_share:
        print(f"mirror: {share:.1%} of modules have a test file, below {args.min_share:.0%}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
