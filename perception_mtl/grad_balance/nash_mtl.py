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
    ``a_t * (g_t . d) = 1`` for the update ``d = sum_t a_t g_t``.

    This is the stationarity condition of the strictly convex ``1/2 a^T M a - sum_t log a_t``,
    which is minimised here with damped Newton steps (exact to 1e-12), instead of the authors'
    cvxpy sequence of convex programs. As in the authors' code the Gram matrix is first divided
    by its Frobenius norm, which makes ``||d||`` scale with the gradients. Tasks with a zero
    gradient get weight 0 (no bargaining point exists for them). Linearly dependent, opposing
    gradients have no solution either; ``ridge`` keeps the problem bounded there.

    Args:
        normalize: divide the Gram matrix by its Frobenius norm (the authors' code).
        ridge: added to the diagonal, relative to its mean.
        max_iter: Newton iterations.
        mode: 'rep' or 'param' (the paper).
    """

    def __init__(self, normalize: bool = True, ridge: float = 1e-8, max_iter: int = 100, mode: str | None = None):
        super().__init__(mode)
        if ridge < 0:
            raise ValueError(f"NashMTL: balancer.ridge must be >= 0, got {ridge}")
        self.normalize = bool(normalize)
        self.ridge = float(ridge)
        self.max_iter = int(max_iter)

    def forward(self, gram: Tensor | None, losses: Tensor) -> Combination:
        """Args: gram (T, T); losses unused. Returns ``a`` (T,)."""
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
        return f"mode={self.mode!r}, normalize={self.normalize}"
