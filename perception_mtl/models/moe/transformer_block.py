"""Pre-norm transformer block (timm's attention and MLP) whose feed-forward is a dense MLP or an MoE layer."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from timm.layers import Attention, Mlp
from torch import Tensor, nn

from .moe_feed_forward import MoEFeedForward


def _init_linear(layer: nn.Linear) -> None:
    nn.init.trunc_normal_(layer.weight, std=0.02)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


class SelfAttention(Attention):
    """timm's multi-head self-attention (``qkv``, ``proj``), always in its plain-matmul form.

    ``fused_attn`` is switched off whatever timm's global setting: the explicit
    ``softmax(q k^T * scale + mask) v`` exports to ONNX with the TorchScript exporter, FLOP counters
    (``benchmarks/moe.py``) count it, and outputs do not depend on which SDPA kernel runs. Weights
    get ViT's truncated-normal init (timm applies it in its model classes, not in the layer).
    ``forward(x, attn_mask)`` maps (B, N, D) to (B, N, D); ``attn_mask`` is an additive bias
    broadcastable to (B, heads, N, N).

    Args:
        dim: token width D (divisible by ``num_heads``).
        num_heads: heads.
        qkv_bias: bias on the q/k/v projection.
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True) -> None:
        if dim % num_heads:
            raise ValueError(f"embed dim {dim} is not divisible by num_heads={num_heads}")
        super().__init__(dim, num_heads, qkv_bias=qkv_bias)
        self.fused_attn = False
        _init_linear(self.qkv)
        _init_linear(self.proj)


class FeedForward(Mlp):
    """timm's dense two-layer MLP (fc1, GELU, fc2) with ViT's init; takes (and ignores) ``task`` so it
    is interchangeable with the MoE layer."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__(dim, hidden_dim)
        _init_linear(self.fc1)
        _init_linear(self.fc2)

    def forward(self, x: Tensor, task: str | None = None) -> Tensor:
        """(B, N, D) -> (B, N, D)."""
        return super().forward(x)


def _window_attention(attn: SelfAttention, x: Tensor, hw: tuple[int, int], window: int) -> Tensor:
    """Attention inside non-overlapping ``window`` x ``window`` windows of a (B, H*W, C) token map.

    The map is zero-padded to a multiple of the window; padded keys are masked out, so outputs on
    real tokens do not depend on the padding.
    """
    b, n, c = x.shape
    h, w = hw
    ph, pw = (-h) % window, (-w) % window
    grid = F.pad(x.reshape(b, h, w, c), (0, 0, 0, pw, 0, ph))
    hp, wp = h + ph, w + pw

    def partition(t: Tensor) -> Tensor:  # (B, Hp, Wp, C) -> (B * nW, window², C)
        t = t.reshape(t.shape[0], hp // window, window, wp // window, window, t.shape[-1])
        return t.permute(0, 1, 3, 2, 4, 5).reshape(-1, window * window, t.shape[-1])

    bias = None
    if ph or pw:
        valid = F.pad(x.new_ones(1, h, w, 1), (0, 0, 0, pw, 0, ph))
        key_valid = partition(valid)[..., 0]  # (nW, window²)
        bias = torch.zeros_like(key_valid).masked_fill(key_valid == 0, float("-inf"))
        bias = bias.repeat(b, 1)[:, None, None, :]
    out = attn(partition(grid), bias)
    out = out.reshape(b, hp // window, wp // window, window, window, c).permute(0, 1, 3, 2, 4, 5)
    return out.reshape(b, hp, wp, c)[:, :h, :w].reshape(b, n, c)


class TransformerBlock(nn.Module):
    """``x + attn(norm(x))`` then ``x + ffn(norm(x), task)``, the FFN dense or mixture-of-experts.

    Args:
        dim: token width D.
        num_heads: attention heads.
        mlp_ratio: hidden width of the dense FFN, as a multiple of D.
        qkv_bias: bias on the q/k/v projection.
        moe_cfg: when given, the FFN is a ``MoEFeedForward`` with these settings (``in_dim`` and
            ``tasks`` are filled in; ``hidden_dim`` defaults to ``moe_mlp_ratio * D``).
        moe_mlp_ratio: hidden width of each expert, as a multiple of D.
        tasks: task names for task-conditioned routing.
        window_size: when set and ``hw`` is passed, attention runs in windows of this size.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        moe_cfg: dict | None = None,
        moe_mlp_ratio: float = 1.0,
        tasks: Sequence[str] | None = None,
        window_size: int | None = None,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = SelfAttention(dim, num_heads, qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        if window_size is not None and window_size < 1:
            raise ValueError(f"window_size must be >= 1, got {window_size}")
        self.window_size = window_size
        if moe_cfg is not None:
            cfg = dict(moe_cfg)
            cfg.pop("type", None)
            cfg.setdefault("hidden_dim", max(1, int(round(moe_mlp_ratio * dim))))
            self.ffn: nn.Module = MoEFeedForward(in_dim=dim, tasks=tasks, **cfg)
        else:
            self.ffn = FeedForward(dim, max(1, int(round(mlp_ratio * dim))))

    @property
    def is_moe(self) -> bool:
        return isinstance(self.ffn, MoEFeedForward)

    def forward(self, x: Tensor, task: str | None = None, hw: tuple[int, int] | None = None) -> Tensor:
        """Args: x (B, N, D); task: routing task; hw: (H, W) with H * W = N for windowed attention.
        Returns (B, N, D)."""
        y = self.norm1(x)
        if self.window_size is not None and hw is not None:
            x = x + _window_attention(self.attn, y, hw, self.window_size)
        else:
            x = x + self.attn(y)
        return x + self.ffn(self.norm2(x), task)
