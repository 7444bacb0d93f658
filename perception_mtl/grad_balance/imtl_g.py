"""IMTL-G (Liu et al., ICLR 2021): the combined gradient projects equally onto every task."""

from __future__ import annotations

import torch
from torch import Tensor

from perception_mtl.registry import TASK_UTILS

from .task_weighting import Combination, TaskWeighting, check_gram, gram_norms, zero_tasks


@TASK_UTILS.register_module()
class IMTLG(TaskWeighting):
    """Closed form: ``g = sum_t a_t g_t`` with ``sum(a) = 1`` and ``g . u_1 = g . u_t`` for every t,
    where ``u_t = g_t / ||g_t||``.

    With ``D`` the rows ``g_1 - g_t`` and ``U`` the rows ``u_1 - u_t`` (t = 2..T),
    ``a_{2:T} = g_1 U^T (D U^T)^-1`` and ``a_1 = 1 - sum(a_{2:T})``. Every entry is a Gram entry
    divided by a norm, so the rule runs on the Gram matrix. Tasks with a zero gradient have no
    direction: they get weight 0 and the others are solved among themselves. A singular
    ``D U^T`` (e.g. identical gradients) takes the least-squares solution.

    Args:
        mode: 'rep' (at the shared feature, as in FULLER) or 'param'.
    """

    def forward(self, gram: Tensor | None, losses: Tensor) -> Combination:
        """Args: gram (T, T); losses unused. Returns ``a`` (T,)."""
        gram = check_gram(gram, "IMTLG")
        t = gram.shape[0]
        active = torch.nonzero(~zero_tasks(gram)).flatten()
        weights = torch.zeros(t, dtype=torch.float64)
        if active.numel() == 0:
            return Combination(torch.full((t,), 1.0 / t, dtype=torch.float64))
        if active.numel() == 1:
            weights[active] = 1.0
            return Combination(weights)
        g = gram[active][:, active]
        # proj[a, b] = g_a . u_b
        proj = g / gram_norms(g)[None, :]
        first = proj[0, 0] - proj[0, 1:]  # g_1 . (u_1 - u_t)
        du = proj[0, 0] - proj[0, 1:][None, :] - proj[1:, 0][:, None] + proj[1:, 1:]  # (g_1 - g_i) . (u_1 - u_j)
        # a D U^T = g_1 U^T  <=>  (D U^T)^T a^T = (g_1 U^T)^T
        rest = torch.linalg.lstsq(du.T, first[:, None], driver="gelsd").solution.flatten()
        weights[active[1:]] = rest
        weights[active[0]] = 1.0 - rest.sum()
        return Combination(weights)
