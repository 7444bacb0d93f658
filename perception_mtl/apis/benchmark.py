"""Entry point behind ``tools/benchmark.py SUITE [options]``; suites live in perception_mtl.benchmarks."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from perception_mtl.benchmarks import available_suites, format_table, load_suite


def main(argv: Sequence[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description="Run a benchmark suite and print its table.")
    sub = parser.add_subparsers(dest="suite", required=True, metavar="SUITE")
    for name in available_suites():
        suite = load_suite(name)
        suite.add_arguments(sub.add_parser(name, help=suite.DESCRIPTION))
    args = parser.parse_args(argv)
    rows = load_suite(args.suite).run(args)
    print(format_table(rows))
    return rows
