"""Benchmark suites behind ``tools/benchmark.py SUITE [options]`` (outside the installed package).

A suite is a module in this package that defines ``DESCRIPTION: str``,
``add_arguments(parser)`` and ``run(args) -> list[dict]`` (one dict per table row). Figures are
ratios measured in one run (machines are shared and noisy); absolute times only on a GPU.
"""

import argparse
import importlib
import logging
import pkgutil
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import TypeVar

import torch
from mmengine.logging import MMLogger
from mmengine.utils import ProgressBar

T = TypeVar("T")


def available_suites() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def load_suite(name: str):
    if name not in available_suites():
        raise ValueError(f"unknown benchmark suite {name!r}; available: {available_suites()}")
    return importlib.import_module(f"{__name__}.{name}")


def train_step_timer(device: torch.device, clock: str = "auto"):
    """A function ``step(model, wrapper, batch) -> seconds`` that runs one ``model.train_step`` and times it:
    wall clock on a GPU (synchronised before and after, so queued kernels count), process CPU time otherwise
    (``clock='auto'``), or the ``'wall'`` / ``'process'`` clock asked for. Process time counts the work of this
    process only, which keeps ratios steady on a shared machine."""
    if clock == "auto":
        clock = "wall" if device.type == "cuda" else "process"
    timer = time.perf_counter if clock == "wall" else time.process_time

    def step(model, wrapper, batch) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = timer()
        model.train_step(batch, wrapper)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return timer() - start

    return step


def track(items: Iterable[T], label: str) -> Iterator[T]:
    """Yields ``items`` under mmengine's progress bar (count, rate, elapsed, ETA) on stderr, so the table on
    stdout stays clean; the bar moves after each item, outside whatever the item's body times."""
    items = list(items)
    print(label, file=sys.stderr, flush=True)
    bar = ProgressBar(len(items), file=sys.stderr)
    for item in items:
        yield item
        bar.update()
    sys.stderr.write("\n")


def format_table(rows: list[dict]) -> str:
    """Rows of dicts -> an aligned plain-text table (columns in first-seen order)."""
    if not rows:
        return "(no rows)"
    columns = list(dict.fromkeys(k for row in rows for k in row))

    def cell(value):
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    body = [[cell(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in body)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in body]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> list[dict]:
    """Parses ``SUITE [options]``, runs the suite and prints its table; returns the rows."""
    parser = argparse.ArgumentParser(description="Run a benchmark suite and print its table.")
    sub = parser.add_subparsers(dest="suite", required=True, metavar="SUITE")
    for name in available_suites():
        suite = load_suite(name)
        suite.add_arguments(sub.add_parser(name, help=suite.DESCRIPTION))
    args = parser.parse_args(argv)
    # MMEngine's INFO records (every parameter's init, the object database's counts) would bury the table.
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        rows = load_suite(args.suite).run(args)
    finally:
        logger.setLevel(level)
    print(format_table(rows))
    return rows
