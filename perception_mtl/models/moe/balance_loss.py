"""Load-balancing loss of sparse mixture-of-experts layers (Shazeer et al., 2017; used by M³ViT).

``cv²(importance) + cv²(load)``: importance is, per expert, the sum over tokens of the combine
weight the expert received; load is, per expert, the number of tokens routed to it (or, with noisy
gating in training, the smooth probability of being in the top-k, summed over tokens). The squared
coefficient of variation uses the unbiased variance, as Shazeer's and FastMoE's ``cv_squared`` do.
"""

from __future__ import annotations

from torch import Tensor

_EPS = 1e-10


def cv_squared(x: Tensor, mask: Tensor | None = None) -> Tensor:
    """Squared coefficient of variation ``var(x) / mean(x)²`` (unbiased variance).

    Args:
        x: (E,) per-expert values.
        mask: optional (E,) bool; only these entries count (experts a task may route to).

    Returns:
        A scalar tensor; 0 when fewer than two entries count (nothing to balance).
    """
    x = x.float()
    if mask is None:
        if x.numel() < 2:
            return x.new_zeros(())
        return x.var() / (x.mean() ** 2 + _EPS)
    m = mask.to(x.dtype)
    n = m.sum()
    if float(n) < 2:
        return x.new_zeros(())
    mean = (x * m).sum() / n
    var = (((x - mean) * m) ** 2).sum() / (n - 1)
    return var / (mean**2 + _EPS)


def load_balancing_loss(importance: Tensor, load: Tensor, mask: Tensor | None = None) -> Tensor:
    """``cv²(importance) + cv²(load)`` over the experts in ``mask``.

    Args:
        importance: (E,) sum over tokens of each expert's combine weight (differentiable).
        load: (E,) tokens per expert: smooth top-k probabilities under noise (differentiable) or
            hard counts (no gradient).
        mask: optional (E,) bool of the experts that count.

    Returns:
        A scalar tensor.
    """
    return cv_squared(importance, mask) + cv_squared(load, mask)
