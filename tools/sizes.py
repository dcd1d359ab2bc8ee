"""The largest modules and functions under ``src/`` (lines), against the limits the project keeps:
no module over ~450 lines, no function over ~80.

usage: python tools/sizes.py [--top 3] [--max-module 450] [--max-function 80]
Prints the ``--top`` largest of each; exits 1 (one line on stderr) when any exceeds its limit.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "recdrill"


def module_sizes() -> list[tuple[int, str]]:
    """``(lines, path)`` of every module, largest first."""
    sizes = [(len(p.read_text().splitlines()), str(p.relative_to(ROOT))) for p in SRC.rglob("*.py")]
    return sorted(sizes, reverse=True)


def function_sizes() -> list[tuple[int, str]]:
    """``(lines, path:line name)`` of every function and method, from ``def`` to its last line
    (a click command's option decorators are declarations, not code), largest first."""
    found = []
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                end = node.end_lineno or node.lineno
                found.append((end - node.lineno + 1, f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"))
    return sorted(found, reverse=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=3)
    parser.add_argument("--max-module", type=int, default=450)
    parser.add_argument("--max-function", type=int, default=80)
    args = parser.parse_args(argv)
    modules, functions = module_sizes(), function_sizes()
    print("largest modules:")
    for lines, name in modules[: args.top]:
        print(f"  {lines:5d}  {name}")
    print("largest functions:")
    for lines, name in functions[: args.top]:
        print(f"  {lines:5d}  {name}")
    over = [m for m in modules if m[0] > args.max_module] + [f for f in functions if f[0] > args.max_function]
    if over:
        print(
            f"sizes: {len(over)} over the limits, the first {over[0][1]} ({over[0][0]} lines)",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
