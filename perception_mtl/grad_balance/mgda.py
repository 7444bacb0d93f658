"""MGDA (Sener & Koltun, NeurIPS 2018): the min-norm point of the convex hull of task gradients."""

from __future__ import annotations

import torch
from torch import Tensor

from perception_mtl.registry import TASK_UTILS

from .min_norm_solver import min_norm_weights
from .task_weighting import Combination, TaskWeighting, check_gram, gram_norms

NORMALIZATIONS = ("none", "l2", "loss", "loss+")


@TASK_UTILS.register_module()
class MGDA(TaskWeighting):
    """Weights of the min-norm point ``argmin_{w in simplex} ||sum_t w_t g_t||``.

    With ``mode='rep'`` the gradients are taken with respect to the shared feature: that is
    MGDA-UB, the paper's upper bound (T head backward passes). With ``mode='param'`` they are
    taken over all shared parameters (vanilla MGDA). The min-norm problem is solved exactly
    (``min_norm_solver``).

    Args:
        normalize: gradient normalisation before the min-norm problem, as in the paper: 'none',
            'l2' (``g / ||g||``), 'loss' (``g / L``) or 'loss+' (``g / (L ||g||)``). The returned
            weights apply to the raw gradients (``w_t = w_hat_t / c_t``).
        mode: 'rep' (MGDA-UB) or 'param'.
    """

    def __init__(self, normalize: str = "none", mode: str | None = None) -> None:
        super().__init__(mode)
        if normalize not in NORMALIZATIONS:
            raise ValueError(f"MGDA: balancer.normalize must be one of {NORMALIZATIONS}, got {normalize!r}")
        self.normalize = normalize

    def forward(self, gram: Tensor | None, losses: Tensor) -> Combination:
        """Args: gram (T, T); losses (T,). Returns the min-norm weights (T,) for the raw gradients."""
        gram = check_gram(gram, "MGDA")
        scale = torch.ones(gram.shape[0], dtype=torch.float64)
        if self.normalize in ("l2", "loss+"):
            scale = scale * gram_norms(gram)
        if self.normalize in ("loss", "loss+"):
            scale = scale * losses.double().abs()
        # A zero scale (zero gradient or loss) keeps that gradient as is: it is the origin either way.
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        normalized = gram / torch.outer(scale, scale)
        w_hat = torch.from_numpy(min_norm_weights(normalized.numpy()))
        return Combination(w_hat / scale)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, normalize={self.normalize!r}"
