"""Homoscedastic uncertainty weighting (Kendall, Gal & Cipolla, CVPR 2018)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import Tensor, nn

from perception_mtl.registry import TASK_UTILS

from .task_weighting import Combination, TaskWeighting


@TASK_UTILS.register_module()
class UncertaintyWeighting(TaskWeighting):
    """Learned log-variances ``s_t``: minimise ``sum_t exp(-s_t) L_t + s_t``.

    The network receives ``w_t = exp(-s_t)`` (detached); the log-variances are trained by the
    objective on detached losses, whose optimum is ``s_t = log L_t``. ``GradBalanceOptimWrapper``
    adds ``log_vars`` to the optimizer as an extra parameter group (and saves it with the
    optimizer state), so the main optimizer updates them.

    Args:
        num_tasks: T (``GradBalanceOptimWrapper`` fills it from ``optim_wrapper.tasks`` when that is set).
        init_log_var: initial ``s_t`` (0 gives equal weights at the start).
        mode: must be None (the rule uses losses only).
    """

    uses_gradients: ClassVar[bool] = False
    weights_heads: ClassVar[bool] = True

    def __init__(
        self, num_tasks: int = 2, init_log_var: float | Sequence[float] = 0.0, mode: str | None = None
    ) -> None:
        super().__init__(mode)
        if num_tasks < 1:
            raise ValueError(f"UncertaintyWeighting: balancer.num_tasks must be >= 1, got {num_tasks}")
        init = torch.as_tensor(init_log_var, dtype=torch.float32).expand(num_tasks).clone()
        self.log_vars = nn.Parameter(init)

    def forward(self, gram: Tensor | None, losses: Tensor) -> Combination:
        """Args: gram unused; losses (T,) detached. Returns ``exp(-s)`` (T,) and the objective."""
        if losses.numel() != self.log_vars.numel():
            raise ValueError(
                f"UncertaintyWeighting: {losses.numel()} tasks but balancer.num_tasks={self.log_vars.numel()}"
            )
        s = self.log_vars
        objective = (torch.exp(-s) * losses.to(s) + s).sum()
        return Combination(torch.exp(-s).detach().double().cpu(), objective)
