"""ViT-MoE backbone (M³ViT): a plain ViT whose every other MLP is a task-conditioned MoE layer.

It follows timm's backbone interface: ``forward_features`` returns the final tokens,
``forward_intermediates`` the token maps of chosen blocks, and ``forward`` (features_only style)
a list of multi-scale maps whose channels and strides ``feature_info`` (a timm ``FeatureInfo``)
reports, so necks and heads are built from it. The multi-scale maps come from a simple feature
pyramid over block outputs (ViTDet / DPT style): transposed convolutions to upsample, max-pooling
to downsample. Patch embedding, attention and dense MLPs are timm's layers (``PatchEmbed``,
``Attention``, ``Mlp``); the blocks are ours because their feed-forward may be a task-routed MoE
layer, which takes the task as a second input (timm's ``Block`` has no place for it).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from timm.layers import PatchEmbed, resample_abs_pos_embed
from timm.models._features import FeatureInfo
from torch import Tensor, nn

from perception_mtl.registry import MODELS

from ..moe.transformer_block import TransformerBlock

_SCALES = (4.0, 2.0, 1.0, 0.5)


def _rescale_module(dim: int, scale: float) -> nn.Module:
    """(B, D, h, w) -> (B, D, h * scale, w * scale)."""
    if scale == 4.0:
        return nn.Sequential(nn.ConvTranspose2d(dim, dim, 2, 2), nn.GELU(), nn.ConvTranspose2d(dim, dim, 2, 2))
    if scale == 2.0:
        return nn.ConvTranspose2d(dim, dim, 2, 2)
    if scale == 1.0:
        return nn.Identity()
    return nn.MaxPool2d(2)


@MODELS.register_module()
class ViTMoE(nn.Module):
    """Vision transformer with MoE feed-forward layers in every ``moe_every``-th block.

    Args:
        img_size: (square) training image size; sets the learned position embedding grid, which
            is resampled bicubically (timm's ``resample_abs_pos_embed``) for other sizes; any
            input size must be a multiple of ``patch_size``.
        patch_size: patch size P (token stride).
        in_chans: image channels.
        embed_dim: token width D.
        depth: number of blocks.
        num_heads: attention heads.
        mlp_ratio: hidden width of the dense MLPs, as a multiple of D.
        qkv_bias: bias on the q/k/v projections.
        moe_cfg: ``MoEFeedForward`` settings (num_experts, top_k, router, act, expert_norm, ...);
            None gives a plain dense ViT (the equal-active-parameter baseline).
        moe_mlp_ratio: hidden width of each expert, as a multiple of D (M³ViT uses 1).
        moe_every: blocks ``i`` with ``i % moe_every == moe_every - 1`` are MoE blocks (odd blocks
            for 2, as in M³ViT).
        tasks: task names for task-conditioned routing.
        out_indices: blocks whose outputs become feature maps (increasing).
        feature_scales: per output, resampling of the P-stride token map: 4, 2, 1 or 0.5 (non
            increasing), giving strides P/4 .. 2P.
        exportable: use the exportable (gather) dispatch in every MoE layer.
    """

    def __init__(
        self,
        img_size: int = 224,
        patch_size: int = 16,
        in_chans: int = 3,
        embed_dim: int = 384,
        depth: int = 12,
        num_heads: int = 6,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        moe_cfg: dict | None = None,
        moe_mlp_ratio: float = 1.0,
        moe_every: int = 2,
        tasks: Sequence[str] | None = None,
        out_indices: Sequence[int] | None = None,
        feature_scales: Sequence[float] | None = None,
        exportable: bool = False,
    ) -> None:
        super().__init__()
        if img_size % patch_size:
            raise ValueError(f"ViTMoE: img_size={img_size} is not a multiple of patch_size={patch_size}")
        if depth < 1 or moe_every < 1:
            raise ValueError(f"ViTMoE: need depth >= 1 and moe_every >= 1; got depth={depth}, moe_every={moe_every}")
        if out_indices is None:
            out_indices = sorted({max(0, depth * q // 4 - 1) for q in (1, 2, 3, 4)})
        out_indices = tuple(int(i) for i in out_indices)
        if (
            not out_indices
            or list(out_indices) != sorted(set(out_indices))
            or not 0 <= out_indices[0] <= out_indices[-1] < depth
        ):
            raise ValueError(f"ViTMoE: out_indices must be increasing block indices in [0, {depth}); got {out_indices}")
        if feature_scales is None:
            feature_scales = _SCALES[-len(out_indices) :] if len(out_indices) <= 4 else (1.0,) * len(out_indices)
        feature_scales = tuple(float(s) for s in feature_scales)
        if len(feature_scales) != len(out_indices):
            raise ValueError(f"ViTMoE: feature_scales {feature_scales} needs one entry per out_indices {out_indices}")
        if any(s not in _SCALES for s in feature_scales) or list(feature_scales) != sorted(
            feature_scales, reverse=True
        ):
            raise ValueError(
                f"ViTMoE: feature_scales must be non-increasing values from {_SCALES}; got {feature_scales}"
            )
        if any((patch_size / s) % 1 for s in feature_scales):
            raise ValueError(f"ViTMoE: patch_size={patch_size} / feature_scales {feature_scales} must be whole strides")
        if moe_cfg is not None and exportable:
            moe_cfg = dict(moe_cfg, exportable=True)

        self.patch_size = patch_size
        self.embed_dim = self.num_features = embed_dim
        self.tasks = tuple(tasks or ())
        # Any multiple of the patch size is accepted (the position embedding is resampled); NCHW out.
        self.patch_embed = PatchEmbed(img_size, patch_size, in_chans, embed_dim, flatten=False, strict_img_size=False)
        self.grid_size = self.patch_embed.grid_size
        self.pos_embed = nn.Parameter(torch.zeros(1, self.grid_size[0] * self.grid_size[1], embed_dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.moe_block_indices = tuple(
            i for i in range(depth) if moe_cfg is not None and i % moe_every == moe_every - 1
        )
        self.blocks = nn.ModuleList(
            TransformerBlock(
                embed_dim,
                num_heads,
                mlp_ratio=mlp_ratio,
                qkv_bias=qkv_bias,
                moe_cfg=moe_cfg if i in self.moe_block_indices else None,
                moe_mlp_ratio=moe_mlp_ratio,
                tasks=self.tasks,
            )
            for i in range(depth)
        )
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.out_indices = out_indices
        # The last block's output is normalised by ``norm`` (as in forward_features); earlier ones by their own.
        self.out_norms = nn.ModuleDict(
            {str(i): nn.LayerNorm(embed_dim, eps=1e-6) for i in out_indices if i != depth - 1}
        )
        self.rescale = nn.ModuleList(_rescale_module(embed_dim, s) for s in feature_scales)
        self.feature_info = FeatureInfo(
            [
                dict(num_chs=embed_dim, reduction=int(patch_size / s), module=f"rescale.{i}")
                for i, s in enumerate(feature_scales)
            ],
            out_indices=tuple(range(len(out_indices))),
        )

    @property
    def task_dependent(self) -> bool:
        """Whether some MoE layer routes by task (then every forward needs a task)."""
        return any(b.is_moe and b.ffn.router.task_dependent for b in self.blocks)

    def _embed(self, x: Tensor) -> tuple[Tensor, tuple[int, int]]:
        """(B, C, H, W) image -> (B, N, D) tokens with positions, and the (h, w) token grid."""
        x = self.patch_embed(x)
        hw = (x.shape[-2], x.shape[-1])
        pos = self.pos_embed
        if hw != self.grid_size:
            pos = resample_abs_pos_embed(pos, hw, self.grid_size, num_prefix_tokens=0, antialias=False)
        return x.flatten(2).transpose(1, 2) + pos, hw

    def forward_intermediates(self, x: Tensor, task: str | None = None) -> list[Tensor]:
        """Token maps (B, D, H/P, W/P) after each block in ``out_indices``, normalised.

        Blocks after the last of ``out_indices`` do not run.
        """
        tokens, (h, w) = self._embed(x)
        maps = []
        for i, block in enumerate(self.blocks):
            tokens = block(tokens, task)
            if i in self.out_indices:
                norm = self.out_norms[str(i)] if str(i) in self.out_norms else self.norm
                maps.append(norm(tokens).transpose(1, 2).reshape(x.shape[0], -1, h, w))
            if i == self.out_indices[-1]:
                break
        return maps

    def forward_features(self, x: Tensor, task: str | None = None) -> Tensor:
        """(B, C, H, W) image -> (B, N, D) final normalised tokens (all blocks)."""
        tokens, _ = self._embed(x)
        for block in self.blocks:
            tokens = block(tokens, task)
        return self.norm(tokens)

    def forward(self, x: Tensor, task: str | None = None) -> list[Tensor]:
        """features_only output: one (B, D, H / r_i, W / r_i) map per ``feature_info`` entry (r_i = reduction)."""
        return [rescale(m) for rescale, m in zip(self.rescale, self.forward_intermediates(x, task))]
