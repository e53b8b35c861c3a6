"""`python -m bench [name ...] [--option=value ...]`: runs the named benchmarks, or all of them,
and prints figures. `python -m bench --help` lists them and their options.

A benchmark is a module bench/<name>.py with `async def main(argv: list[str]) -> None`
whose docstring opens with a one-line summary and then its usage in backquotes,
`python -m bench <name> [--option=...]`: the options named there are the ones it takes, and
any other option prints the help instead of starting a run that may take 15 minutes.
Add its name to BENCHMARKS.
"""

from __future__ import annotations

import asyncio
import importlib
import re
import sys
from types import ModuleType

BENCHMARKS = ["digest", "delivery", "load", "flood", "dashboard", "taps", "processes"]
HELP = {"-h", "--help"}
_USAGE = re.compile(r"`(python -m bench [^`]*)`")
_OPTION = re.compile(r"--([a-z][a-z-]*)")


def usage(module: ModuleType) -> tuple[str, str, set[str]]:
    """(summary, usage line, option names) from a benchmark's docstring."""
    doc = module.__doc__ or ""
    summary = doc.strip().splitlines()[0] if doc.strip() else ""
    found = _USAGE.search(doc)
    line = " ".join(found.group(1).split()) if found else f"python -m bench {module.__name__}"
    return summary, line, set(_OPTION.findall(line))


def help_text(modules: dict[str, ModuleType]) -> str:
    lines = ["usage: python -m bench [name ...] [--option=value ...]",
             "Runs the named benchmarks (all of them when none is named) and prints figures.",
             "", "benchmarks:"]
    for name, module in modules.items():
        summary, line, _ = usage(module)
        lines += [f"  {name}: {summary}", f"      {line}"]
    lines += ["", "Figures go to docs/performance.md; `make bench` runs them all."]
    return "\n".join(lines)


def run(argv: list[str]) -> int:
    names = [arg for arg in argv if not arg.startswith("-")] or BENCHMARKS
    options = [arg for arg in argv if arg.startswith("-")]
    unknown = sorted(set(names) - set(BENCHMARKS))
    modules = {name: importlib.import_module(f"bench.{name}") for name in BENCHMARKS}
    if HELP & set(options):
        print(help_text(modules))
        return 0
    if unknown:
        print(help_text(modules), file=sys.stderr)
        print(f"\nunknown benchmark(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    wanted = set().union(*(usage(modules[name])[2] for name in names))
    strange = sorted(o for o in options if o[2:].split("=", 1)[0] not in wanted
                     or not o.startswith("--"))
    if strange:
        print(help_text({name: modules[name] for name in names}), file=sys.stderr)
        print(f"\nunknown option(s) for {', '.join(names)}: {', '.join(strange)}",
              file=sys.stderr)
        return 2
    for name in names:
        asyncio.run(modules[name].main(options))
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
