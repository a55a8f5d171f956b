"""Micro-benchmarks of single components, run by hand: `python -m bench.micro.<name> [options]`
from the repository root (or by path, `python bench/micro/<name>.py`). Each module's docstring
gives its options and what it measures; docs/performance.md keeps the figures. Not tests: pytest
collects only tests/, where tests/bench/test_micro.py checks that every module still imports.
"""
