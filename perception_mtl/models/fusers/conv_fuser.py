"""Concatenate the modalities' BEV maps and mix them with a 3x3 conv (BEVFusion's ConvFuser)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from perception_mtl.registry import MODELS


@MODELS.register_module()
class ConvFuser(BaseModule):
    """``ReLU(BN(Conv3x3(cat(feats))))``.

    Args:
        in_channels: channels of each modality's BEV map, in the model's modality order
            (camera, lidar).
        out_channels: fused channels.
        init_cfg: MMEngine init config.
    """

    def __init__(self, in_channels: Sequence[int], out_channels: int, init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.in_channels = list(in_channels)
        self.out_channels = out_channels
        self.fuse = nn.Sequential(
            nn.Conv2d(sum(in_channels), out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, feats: Sequence[Tensor]) -> Tensor:
        """Args: feats, one (B, C_i, Y, X) map per modality. Returns (B, out_channels, Y, X)."""
        if [f.shape[1] for f in feats] != self.in_channels:
            raise ValueError(f"fuser.in_channels={self.in_channels} but got {[f.shape[1] for f in feats]}")
        return self.fuse(torch.cat(list(feats), 1))
