"""Base class of every task-weighting / gradient-combination rule in ``perception_mtl.grad_balance``."""

from __future__ import annotations

from typing import ClassVar, NamedTuple

import torch
from torch import Tensor, nn

MODES = ("rep", "param")


class Combination(NamedTuple):
    """What a rule returns for one step.

    Attributes:
        weights: (T,) float64 combination weights w; the shared layers receive
            ``sum_t w_t * grad(L_t)``.
        objective: a scalar whose gradient trains the rule's own parameters (uncertainty
            log-variances, GradNorm's weights), or None. Built from detached statistics, so it
            reaches no model parameter.
    """

    weights: Tensor
    objective: Tensor | None = None


class TaskWeighting(nn.Module):
    """One rule that turns per-task statistics into combination weights.

    Every rule in the family is a weighting: PCGrad, CAGrad, MGDA, IMTL-G and Nash-MTL all
    return a combined gradient that is a linear combination ``G^T w`` of the task gradients
    ``G`` (T, D), and all of them need only the Gram matrix ``G G^T`` (T, T). So a rule maps
    ``(gram, losses) -> w`` and never touches a gradient vector, and the optim wrapper applies
    ``w`` in ONE backward pass through the shared layers.

    Class attributes:
        uses_gradients: the rule needs the Gram matrix of per-task gradients (otherwise it
            weights losses only and costs no extra backward pass).
        param_mode: whether the rule is defined on the shared parameters' gradients, so
            ``mode='param'`` is allowed (one backward per task over all shared parameters).
        weights_heads: True: each task head receives ``w_t * grad(L_t)`` (loss-weighting
            methods). False: heads receive their own ``grad(L_t)`` and only the shared layers
            are combined (gradient-manipulation methods, as in MGDA and LibMTL).

    Args:
        mode: 'rep' (gradients with respect to the shared feature, the output of the last shared
            layer: T head backward passes) or 'param' (gradients with respect to all shared
            parameters). Must be None for rules that use losses only.
    """

    uses_gradients: ClassVar[bool] = True
    param_mode: ClassVar[bool] = True
    weights_heads: ClassVar[bool] = False

    def __init__(self, mode: str | None = None) -> None:
        super().__init__()
        name = type(self).__name__
        if not self.uses_gradients:
            if mode is not None:
                raise ValueError(
                    f"{name} weights task losses only and has no gradient mode; remove balancer.mode (got {mode!r})"
                )
        else:
            mode = "rep" if mode is None else mode
            if mode not in MODES:
                raise ValueError(f"{name}: balancer.mode must be one of {MODES}, got {mode!r}")
            if mode == "param" and not self.param_mode:
                raise ValueError(f"{name} is defined at the shared representation only; set balancer.mode='rep'")
        self.mode = mode

    @property
    def uses_losses(self) -> bool:
        """Whether the rule reads the task-loss values (they are averaged over ranks under DDP)."""
        return True

    @property
    def modality_balancer(self):
        """The intra-gradient (modality) balancer of this rule, or None (only FULLER has one)."""
        return None

    def forward(self, gram: Tensor | None, losses: Tensor) -> Combination:
        """Computes the combination weights for one step.

        Args:
            gram: (T, T) float64 Gram matrix of per-task gradients on CPU, or None when
                ``uses_gradients`` is False.
            losses: (T,) float64 detached task losses on CPU.

        Returns:
            The weights (T,) float64 and the rule's own objective (or None).
        """
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"


def check_gram(gram: Tensor | None, name: str) -> Tensor:
    """Validates a (T, T) Gram matrix and returns it as float64."""
    if gram is None:
        raise ValueError(f"{name} needs the Gram matrix of per-task gradients, got None")
    if gram.dim() != 2 or gram.shape[0] != gram.shape[1]:
        raise ValueError(f"{name}: gram must be (T, T), got {tuple(gram.shape)}")
    return gram.double()


def gram_norms(gram: Tensor) -> Tensor:
    """Per-task gradient norms (T,) from the Gram diagonal (negative round-off clamped)."""
    return gram.diagonal().clamp_min(0).sqrt()


def zero_tasks(gram: Tensor, rel_eps: float = 1e-12) -> Tensor:
    """(T,) bool: tasks whose gradient is zero (relative to the largest squared norm)."""
    diag = gram.diagonal().clamp_min(0)
    scale = float(diag.max()) if diag.numel() else 0.0
    return diag <= rel_eps * scale if scale > 0 else torch.ones_like(diag, dtype=torch.bool)
