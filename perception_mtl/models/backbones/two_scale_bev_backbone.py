"""A small BEV-map decoder: a stride-2 context branch, upsampled and merged at full resolution."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import Tensor, nn

from perception_mtl.registry import MODELS


@MODELS.register_module()
class TwoScaleBEVBackbone(BaseModule):
    """``merge(cat(x, up(down(x))))`` on a BEV map, one output map (no neck needed).

    ``down`` is a stride-2 3x3 conv and a 3x3 conv (2 x ``out_channels``), ``up`` bilinear
    upsampling back to the input size, ``merge`` a 3x3 conv over the input and the context
    branch; every conv is an mmcv ``ConvModule`` (conv, norm, ReLU). The input itself reaches the
    merge, so the output keeps the input's cell-level detail beside half-resolution context.

    It is the decoder of ``TwoModalityMultiTaskNet``, kept rather than mmdet3d's SECOND + SECONDFPN
    (the ``MultiTaskBEVModel`` decoder): the gradient-balancing figures in configs/grad_balance/README.md
    are for this decoder, and SECOND + SECONDFPN localised car centres worse there.

    Args:
        in_channels: channels of the input map.
        out_channels: channels of the output map; the context branch has twice as many.
        norm_cfg: mmcv norm config, e.g. ``dict(type='BN')`` or ``dict(type='GN', num_groups=4)``;
            None for no norm (the convs then have biases).
        init_cfg: MMEngine init config.
    """

    def __init__(
        self, in_channels: int, out_channels: int, norm_cfg: dict | None = None, init_cfg: dict | None = None
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        context = 2 * out_channels
        self.down = nn.Sequential(
            ConvModule(in_channels, context, 3, stride=2, padding=1, norm_cfg=norm_cfg),
            ConvModule(context, context, 3, padding=1, norm_cfg=norm_cfg),
        )
        self.merge = ConvModule(in_channels + context, out_channels, 3, padding=1, norm_cfg=norm_cfg)

    def forward(self, x: Tensor) -> Tensor:
        """Args: x (B, in_channels, H, W). Returns (B, out_channels, H, W)."""
        up = F.interpolate(self.down(x), size=x.shape[-2:], mode="bilinear", align_corners=False)
        return self.merge(torch.cat([x, up], 1))
