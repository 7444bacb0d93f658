"""PCGrad (Yu et al., NeurIPS 2020): project away conflicting gradient components."""

from __future__ import annotations

import torch
from torch import Tensor

from perception_mtl.registry import TASK_UTILS

from .task_weighting import Combination, TaskWeighting, check_gram


@TASK_UTILS.register_module()
class PCGrad(TaskWeighting):
    """``g = sum_i g_i^PC``, where each ``g_i^PC`` starts at ``g_i`` and, for every task j in a
    random order, loses its component along ``g_j`` when ``g_i^PC . g_j < 0``.

    Every ``g_i^PC`` stays a linear combination ``sum_k C_ik g_k``, and the dot products it needs
    are ``C_i . gram[:, j]``, so the rule runs on the Gram matrix and returns ``w = sum_i C_i``.

    Args:
        shuffle: visit the other tasks in a random order per task (the paper); False visits them
            in index order (deterministic).
        seed: seed of the order generator; the same on every rank, so DDP ranks agree. Its state
            is saved with the optimizer state.
        mode: 'rep' (projection at the shared feature, as in FULLER) or 'param' (the paper).
    """

    def __init__(self, shuffle: bool = True, seed: int = 0, mode: str | None = None) -> None:
        super().__init__(mode)
        self.shuffle = bool(shuffle)
        self.generator = torch.Generator().manual_seed(int(seed))

    def forward(self, gram: Tensor | None, losses: Tensor) -> Combination:
        """Args: gram (T, T); losses unused. Returns ``w`` (T,) with ``sum_t w_t g_t = sum_i g_i^PC``."""
        gram = check_gram(gram, "PCGrad")
        t = gram.shape[0]
        coeffs = torch.eye(t, dtype=torch.float64)
        for i in range(t):
            order = torch.randperm(t, generator=self.generator) if self.shuffle else torch.arange(t)
            for j in order.tolist():
                dot = coeffs[i] @ gram[:, j]
                if dot < 0 and gram[j, j] > 0:
                    coeffs[i, j] -= dot / gram[j, j]
        return Combination(coeffs.sum(0))

    def get_extra_state(self) -> Tensor:
        return self.generator.get_state()

    def set_extra_state(self, state: Tensor) -> None:
        self.generator.set_state(state)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, shuffle={self.shuffle}"
