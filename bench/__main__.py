"""`python -m bench [name ...]`: runs the named benchmarks, or all of them, and prints figures.

A benchmark is a module bench/<name>.py with `async def main(argv: list[str]) -> None`;
add its name to BENCHMARKS.
"""

from __future__ import annotations

import asyncio
import importlib
import sys

BENCHMARKS = ["digest", "delivery", "load", "flood", "dashboard"]


def run(argv: list[str]) -> None:
    names = [arg for arg in argv if not arg.startswith("-")] or BENCHMARKS
    options = [arg for arg in argv if arg.startswith("-")]
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        sys.exit(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        asyncio.run(module.main(options))


if __name__ == "__main__":
    run(sys.argv[1:])
