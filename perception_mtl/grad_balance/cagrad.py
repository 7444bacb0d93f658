"""CAGrad (Liu et al., NeurIPS 2021): conflict-averse gradient descent."""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import minimize
from torch import Tensor

from perception_mtl.registry import TASK_UTILS

from .task_weighting import Combination, TaskWeighting, check_gram

RESCALES = (0, 1, 2)


@TASK_UTILS.register_module()
class CAGrad(TaskWeighting):
    """``d = g0 + (c ||g0|| / ||g_w||) g_w``, with ``g0`` the mean gradient and ``w`` minimising
    ``g_w . g0 + c ||g0|| ||g_w||`` over the simplex (``g_w = sum_t w_t g_t``).

    ``d`` maximises the worst task improvement ``min_t g_t . d`` inside the ball
    ``||d - g0|| <= c ||g0||``. The inner problem is solved with SLSQP on the Gram matrix, as the
    authors' code does. As a weighting, ``d = sum_t (1/T + lambda w_t) g_t``.

    Args:
        c: radius of the ball relative to ``||g0||`` (0.5 in LibMTL's default); c=0 gives the mean.
        rescale: 0 returns d; 1 divides by ``1 + c**2`` (the paper's default); 2 by ``1 + c``.
        mode: 'rep' (at the shared feature, as in FULLER) or 'param' (the paper).
    """

    def __init__(self, c: float = 0.5, rescale: int = 1, mode: str | None = None) -> None:
        super().__init__(mode)
        if c < 0:
            raise ValueError(f"CAGrad: balancer.c must be >= 0, got {c}")
        if rescale not in RESCALES:
            raise ValueError(f"CAGrad: balancer.rescale must be one of {RESCALES}, got {rescale!r}")
        self.c = float(c)
        self.rescale = rescale

    def forward(self, gram: Tensor | None, losses: Tensor) -> Combination:
        """Args: gram (T, T); losses unused. Returns ``w`` (T,) with ``sum_t w_t g_t = d``."""
        gram = check_gram(gram, "CAGrad")
        t = gram.shape[0]
        weights = torch.full((t,), 1.0 / t, dtype=torch.float64)
        g0_sq = float(gram.sum()) / t**2
        if self.c > 0 and g0_sq > 0:
            w = torch.from_numpy(self._inner_weights(gram.numpy(), g0_sq))
            gw_norm = float(w @ gram @ w) ** 0.5
            if gw_norm > 0:
                weights = weights + (self.c * g0_sq**0.5 / gw_norm) * w
        divisor = {0: 1.0, 1: 1.0 + self.c**2, 2: 1.0 + self.c}[self.rescale]
        return Combination(weights / divisor)

    def _inner_weights(self, gram: np.ndarray, g0_sq: float) -> np.ndarray:
        """argmin over the simplex of ``w^T M 1/T + c ||g0|| sqrt(w^T M w)`` (M scaled to O(1))."""
        t = gram.shape[0]
        scale = float(np.max(np.diag(gram)))
        m = gram / scale
        b = m.mean(axis=1)
        k = self.c * (g0_sq / scale) ** 0.5
        eps = 1e-12  # keeps sqrt differentiable when 0 is in the hull

        def objective(w):
            return float(w @ b + k * np.sqrt(w @ m @ w + eps))

        def gradient(w):
            return b + k * (m @ w) / np.sqrt(w @ m @ w + eps)

        result = minimize(
            objective,
            np.full(t, 1.0 / t),
            jac=gradient,
            bounds=[(0.0, 1.0)] * t,
            constraints=({"type": "eq", "fun": lambda w: w.sum() - 1.0, "jac": lambda w: np.ones_like(w)},),
            method="SLSQP",
            options={"ftol": 1e-14, "maxiter": 200},
        )
        w = np.clip(result.x, 0.0, None)
        return w / w.sum()

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, c={self.c}, rescale={self.rescale}"
