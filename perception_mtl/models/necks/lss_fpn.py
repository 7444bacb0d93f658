"""Top-down FPN that concatenates (rather than adds) upsampled coarse features: BEVFusion's LSS-FPN."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import Tensor, nn

from perception_mtl.registry import MODELS


@MODELS.register_module()
class LSSFPN(BaseModule):
    """Generalized LSS-FPN: from the coarsest level down, upsample, concatenate with the finer
    level, then 1x1 and 3x3 conv-BN-ReLU (mmcv ``ConvModule``, as in BEVFusion).

    Args:
        in_channels: channels of the input levels, finest first (e.g. a backbone's strides 8, 16, 32).
        out_channels: channels of every output level.
        num_outs: how many output levels to return, finest first (the view transform reads the first).
        init_cfg: MMEngine init config.
    """

    def __init__(
        self, in_channels: Sequence[int], out_channels: int, num_outs: int = 1, init_cfg: dict | None = None
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        if len(in_channels) < 2:
            raise ValueError(f"LSSFPN: in_channels needs at least two levels, got {list(in_channels)}")
        if not 1 <= num_outs <= len(in_channels) - 1:
            raise ValueError(f"LSSFPN: num_outs must be in [1, {len(in_channels) - 1}], got {num_outs}")
        self.in_channels = list(in_channels)
        self.out_channels = out_channels
        self.num_outs = num_outs
        self.lateral_convs = nn.ModuleList()
        self.fpn_convs = nn.ModuleList()
        levels = len(in_channels)
        for i in range(levels - 1):
            coarse = in_channels[i + 1] if i == levels - 2 else out_channels
            self.lateral_convs.append(ConvModule(in_channels[i] + coarse, out_channels, 1, norm_cfg=dict(type="BN")))
            self.fpn_convs.append(ConvModule(out_channels, out_channels, 3, padding=1, norm_cfg=dict(type="BN")))

    def forward(self, feats: Sequence[Tensor]) -> list[Tensor]:
        """Args: feats, one (B, C_i, H_i, W_i) per level, finest first.

        Returns: ``num_outs`` maps (B, out_channels, H_i, W_i), finest first.
        """
        if len(feats) != len(self.in_channels):
            raise ValueError(f"LSSFPN: expected {len(self.in_channels)} levels, got {len(feats)}")
        outs = [None] * (len(feats) - 1)
        coarse = feats[-1]
        for i in range(len(feats) - 2, -1, -1):
            up = F.interpolate(coarse, size=feats[i].shape[-2:], mode="bilinear", align_corners=False)
            coarse = self.fpn_convs[i](self.lateral_convs[i](torch.cat([feats[i], up], 1)))
            outs[i] = coarse
        return outs[: self.num_outs]
