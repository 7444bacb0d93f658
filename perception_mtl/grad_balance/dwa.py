"""Dynamic Weight Average (Liu, Johns & Davison, MTAN, CVPR 2019)."""

from __future__ import annotations

from typing import ClassVar

import torch
from mmengine.logging import MessageHub
from torch import Tensor

from perception_mtl.registry import TASK_UTILS

from .task_weighting import Combination, TaskWeighting


@TASK_UTILS.register_module()
class DWA(TaskWeighting):
    """``w = T * softmax(r / temperature)`` with ``r_t = Lbar_t(k-1) / Lbar_t(k-2)``.

    ``Lbar_t(k)`` is task t's mean loss over period k: an epoch of the runner (read from the
    message hub) by default, or ``period`` iterations. Weights are 1 until two periods are done.

    Args:
        num_tasks: T (``GradBalanceOptimWrapper`` fills it from ``optim_wrapper.tasks`` when set).
        temperature: softmax temperature (2 in the paper).
        period: iterations per period; None follows the runner's epoch.
        mode: must be None (the rule uses losses only).
    """

    uses_gradients: ClassVar[bool] = False
    weights_heads: ClassVar[bool] = True

    def __init__(
        self, num_tasks: int = 2, temperature: float = 2.0, period: int | None = None, mode: str | None = None
    ) -> None:
        super().__init__(mode)
        if temperature <= 0:
            raise ValueError(f"DWA: balancer.temperature must be > 0, got {temperature}")
        if period is not None and period < 1:
            raise ValueError(f"DWA: balancer.period must be >= 1 iterations or None (epochs), got {period}")
        self.temperature = float(temperature)
        self.period = period
        # Running sum/count of the current period, mean losses of the last two finished ones.
        self.register_buffer("loss_sum", torch.zeros(num_tasks, dtype=torch.float64))
        self.register_buffer("count", torch.zeros((), dtype=torch.int64))
        self.register_buffer("history", torch.zeros(2, num_tasks, dtype=torch.float64))
        self.register_buffer("finished", torch.zeros((), dtype=torch.int64))
        self.register_buffer("current_period", torch.full((), -1, dtype=torch.int64))
        self.register_buffer("iteration", torch.zeros((), dtype=torch.int64))

    def _period_index(self) -> int:
        if self.period is not None:
            return int(self.iteration) // self.period
        epoch = MessageHub.get_current_instance().get_info("epoch")
        if epoch is None:
            raise RuntimeError(
                "DWA: no 'epoch' in the message hub (iteration-based training?); set balancer.period "
                "to a number of iterations"
            )
        return int(epoch)

    def forward(self, gram: Tensor | None, losses: Tensor) -> Combination:
        """Args: gram unused; losses (T,) detached. Returns the DWA weights (T,)."""
        t = self.loss_sum.numel()
        if losses.numel() != t:
            raise ValueError(f"DWA: {losses.numel()} tasks but balancer.num_tasks={t}")
        index = self._period_index()
        if int(self.current_period) < 0:
            self.current_period.fill_(index)
        elif index != int(self.current_period):
            # A period ended: its mean loss becomes the newest history entry.
            self.history[0] = self.history[1]
            self.history[1] = self.loss_sum / self.count.clamp_min(1)
            self.finished += 1
            self.loss_sum.zero_()
            self.count.zero_()
            self.current_period.fill_(index)
        self.loss_sum += losses.to(self.loss_sum)
        self.count += 1
        self.iteration += 1
        if int(self.finished) < 2:
            return Combination(torch.ones(t, dtype=torch.float64))
        ratio = (self.history[1] / self.history[0].clamp_min(1e-12)).cpu()
        return Combination(t * torch.softmax(ratio / self.temperature, dim=0))
