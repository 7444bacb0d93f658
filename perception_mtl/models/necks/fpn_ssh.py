"""FPN + SSH context modules (RetinaFace / MOS neck): multi-scale maps of one width for the face heads."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from torch import Tensor, nn

from perception_mtl.registry import MODELS


def conv_bn(in_channels: int, out_channels: int, kernel: int, act: bool = True, slope: float = 0.0) -> ConvModule:
    """Same-padded conv (no bias) + BN (+ LeakyReLU with ``slope``; 0 is ReLU) as mmcv's ``ConvModule``.

    ``ConvModule`` initialises the conv Kaiming-normal (fan_out) for its activation (leaky_relu with
    ``slope``, else relu), and the BN to weight 1, bias 0.
    """
    if not act:
        act_cfg = None
    elif slope > 0:
        act_cfg = dict(type="LeakyReLU", negative_slope=slope)
    else:
        act_cfg = dict(type="ReLU")
    return ConvModule(in_channels, out_channels, kernel, padding=kernel // 2, norm_cfg=dict(type="BN"), act_cfg=act_cfg)


class SSHContext(nn.Module):
    """SSH context module: 3x3, 5x5 (two 3x3) and 7x7 (three 3x3) receptive fields, concatenated.

    Widths C/2 + C/4 + C/4 = C (C divisible by 4), ReLU after the concatenation, as in RetinaFace.
    """

    def __init__(self, channels: int, slope: float = 0.1) -> None:
        super().__init__()
        if channels % 4:
            raise ValueError(f"SSHContext: channels must be divisible by 4, got {channels}")
        half, quarter = channels // 2, channels // 4
        self.conv3 = conv_bn(channels, half, 3, act=False)
        self.conv5_1 = conv_bn(channels, quarter, 3, slope=slope)
        self.conv5_2 = conv_bn(quarter, quarter, 3, act=False)
        self.conv7_2 = conv_bn(quarter, quarter, 3, slope=slope)
        self.conv7_3 = conv_bn(quarter, quarter, 3, act=False)

    def forward(self, x: Tensor) -> Tensor:
        c5_1 = self.conv5_1(x)
        c7_2 = self.conv7_2(c5_1)
        return F.relu(torch.cat([self.conv3(x), self.conv5_2(c5_1), self.conv7_3(c7_2)], 1))


@MODELS.register_module()
class FPNSSH(nn.Module):
    """Top-down FPN to ``out_channels`` followed by one SSH context module per level.

    Lateral 1x1 conv-BN-LeakyReLU per input level; from the coarsest level down, the coarser
    output is upsampled (nearest) to the finer map, added, and merged by a 3x3 conv-BN-LeakyReLU
    (RetinaFace's FPN). Levels keep their strides.

    Args:
        in_channels: channels of each backbone level, finest first (MobileNetV2: 32, 96, 320).
        out_channels: width of every output level (64 in MOS; divisible by 4).
        slope: LeakyReLU slope (0.1 in RetinaFace for widths <= 64, else 0).
    """

    def __init__(self, in_channels: Sequence[int], out_channels: int = 64, slope: float = 0.1) -> None:
        super().__init__()
        if not in_channels:
            raise ValueError("FPNSSH: in_channels must list at least one level")
        self.in_channels = tuple(int(c) for c in in_channels)
        self.out_channels = int(out_channels)
        self.lateral = nn.ModuleList(conv_bn(c, out_channels, 1, slope=slope) for c in self.in_channels)
        self.merge = nn.ModuleList(conv_bn(out_channels, out_channels, 3, slope=slope) for _ in self.in_channels[:-1])
        self.ssh = nn.ModuleList(SSHContext(out_channels, slope) for _ in self.in_channels)

    def forward(self, feats: Sequence[Tensor]) -> list[Tensor]:
        """Args: feats, (B, C_l, H_l, W_l) per level, finest first. Returns (B, out_channels, H_l, W_l) per level."""
        if len(feats) != len(self.lateral):
            raise ValueError(f"FPNSSH: got {len(feats)} feature levels, built for {len(self.lateral)}")
        outs = [conv(f) for conv, f in zip(self.lateral, feats)]
        for level in range(len(outs) - 2, -1, -1):
            up = F.interpolate(outs[level + 1], size=outs[level].shape[-2:], mode="nearest")
            outs[level] = self.merge[level](outs[level] + up)
        return [ssh(o) for ssh, o in zip(self.ssh, outs)]
