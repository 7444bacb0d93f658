"""Benchmarks that print a table: ``python tools/benchmark.py SUITE [options]`` (``--help`` lists suites)."""

from perception_mtl.apis.benchmark import main

if __name__ == "__main__":
    main()
