"""Logs per-task expert statistics of the MoE layers during training."""

from __future__ import annotations

import json
import os.path as osp

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from perception_mtl.registry import HOOKS

from .moe_utils import expert_load_table, read_moe_stats, reset_moe_stats, summarize_moe_stats

_SUMMED = ("load", "zero", "hidden", "entropy", "tokens")


def _merge(total: list[dict] | None, new: list[dict]) -> list[dict]:
    """Adds the counters of ``new`` into ``total`` (copies ``new`` when ``total`` is empty)."""
    if total is None:
        return [{k: (v.clone() if k in _SUMMED else v) for k, v in layer.items()} for layer in new]
    for acc, layer in zip(total, new):
        for key in _SUMMED:
            acc[key] += layer[key]
    return total


@HOOKS.register_module()
class MoEStatsHook(Hook):
    """Per-task MoE statistics in the training log.

    Every ``interval`` iterations it puts, per task (averaged over MoE layers), the normalised gate
    entropy, the zero-activation rate, the load imbalance (largest expert share x experts; 1 =
    balanced) and the number of experts that got no token into the message hub as
    ``train/moe.<task>.<stat>``, so the logger prints them. At each epoch end it logs the expert
    load table per layer and task (share of routed slots per expert, in %) and appends it to
    ``<log_dir>/moe_expert_stats.jsonl``.

    The MoE layers live in ``perception_mtl.models.moe``; configs name it in ``custom_imports``.

    Args:
        interval: iterations between scalar updates.
        log_table: log the per-expert load table at epoch end.
    """

    priority = "NORMAL"  # before the LoggerHook (BELOW_NORMAL), so its scalars are fresh

    def __init__(self, interval: int = 10, log_table: bool = True) -> None:
        if interval < 1:
            raise ValueError(f"MoEStatsHook: interval must be >= 1, got {interval}")
        self.interval = interval
        self.log_table = log_table
        self._window: list[dict] | None = None
        self._epoch: list[dict] | None = None

    @staticmethod
    def _model(runner):
        return runner.model.module if is_model_wrapper(runner.model) else runner.model

    def before_train_epoch(self, runner) -> None:
        reset_moe_stats(self._model(runner))  # drop anything recorded outside training
        self._window = self._epoch = None

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        stats = read_moe_stats(self._model(runner), reset=True)
        if not stats:
            return
        self._window = _merge(self._window, stats)
        self._epoch = _merge(self._epoch, stats)
        if self.every_n_train_iters(runner, self.interval) or self.is_last_train_iter(runner):
            for task, summary in summarize_moe_stats(self._window).items():
                for key, value in summary.items():
                    runner.message_hub.update_scalar(f"train/moe.{task}.{key}", value)
            self._window = None

    def after_train_epoch(self, runner) -> None:
        if not self._epoch:
            return
        table = expert_load_table(self._epoch)
        summary = summarize_moe_stats(self._epoch)
        if self.log_table:
            lines = [f"MoE expert load per task, epoch {runner.epoch + 1} (% of routed slots per expert):"]
            for row in table:
                shares = " ".join(f"{v:5.1f}" for k, v in row.items() if k.startswith("e"))
                lines.append(f"  {row['layer']} [{row['task']}] {shares}")
            for task, s in summary.items():
                lines.append(
                    f"  {task}: entropy {s['entropy']:.3f}, zero-activation {s['zero_act']:.3f}, "
                    f"load max x E {s['load_max']:.2f}, dead experts {s['dead']:.2f}"
                )
            runner.logger.info("\n".join(lines))
        with open(osp.join(runner.log_dir, "moe_expert_stats.jsonl"), "a") as f:
            f.write(json.dumps(dict(epoch=runner.epoch + 1, load_table=table, summary=summary)) + "\n")
        self._epoch = None
