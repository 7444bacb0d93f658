"""GradNorm (Chen et al., ICML 2018): learn loss weights that equalise gradient norms."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from perception_mtl.registry import TASK_UTILS

from .task_weighting import Combination, TaskWeighting, check_gram, gram_norms


@TASK_UTILS.register_module()
class GradNorm(TaskWeighting):
    """Weights ``w = T * softmax(theta)`` trained so that ``w_t * ||g_t||`` tracks
    ``mean_j(w_j ||g_j||) * r_t ** alpha``, where ``r_t`` is task t's inverse training rate
    ``(L_t / L_t(0)) / mean_j(L_j / L_j(0))``.

    The objective ``sum_t |w_t ||g_t|| - target_t|`` (target detached, as in the paper) trains
    ``theta`` through the main optimizer; the network receives ``w`` (detached). The softmax keeps
    ``sum(w) = T`` without the paper's explicit renormalisation (as LibMTL does). ``||g_t||`` is
    the norm of task t's gradient with respect to the shared feature ('rep', the paper's "last
    shared layer") or to all shared parameters ('param').

    Args:
        num_tasks: T (``GradBalanceOptimWrapper`` fills it from ``optim_wrapper.tasks`` when set).
        alpha: asymmetry strength (1.5 in LibMTL's default).
        mode: 'rep' or 'param'.
    """

    weights_heads: ClassVar[bool] = True

    def __init__(self, num_tasks: int = 2, alpha: float = 1.5, mode: str | None = None) -> None:
        super().__init__(mode)
        if num_tasks < 1:
            raise ValueError(f"GradNorm: balancer.num_tasks must be >= 1, got {num_tasks}")
        if alpha < 0:
            raise ValueError(f"GradNorm: balancer.alpha must be >= 0, got {alpha}")
        self.alpha = float(alpha)
        self.logits = nn.Parameter(torch.zeros(num_tasks))
        # L_t(0): the losses of the first step, kept with the checkpoint.
        self.register_buffer("initial_losses", torch.zeros(num_tasks, dtype=torch.float64))
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool))

    def forward(self, gram: Tensor | None, losses: Tensor) -> Combination:
        """Args: gram (T, T); losses (T,) detached. Returns ``w`` (T,) and the GradNorm objective."""
        gram = check_gram(gram, "GradNorm")
        t = self.logits.numel()
        if gram.shape[0] != t:
            raise ValueError(f"GradNorm: {gram.shape[0]} tasks but balancer.num_tasks={t}")
        if not bool(self.initialized):
            self.initial_losses.copy_(losses.to(self.initial_losses))
            self.initialized.fill_(True)
        weights = t * torch.softmax(self.logits, dim=0)
        weighted_norms = weights * gram_norms(gram).to(weights)
        rate = (losses.to(self.initial_losses) / self.initial_losses.clamp_min(1e-12)).to(weights)
        rate = rate / rate.mean().clamp_min(1e-12)
        target = (weighted_norms.mean() * rate**self.alpha).detach()
        objective = (weighted_norms - target).abs().sum()
        return Combination(weights.detach().double().cpu(), objective)
