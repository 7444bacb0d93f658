"""E two-layer feed-forward experts stored as stacked weights, with three dispatch paths.

- ``bucketed`` (the default; training and eager inference): token slots are sorted by expert, and
  each expert runs one matmul over its contiguous bucket, so compute is proportional to k, not E.
- ``gather`` (exportable): every token gathers the weights of its k experts and runs a batched
  einsum. Fixed shapes and pure Gather/Einsum ops (no NonZero, no data-dependent split), so it
  exports to ONNX; the same FLOPs as ``bucketed``, more memory.
- ``dense`` (reference): every expert on every token, combined with a mask of gate weights. It is
  what an MoE costs without sparse dispatch; tests and the benchmark's dense baseline use it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ACTIVATIONS = {"gelu": F.gelu, "silu": F.silu, "relu": F.relu}


class ExpertBank(nn.Module):
    """E experts ``y_e = norm_e(W2_e act(W1_e x + b1_e) + b2_e)`` with stacked weights.

    Args:
        num_experts: E resident experts.
        in_dim: token width D.
        hidden_dim: hidden width H of each expert.
        act: 'gelu', 'silu' or 'relu'.
        expert_norm: normalise each expert's output with its own LayerNorm (per-expert affine)
            before mixing (HoME's expert normalisation; LayerNorm rather than BatchNorm so an
            expert's output never depends on which other tokens share its bucket).
    """

    def __init__(self, num_experts: int, in_dim: int, hidden_dim: int, act: str = "gelu", expert_norm: bool = False):
        super().__init__()
        if act not in ACTIVATIONS:
            raise ValueError(f"act must be one of {sorted(ACTIVATIONS)}, got {act!r}")
        if num_experts < 1 or in_dim < 1 or hidden_dim < 1:
            raise ValueError(f"need num_experts, in_dim, hidden_dim >= 1; got {num_experts}, {in_dim}, {hidden_dim}")
        self.num_experts, self.in_dim, self.hidden_dim = num_experts, in_dim, hidden_dim
        self.act_name = act
        self.act = ACTIVATIONS[act]
        self.w1 = nn.Parameter(torch.empty(num_experts, in_dim, hidden_dim))
        self.b1 = nn.Parameter(torch.zeros(num_experts, hidden_dim))
        self.w2 = nn.Parameter(torch.empty(num_experts, hidden_dim, in_dim))
        self.b2 = nn.Parameter(torch.zeros(num_experts, in_dim))
        nn.init.trunc_normal_(self.w1, std=0.02)
        nn.init.trunc_normal_(self.w2, std=0.02)
        self.expert_norm = expert_norm
        if expert_norm:
            self.norm_weight = nn.Parameter(torch.ones(num_experts, in_dim))
            self.norm_bias = nn.Parameter(torch.zeros(num_experts, in_dim))

    def _expert(
        self, e: int, x: Tensor, params: list[tuple[Tensor, ...]], zero_counts: tuple[Tensor, Tensor] | None
    ) -> Tensor:
        """Expert ``e`` on its bucket x (n, D) -> (n, D): one matmul per layer."""
        w1, b1, w2, b2, *norm = params[e]
        pre = torch.addmm(b1, x, w1)
        if zero_counts is not None:
            with torch.no_grad():
                zero_counts[0][e] += (pre <= 0).sum()
                zero_counts[1][e] += pre.numel()
        y = torch.addmm(b2, self.act(pre), w2)
        if norm:
            y = F.layer_norm(y, (self.in_dim,), norm[0], norm[1])
        return y

    def _per_expert_params(self) -> list[tuple[Tensor, ...]]:
        # One unbind per tensor: its backward stacks the per-expert gradients once, where indexing
        # each expert would materialise a full (E, ...) zero gradient per expert.
        tensors = [self.w1, self.b1, self.w2, self.b2]
        if self.expert_norm:
            tensors += [self.norm_weight, self.norm_bias]
        return list(zip(*(t.unbind(0) for t in tensors)))

    def bucketed(
        self, x: Tensor, indices: Tensor, weights: Tensor, zero_counts: tuple[Tensor, Tensor] | None = None
    ) -> Tensor:
        """Expert-bucketed dispatch.

        Args:
            x: (N, D) tokens.
            indices: (N, k) local expert ids in [0, E).
            weights: (N, k) combine weights.
            zero_counts: optional (E,) accumulators (hidden activations <= 0, hidden activations seen).

        Returns:
            (N, D) = sum_j weights[:, j] * expert_{indices[:, j]}(x).
        """
        n, k = indices.shape
        if n == 0:
            return x.new_zeros(x.shape)
        flat = indices.reshape(-1)
        order = torch.argsort(flat, stable=True)  # slots grouped by expert, token order kept inside
        token = torch.div(order, k, rounding_mode="floor")
        counts = torch.bincount(flat, minlength=self.num_experts).tolist()
        routed = x.index_select(0, token)
        params = self._per_expert_params()
        outs, start = [], 0
        for e, count in enumerate(counts):
            if count:
                outs.append(self._expert(e, routed[start : start + count], params, zero_counts))
                start += count
        y = torch.cat(outs) * weights.reshape(-1)[order].unsqueeze(-1)
        return x.new_zeros(x.shape).index_add(0, token, y.to(x.dtype))

    def gather(self, x: Tensor, indices: Tensor, weights: Tensor) -> Tensor:
        """Exportable dispatch: each token gathers its k experts' weights. Same arguments as ``bucketed``."""
        pre = torch.einsum("nd,nkdh->nkh", x, self.w1[indices]) + self.b1[indices]
        y = torch.einsum("nkh,nkhd->nkd", self.act(pre), self.w2[indices]) + self.b2[indices]
        if self.expert_norm:
            y = F.layer_norm(y, (self.in_dim,)) * self.norm_weight[indices] + self.norm_bias[indices]
        return (y * weights.unsqueeze(-1)).sum(1)

    def dense(
        self, x: Tensor, indices: Tensor, weights: Tensor, zero_counts: tuple[Tensor, Tensor] | None = None
    ) -> Tensor:
        """Reference: all E experts on all tokens, mixed by the (N, E) scattered gate weights."""
        pre = torch.einsum("nd,edh->neh", x, self.w1) + self.b1
        if zero_counts is not None:
            with torch.no_grad():
                # Count only the (token, expert) pairs that were routed, as the sparse paths do.
                routed = torch.zeros(pre.shape[:2], dtype=torch.bool, device=x.device).scatter(1, indices, True)
                zero_counts[0].add_(((pre <= 0) & routed[..., None]).sum((0, 2)))
                zero_counts[1].add_(routed.sum(0) * self.hidden_dim)
        y = torch.einsum("neh,ehd->ned", self.act(pre), self.w2) + self.b2
        if self.expert_norm:
            y = F.layer_norm(y, (self.in_dim,)) * self.norm_weight + self.norm_bias
        gates = torch.zeros(x.shape[0], self.num_experts, dtype=weights.dtype, device=x.device)
        gates = gates.scatter(1, indices, weights)
        return torch.einsum("ne,ned->nd", gates, y)

    def select(self, experts: Sequence[int]) -> ExpertBank:
        """A new bank holding copies of the listed experts, in that order."""
        ids = torch.as_tensor(list(experts), dtype=torch.long, device=self.w1.device)
        bank = ExpertBank(len(ids), self.in_dim, self.hidden_dim, self.act_name, self.expert_norm).to(self.w1)
        with torch.no_grad():
            for name, param in bank.named_parameters():
                param.copy_(getattr(self, name).index_select(0, ids))
        return bank

    def extra_repr(self) -> str:
        return (
            f"num_experts={self.num_experts}, in_dim={self.in_dim}, hidden_dim={self.hidden_dim}, "
            f"act={self.act_name!r}, expert_norm={self.expert_norm}"
        )
