"""Nash-MTL (Navon et al., ICML 2022): the Nash bargaining solution among task gradients."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from perception_mtl.registry import TASK_UTILS

from .task_weighting import Combination, TaskWeighting, check_gram, zero_tasks


@TASK_UTILS.register_module()
class NashMTL(TaskWeighting):
    """Weights ``a > 0`` solving ``(G G^T) a = 1 / a``: each task gets
    ``a_t * (g_t . d) = 1`` for the update ``d = sum_t a_t g_t``, then scaled so ``||d|| <= max_norm``.

    This is the stationarity condition of the strictly convex ``1/2 a^T M a - sum_t log a_t``,
    which is minimised here with damped Newton steps (exact to 1e-12), instead of the authors'
    cvxpy sequence of convex programs. As in the authors' code the Gram matrix is first divided
    by its Frobenius norm, which makes ``||d||`` scale with the gradients. Tasks with a zero
    gradient get weight 0 (no bargaining point exists for them). Linearly dependent, opposing
    gradients have no solution either; ``ridge`` keeps the problem bounded there.

    Max norm. The authors' ``NashMTL.backward`` clips the shared parameters' gradient of
    ``sum_t a_t L_t`` to norm ``max_norm`` (default 1) with ``clip_grad_norm_``, which rescales
    only when the norm exceeds it; TorchJD's aggregator rescales its weights the same way. Here
    the optim wrapper forms ``d = G^T a`` itself from the returned weights, so the clipping lives
    in the weights: ``a <- a * min(1, max_norm / ||G^T a||)``, with ``||G^T a||^2 = a^T (G G^T) a``
    read from the raw (un-normalised, ridge-free) Gram matrix. On G = [[-4, 1, 1], [6, 1, 1]] this
    gives d = (0.0542, 0.7061, 0.7061) (||d|| = 1), as the references. The direction and the
    bargaining condition up to one common factor are unchanged. (torch's ``clip_grad_norm_`` also
    adds 1e-6 to the norm it divides by; that 1e-6 relative difference is not reproduced.)

    What the norm is of follows ``mode``: in 'param' mode (the paper) ``G`` holds each task's
    gradient over all shared parameters, so ``||d||`` is the shared parameters' update norm,
    as in the authors' clipping. In 'rep' mode ``G`` holds the gradients with respect to the
    shared feature (the last shared layer's output, the whole batch's tensor), so ``max_norm``
    bounds the combined feature gradient, not the parameter gradient it back-propagates into.
    Task heads always receive their own unweighted gradient (``weights_heads`` is False), so the
    scaling reaches the shared layers only, as the authors clip the shared parameters only.

    Args:
        normalize: divide the Gram matrix by its Frobenius norm (the authors' code).
        ridge: added to the diagonal, relative to its mean.
        max_iter: Newton iterations.
        max_norm: largest norm of the combined update ``G^T a``; 0 disables the scaling.
        mode: 'rep' or 'param' (the paper).
    """

    def __init__(
        self,
        normalize: bool = True,
        ridge: float = 1e-8,
        max_iter: int = 100,
        max_norm: float = 1.0,
        mode: str | None = None,
    ):
        super().__init__(mode)
        if ridge < 0:
            raise ValueError(f"NashMTL: balancer.ridge must be >= 0, got {ridge}")
        if max_norm < 0:
            raise ValueError(f"NashMTL: balancer.max_norm must be >= 0 (0 disables the scaling), got {max_norm}")
        self.normalize = bool(normalize)
        self.ridge = float(ridge)
        self.max_iter = int(max_iter)
        self.max_norm = float(max_norm)

    def forward(self, gram: Tensor | None, losses: Tensor) -> Combination:
        """Args: gram (T, T); losses unused. Returns ``a`` (T,), scaled so ``||G^T a|| <= max_norm``."""
        gram = check_gram(gram, "NashMTL")
        t = gram.shape[0]
        active = torch.nonzero(~zero_tasks(gram)).flatten()
        weights = torch.zeros(t, dtype=torch.float64)
        if active.numel() == 0:
            return Combination(torch.full((t,), 1.0 / t, dtype=torch.float64))
        m = gram[active][:, active].numpy()
        if self.normalize:
            m = m / np.linalg.norm(m)
        m = m + self.ridge * float(np.mean(np.diag(m))) * np.eye(len(m))
        weights[active] = torch.from_numpy(self._solve(m))
        if self.max_norm > 0:
            norm = max(float(weights @ gram @ weights), 0.0) ** 0.5  # ||G^T a|| from the raw Gram matrix
            if norm > self.max_norm:
                weights = weights * (self.max_norm / norm)
        return Combination(weights)

    def _solve(self, m: np.ndarray) -> np.ndarray:
        """Damped Newton on ``f(a) = 1/2 a^T M a - sum log a`` from the orthogonal-case answer."""

        def f(a):
            return 0.5 * a @ m @ a - np.log(a).sum()

        a = 1.0 / np.sqrt(np.diag(m))
        for _ in range(self.max_iter):
            grad = m @ a - 1.0 / a
            if np.max(np.abs(grad * a)) < 1e-12:  # (M a)_t a_t = 1 to 1e-12
                break
            step = np.linalg.solve(m + np.diag(1.0 / a**2), grad)
            size = 1.0
            while np.any(a - size * step <= 0):
                size *= 0.5
            value = f(a)
            while f(a - size * step) > value - 1e-4 * size * (grad @ step) and size > 1e-12:
                size *= 0.5
            a = a - size * step
        return a

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, normalize={self.normalize}, max_norm={self.max_norm}"
