"""Benchmarks: `python -m bench [name ...]` (`make bench`); figures go to docs/performance.md."""
