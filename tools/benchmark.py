"""Benchmarks that print a table: ``python tools/benchmark.py SUITE [options]`` (``--help`` lists suites).

The suites live in the repository's top-level ``benchmarks/`` folder, outside the installed package,
so the repository root goes on the import path here."""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from benchmarks import main  # noqa: E402

if __name__ == "__main__":
    main()
