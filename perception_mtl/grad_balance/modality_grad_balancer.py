"""FULLER's intra-gradient balancing: equal gradient magnitudes into every modality branch."""

from __future__ import annotations

import torch
from torch import Tensor, nn

TARGETS = ("mean", "max", "ema")


class ModalityGradBalancer(nn.Module):
    """Rescales the gradients flowing back into each modality branch to a common norm.

    ``attach(feats)`` puts one identity autograd node over all modality features as the fuser
    consumes them. Its backward receives every branch's gradient at once (a tensor hook per
    branch could not: the autograd engine runs one branch to its end before the other's
    gradient exists), measures the norms and rescales ``g_m <- g_m * target / ||g_m||``.

    Target: 'mean' of the branch norms, 'max' (the larger), or 'ema': an exponential moving
    average over iterations of the mean norm. ``target=None`` only measures (used to log the
    modality ratio for rules without intra-gradient balancing). With fewer than two branches
    with a non-zero gradient, the gradients pass unchanged. Norms are per process (the node runs
    inside DDP's backward, where a collective would interleave with DDP's bucket all-reduces).

    Args:
        target: 'mean', 'max', 'ema', or None (measure only).
        momentum: EMA momentum ``ema <- momentum * ema + (1 - momentum) * mean``.
    """

    def __init__(self, target: str | None = "mean", momentum: float = 0.9) -> None:
        super().__init__()
        if target is not None and target not in TARGETS:
            raise ValueError(f"FULLER: balancer.intra.target must be one of {TARGETS} (or None), got {target!r}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"FULLER: balancer.intra.momentum must be in [0, 1), got {momentum}")
        self.target = target
        self.momentum = float(momentum)
        # EMA of the (unscaled) mean branch norm; negative until the first step.
        self.register_buffer("ema_norm", torch.full((), -1.0, dtype=torch.float64))
        # The optim wrapper sets the factor its final backward is multiplied by (AMP loss scale
        # times 1 / accumulation count), so the EMA and the logged norms are in loss units.
        self.grad_multiplier: Tensor | float = 1.0
        self.names: list[str] = []
        self.last: dict[str, Tensor] | None = None

    def reset(self) -> None:
        """Forgets the last forward's modality names and the last backward's norms."""
        self.names, self.last = [], None

    def attach(self, feats: dict[str, Tensor]) -> dict[str, Tensor]:
        """The modality hook: ``{name: (B, C_m, H, W)}`` -> same values, balanced in backward."""
        if len(feats) < 2:
            return feats
        self.names = list(feats)
        outs = _BalanceGrad.apply(self, *feats.values())
        return dict(zip(self.names, outs))

    def rescale(self, grads: tuple[Tensor | None, ...]) -> tuple[Tensor | None, ...]:
        """Branch gradients -> balanced gradients (same shapes); records ``self.last``."""
        present = [g for g in grads if g is not None]
        if not present:
            return grads
        device = present[0].device
        mult = torch.as_tensor(self.grad_multiplier, dtype=torch.float64, device=device)
        norms = torch.stack(
            [
                torch.linalg.vector_norm(g, dtype=torch.float32).double() if g is not None else mult.new_zeros(())
                for g in grads
            ]
        )
        before = norms / mult
        nonzero = before > 0
        if self.target is None or int(nonzero.sum()) < 2 or not bool(torch.isfinite(before).all()):
            self.last = dict(before=before.detach(), after=before.detach())
            return grads
        if self.target == "mean":
            target = before[nonzero].mean()
        elif self.target == "max":
            target = before[nonzero].max()
        else:
            mean = before[nonzero].mean()
            ema = self.ema_norm.to(mean)
            ema = torch.where(ema < 0, mean, self.momentum * ema + (1 - self.momentum) * mean)
            self.ema_norm.copy_(ema)
            target = ema
        factors = torch.where(nonzero, target / before.clamp_min(1e-300), torch.ones_like(before))
        out = tuple(g if g is None else g * factors[k].to(g.dtype) for k, g in enumerate(grads))
        self.last = dict(before=before.detach(), after=torch.where(nonzero, target, before).detach())
        return out

    def extra_repr(self) -> str:
        return f"target={self.target!r}, momentum={self.momentum}"


class _BalanceGrad(torch.autograd.Function):
    """Identity over the modality features whose backward calls ``balancer.rescale``."""

    @staticmethod
    def forward(ctx, balancer: ModalityGradBalancer, *feats: Tensor) -> tuple[Tensor, ...]:
        ctx.balancer = balancer
        return tuple(f.view_as(f) for f in feats)

    @staticmethod
    def backward(ctx, *grads: Tensor | None) -> tuple[Tensor | None, ...]:
        return (None, *ctx.balancer.rescale(grads))
