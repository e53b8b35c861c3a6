"""`python -m bench --help` and a mistyped option print the help; neither starts a run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def bench(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bench", *argv], cwd=ROOT, text=True,
                          capture_output=True, timeout=120)


def test_help_lists_every_benchmark_and_its_options() -> None:
    done = bench("--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: python -m bench")
    for line in ("  digest: ", "  delivery: ", "  load: ", "  flood: ", "  dashboard: ",
                 "  taps: ", "--recipients=N", "--leaders=2000"):
        assert line in done.stdout


def test_unknown_options_and_names_print_help_and_exit_2() -> None:
    for argv, complaint in ((["--recipient=10"], "unknown option(s) for digest, delivery, "
                                                  "load, flood, dashboard, taps, processes: "
                                                  "--recipient=10"),
                            (["digest", "--leaders=5"], "unknown option(s) for digest: "
                                                        "--leaders=5"),
                            (["-x"], "unknown option(s)"),
                            (["loads"], "unknown benchmark(s): loads")):
        done = bench(*argv)
        assert done.returncode == 2, argv
        assert complaint in done.stderr and "usage: python -m bench" in done.stderr
        assert done.stdout == ""  # no figures: nothing ran
