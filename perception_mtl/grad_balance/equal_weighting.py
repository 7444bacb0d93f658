"""Equal weighting: the summed-loss baseline, expressed as a balancing rule."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from perception_mtl.registry import TASK_UTILS

from .task_weighting import Combination, TaskWeighting


@TASK_UTILS.register_module()
class EqualWeighting(TaskWeighting):
    """``w_t = 1`` for every task: the gradient of the plain sum of task losses.

    It uses neither gradients nor losses, so through ``GradBalanceOptimWrapper`` it costs exactly
    one backward pass (with ``monitor=True`` the wrapper still measures per-task gradient
    statistics for logging, without changing the update).
    """

    uses_gradients: ClassVar[bool] = False
    weights_heads: ClassVar[bool] = True

    @property
    def uses_losses(self) -> bool:
        return False

    def forward(self, gram: Tensor | None, losses: Tensor) -> Combination:
        """Args: gram unused; losses (T,). Returns weights (T,) of ones."""
        return Combination(torch.ones(losses.numel(), dtype=torch.float64))
