"""Noisy top-k gate: one linear router over E experts (Shazeer et al., 2017; V-MoE variant).

It is the building block of every router here: used alone it is a task-agnostic router; the
per-task router holds one per task; the task-conditioned router feeds it ``concat(token, task
embedding)``. A sparse single-task model keeps exactly one of them (see ``task_gate``).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from perception_mtl.registry import MODELS

GATE_TYPES = ("top_k_softmax", "softmax_top_k")
NOISE_TYPES = ("learned", "fixed", "none")
_NOISE_EPS = 1e-2  # floor of the learned noise std (Shazeer's noise_epsilon)


class RoutingOutput(NamedTuple):
    """What a router returns for N tokens over E experts.

    Attributes:
        indices: (N, k) int64 expert ids (global, 0..E-1), best first.
        weights: (N, k) combine weights of those experts.
        probs: (N, E) softmax of the clean logits (0 for experts the task may not use); used for
            gate-entropy statistics.
        load: (E,) tokens per expert: smooth top-k probabilities summed over tokens while training
            with noise (differentiable), else hard counts.
        allowed: (E,) bool, the experts this routing may choose.
    """

    indices: Tensor
    weights: Tensor
    probs: Tensor
    load: Tensor
    allowed: Tensor


def allowed_logit_mask(num_experts: int, top_k: int, experts: Sequence[int] | None, name: str) -> Tensor:
    """(E,) additive logit mask: 0 for allowed experts, -inf for the others.

    Args:
        num_experts: E.
        top_k: k; at least k experts must be allowed.
        experts: allowed expert ids, or None for all.
        name: what to call the setting in error messages (the config key).
    """
    mask = torch.zeros(num_experts)
    if experts is None:
        return mask
    ids = [int(e) for e in experts]
    if len(set(ids)) != len(ids) or any(not 0 <= e < num_experts for e in ids):
        raise ValueError(f"{name}: expert ids must be distinct and in [0, {num_experts}); got {list(experts)}")
    if len(ids) < top_k:
        raise ValueError(f"{name}: {len(ids)} experts allowed but top_k={top_k} need to be chosen")
    mask.fill_(float("-inf"))
    mask[ids] = 0.0
    return mask


def task_expert_masks(
    tasks: Sequence[str], num_experts: int, top_k: int, task_experts: Mapping[str, Sequence[int]] | None
) -> Tensor:
    """(T, E) logit masks from a ``task_experts`` setting (task -> allowed expert ids; missing = all)."""
    task_experts = dict(task_experts or {})
    unknown = set(task_experts) - set(tasks)
    if unknown:
        raise ValueError(f"task_experts: unknown tasks {sorted(unknown)}; tasks are {list(tasks)}")
    return torch.stack(
        [allowed_logit_mask(num_experts, top_k, task_experts.get(t), f"task_experts[{t!r}]") for t in tasks]
    )


def _normal_cdf(x: Tensor) -> Tensor:
    return 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))


@MODELS.register_module()
class NoisyTopKGate(nn.Module):
    """Linear router choosing k of E experts per token, with optional noise in training.

    ``gate_type='top_k_softmax'`` (Shazeer): top-k of the (noisy) logits, then a softmax over those
    k. ``'softmax_top_k'`` (V-MoE): a softmax over all allowed experts, then the k largest
    probabilities, not renormalised. Noise is only added in training: ``'learned'`` draws
    N(0, softplus(x W_noise) + 0.01) per logit (Shazeer), ``'fixed'`` uses std ``noise_std / E``
    (V-MoE), ``'none'`` none.

    Used alone it is task-agnostic (``task`` is ignored). ``extra_dim > 0`` makes the gate read
    ``concat(token, extra)``: the task-conditioned router passes its task embedding there, and a
    gate extracted for one task stores that embedding as the buffer ``extra_input``.

    Args:
        in_dim: token width D.
        num_experts: E.
        top_k: k experts per token, 1 <= k <= E.
        tasks: ignored (the gate is task-agnostic); accepted so every router takes the same config.
        gate_type: 'top_k_softmax' or 'softmax_top_k'.
        noise: 'learned', 'fixed' or 'none'.
        noise_std: std scale of 'fixed' noise (the std is ``noise_std / E``).
        bias: whether the gate projection has a bias.
        allowed_experts: expert ids this gate may choose (default all).
        extra_dim: width of the extra gate input (0 for none).
    """

    task_dependent = False

    def __init__(
        self,
        in_dim: int,
        num_experts: int,
        top_k: int,
        tasks: Sequence[str] | None = None,
        gate_type: str = "top_k_softmax",
        noise: str = "learned",
        noise_std: float = 1.0,
        bias: bool = False,
        allowed_experts: Sequence[int] | None = None,
        extra_dim: int = 0,
    ) -> None:
        super().__init__()
        if gate_type not in GATE_TYPES:
            raise ValueError(f"router.gate_type must be one of {GATE_TYPES}, got {gate_type!r}")
        if noise not in NOISE_TYPES:
            raise ValueError(f"router.noise must be one of {NOISE_TYPES}, got {noise!r}")
        if not 1 <= top_k <= num_experts:
            raise ValueError(f"top_k must be in [1, num_experts={num_experts}], got {top_k}")
        if noise_std < 0:
            raise ValueError(f"router.noise_std must be >= 0, got {noise_std}")
        self.in_dim = in_dim
        self.num_experts = num_experts
        self.top_k = top_k
        self.gate_type = gate_type
        self.noise = noise
        self.noise_std = float(noise_std)
        self.extra_dim = extra_dim
        self.proj = nn.Linear(in_dim + extra_dim, num_experts, bias=bias)
        nn.init.trunc_normal_(self.proj.weight, std=0.02)
        if bias:
            nn.init.zeros_(self.proj.bias)
        # Shazeer initialises the noise projection at zero: std starts at softplus(0) + eps.
        self.noise_proj = nn.Linear(in_dim + extra_dim, num_experts, bias=False) if noise == "learned" else None
        if self.noise_proj is not None:
            nn.init.zeros_(self.noise_proj.weight)
        self.register_buffer("logit_mask", allowed_logit_mask(num_experts, top_k, allowed_experts, "allowed_experts"))
        self.register_buffer("extra_input", None)

    def forward(self, x: Tensor, task: str | None = None) -> RoutingOutput:
        """Routes (N, D) tokens; ``task`` is ignored (this gate is task-agnostic)."""
        return self.route(x)

    def route(self, x: Tensor, extra: Tensor | None = None, logit_mask: Tensor | None = None) -> RoutingOutput:
        """Routes N tokens.

        Args:
            x: (N, D) tokens.
            extra: (1, extra_dim) or (N, extra_dim) extra gate input; defaults to the stored
                ``extra_input`` buffer.
            logit_mask: (E,) additive mask (0 / -inf); defaults to the stored ``logit_mask``.
        """
        if self.extra_dim:
            if extra is None and self.extra_input is not None:
                extra = self.extra_input[None]
            if extra is None:
                raise ValueError("NoisyTopKGate: extra_dim > 0 but no extra input given or stored")
            x = torch.cat([x, extra.expand(x.shape[0], extra.shape[-1])], dim=-1)
        mask = self.logit_mask if logit_mask is None else logit_mask
        clean = self.proj(x) + mask
        k = self.top_k
        noisy_train = self.training and self.noise != "none"
        if noisy_train:
            if self.noise_proj is not None:
                std = F.softplus(self.noise_proj(x)) + _NOISE_EPS
            else:
                std = torch.full_like(clean, self.noise_std / self.num_experts)
            logits = clean + torch.randn_like(clean) * std
        else:
            logits = clean
        allowed = torch.isfinite(mask)
        probs = clean.softmax(dim=-1)
        if self.gate_type == "top_k_softmax":
            top_vals, top_idx = logits.topk(k, dim=-1)
            weights = top_vals.softmax(dim=-1)
        else:
            top_vals, top_idx = logits.softmax(dim=-1).topk(k, dim=-1)
            weights = top_vals
        num_allowed = int(allowed.sum())
        if noisy_train and k < num_allowed and (self.noise_proj is not None or self.noise_std > 0):
            load = self._smooth_load(clean, logits, std, allowed)
        else:
            load = torch.zeros(self.num_experts, device=x.device, dtype=weights.dtype)
            load = load.index_add(0, top_idx.reshape(-1), torch.ones_like(weights).reshape(-1))
        return RoutingOutput(top_idx, weights, probs, load, allowed)

    def _smooth_load(self, clean: Tensor, noisy: Tensor, std: Tensor, allowed: Tensor) -> Tensor:
        """(E,) sum over tokens of P(expert in top-k | other noisy logits), Shazeer's smooth load.

        For an expert now in the top-k, it stays there while its logit beats the (k+1)-th noisy
        logit; for one outside, it gets in when it beats the k-th.
        """
        k = self.top_k
        top = noisy.topk(k + 1, dim=-1).values
        threshold_in, threshold_out = top[:, k : k + 1], top[:, k - 1 : k]
        is_in = noisy > threshold_in
        prob = torch.where(is_in, _normal_cdf((clean - threshold_in) / std), _normal_cdf((clean - threshold_out) / std))
        # Disallowed experts have -inf logits: force exact zeros (and no NaN from inf - inf).
        prob = torch.where(allowed, prob, torch.zeros_like(prob))
        return prob.sum(0)

    def allowed_experts(self, task: str | None = None) -> list[int]:
        """Expert ids this gate may choose."""
        return torch.nonzero(torch.isfinite(self.logit_mask)).flatten().tolist()

    def task_gate(self, task: str | None = None) -> NoisyTopKGate:
        """A copy of this gate (it is already task-agnostic)."""
        return copy.deepcopy(self)

    def restrict_experts(self, experts: Sequence[int]) -> None:
        """Masks every expert not in ``experts`` (used when pruning a single-task model)."""
        keep = allowed_logit_mask(self.num_experts, self.top_k, experts, "experts")
        merged = self.logit_mask + keep  # -inf wherever either mask forbids
        if int(torch.isfinite(merged).sum()) < self.top_k:
            raise ValueError(f"restrict_experts: fewer than top_k={self.top_k} allowed experts would remain")
        self.logit_mask.copy_(merged)

    def extra_repr(self) -> str:
        return (
            f"in_dim={self.in_dim}, extra_dim={self.extra_dim}, num_experts={self.num_experts}, top_k={self.top_k}, "
            f"gate_type={self.gate_type!r}, noise={self.noise!r}"
        )
