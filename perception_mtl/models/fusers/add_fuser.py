"""Project each modality's BEV map to a common width and sum them (BEVFusion's AddFuser)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from perception_mtl.registry import MODELS


@MODELS.register_module()
class AddFuser(BaseModule):
    """``sum_i ReLU(BN(Conv3x3_i(feat_i)))``, optionally dropping whole modalities in training.

    Modality dropout zeroes one randomly chosen input of a sample with probability
    ``modality_dropout`` (never all of them), so the fused model learns to cope with a missing
    sensor; the kept inputs are rescaled so the expected sum is unchanged.

    Args:
        in_channels: channels of each modality's BEV map, in the model's modality order.
        out_channels: fused channels.
        modality_dropout: probability per sample of dropping one modality during training.
        init_cfg: MMEngine init config.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        out_channels: int,
        modality_dropout: float = 0.0,
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        if not 0.0 <= modality_dropout < 1.0:
            raise ValueError(f"fuser.modality_dropout must be in [0, 1), got {modality_dropout}")
        self.in_channels = list(in_channels)
        self.out_channels = out_channels
        self.modality_dropout = modality_dropout
        self.projections = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(c, out_channels, 3, padding=1, bias=False),
                nn.BatchNorm2d(out_channels),
                nn.ReLU(inplace=True),
            )
            for c in in_channels
        )

    def forward(self, feats: Sequence[Tensor]) -> Tensor:
        """Args: feats, one (B, C_i, Y, X) map per modality. Returns (B, out_channels, Y, X)."""
        if [f.shape[1] for f in feats] != self.in_channels:
            raise ValueError(f"fuser.in_channels={self.in_channels} but got {[f.shape[1] for f in feats]}")
        projected = torch.stack([proj(f) for proj, f in zip(self.projections, feats)])  # (M, B, C, Y, X)
        if self.training and self.modality_dropout > 0 and len(feats) > 1:
            num_mod, batch = projected.shape[:2]
            drop = torch.rand(batch, device=projected.device) < self.modality_dropout
            which = torch.randint(num_mod, (batch,), device=projected.device)
            keep = torch.ones(num_mod, batch, device=projected.device, dtype=projected.dtype)
            keep[which, torch.arange(batch, device=projected.device)] = (~drop).to(projected.dtype)
            keep = keep * num_mod / keep.sum(0, keepdim=True)
            projected = projected * keep.view(num_mod, batch, 1, 1, 1)
        return projected.sum(0)
