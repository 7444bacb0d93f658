"""An MoE transformer stage for BEV (or any 2D) decoders: (B, C, H, W) -> (B, C, H, W)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from perception_mtl.registry import MODELS

from .transformer_block import TransformerBlock


@MODELS.register_module()
class MoETransformerStage(nn.Module):
    """Transformer blocks over the cells of a feature map, every ``moe_every``-th FFN an MoE.

    A depthwise 3x3 convolution (added residually) gives position information that works at any
    map size; attention is global or, with ``window_size``, inside non-overlapping windows (a BEV
    grid of 200x200 cells is too large for global attention). The output keeps the input's shape,
    so the stage drops into a decoder between two convolutions.

    Args:
        in_channels: C, the token width.
        depth: number of transformer blocks.
        num_heads: attention heads.
        mlp_ratio: hidden width of the dense FFNs, as a multiple of C.
        moe_cfg: ``MoEFeedForward`` settings (e.g. ``dict(num_experts=16, top_k=4)``); None makes
            every FFN dense.
        moe_mlp_ratio: hidden width of each expert, as a multiple of C.
        moe_every: blocks ``i`` with ``i % moe_every == moe_every - 1`` use the MoE FFN (every
            other block by default, as in M³ViT).
        tasks: task names for task-conditioned routing.
        window_size: attention window in cells, or None for global attention.
    """

    def __init__(
        self,
        in_channels: int,
        depth: int = 2,
        num_heads: int = 4,
        mlp_ratio: float = 4.0,
        moe_cfg: dict | None = None,
        moe_mlp_ratio: float = 1.0,
        moe_every: int = 2,
        tasks: Sequence[str] | None = None,
        window_size: int | None = None,
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"MoETransformerStage: depth must be >= 1, got {depth}")
        if moe_every < 1:
            raise ValueError(f"MoETransformerStage: moe_every must be >= 1, got {moe_every}")
        self.pos_conv = nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels)
        self.blocks = nn.ModuleList(
            TransformerBlock(
                in_channels,
                num_heads,
                mlp_ratio=mlp_ratio,
                moe_cfg=moe_cfg if i % moe_every == moe_every - 1 else None,
                moe_mlp_ratio=moe_mlp_ratio,
                tasks=tasks,
                window_size=window_size,
            )
            for i in range(depth)
        )
        self.norm = nn.LayerNorm(in_channels, eps=1e-6)

    def forward(self, x: Tensor, task: str | None = None) -> Tensor:
        """Args: x (B, C, H, W); task: routing task of the MoE layers. Returns (B, C, H, W)."""
        b, c, h, w = x.shape
        x = x + self.pos_conv(x)
        tokens = x.flatten(2).transpose(1, 2)  # (B, H*W, C)
        for block in self.blocks:
            tokens = block(tokens, task, hw=(h, w))
        return self.norm(tokens).transpose(1, 2).reshape(b, c, h, w)
