"""Reports the samples a dataset skipped (``skip_bad_samples=True``) after each epoch and at the end.

A dataset told to skip bad samples warns once per sample and draws another, so a long run can
bury those warnings, and with DataLoader workers the count lives in the worker processes. This
hook gives every dataset that supports it (``bad_sample_log`` attribute, e.g.
``NuScenesMTLDataset``) a log file in the work dir, ``bad_samples_train.log``, to which each
skipped sample appends one line (from whichever process loaded it), and logs the total with the
first lines after every training epoch and when training ends. Nothing is logged when no sample
was skipped.
"""

from __future__ import annotations

import logging
import os
import os.path as osp

from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log

from perception_mtl.registry import HOOKS


def _leaf_datasets(dataset) -> list:
    """The datasets inside wrappers (``.dataset``, ``.datasets``), outermost first."""
    found, stack = [], [dataset]
    while stack:
        d = stack.pop()
        found.append(d)
        if hasattr(d, "datasets"):
            stack.extend(d.datasets)
        elif hasattr(d, "dataset"):
            stack.append(d.dataset)
    return found


@HOOKS.register_module()
class BadSampleReportHook(Hook):
    """Collects skipped samples into the work dir and reports them (see the module docstring).

    Args:
        show: how many of the skipped samples' messages to print in a report.
    """

    priority = "LOW"

    def __init__(self, show: int = 5) -> None:
        self.show = show
        self.log_path: str | None = None

    def before_train(self, runner) -> None:
        # Only training skips bad samples (evaluation raises: skipping would change the metric).
        dataset = runner.train_loop.dataloader.dataset  # built by now
        for d in _leaf_datasets(dataset):
            if hasattr(d, "bad_sample_log"):
                d.bad_sample_log = self.log_path = osp.join(runner.work_dir, "bad_samples_train.log")
        # A resumed run keeps listing into the same file; a new run in the same work dir starts it anew.
        if self.log_path and not getattr(runner, "_resume", False) and is_main_process() and osp.isfile(self.log_path):
            os.remove(self.log_path)

    def after_train_epoch(self, runner) -> None:
        self._report(f"after epoch {runner.epoch}")

    def after_train(self, runner) -> None:
        self._report("training finished")

    def _report(self, when: str) -> None:
        if not is_main_process() or self.log_path is None or not osp.isfile(self.log_path):
            return
        with open(self.log_path) as f:
            lines = [line.rstrip("\n") for line in f if line.strip()]
        if not lines:
            return
        shown = "\n  ".join(lines[: self.show])
        more = f"\n  ... ({len(lines) - self.show} more)" if len(lines) > self.show else ""
        print_log(
            f"{when}: {len(lines)} bad training sample(s) skipped so far (all listed in {self.log_path}):\n  "
            f"{shown}{more}",
            logger="current",
            level=logging.WARNING,
        )
