"""Concatenate the modalities' BEV maps and mix them with a 3x3 conv (BEVFusion's ConvFuser)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule
from torch import Tensor, nn

from perception_mtl.registry import MODELS


@MODELS.register_module()
class ConvFuser(BaseModule):
    """``ReLU(Norm(Conv3x3(cat(feats))))``, BatchNorm by default.

    Args:
        in_channels: channels of each modality's BEV map, in the model's modality order
            (camera, lidar).
        out_channels: fused channels.
        zero_init_inputs: indices (into ``in_channels``) of inputs whose conv weights start at zero,
            so the fused model starts as the model of the other inputs and a modality that learns
            slowly (the camera, in short schedules) enters as a residual. A substitute for
            BEVFusion's initialisation of the fused model from a LiDAR-only checkpoint.
        norm_cfg: mmcv norm config after the conv; default BatchNorm (``dict(type='BN')``).
            ``dict(type='GN', num_groups=4)`` keeps samples independent (e.g. for DDP parity tests).
        init_cfg: MMEngine init config.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        out_channels: int,
        zero_init_inputs: Sequence[int] = (),
        norm_cfg: dict | None = None,
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        self.in_channels = list(in_channels)
        self.out_channels = out_channels
        bad = [i for i in zero_init_inputs if not 0 <= i < len(self.in_channels)]
        if bad:
            raise ValueError(
                f"fuser.zero_init_inputs={list(zero_init_inputs)}: indices {bad} are not inputs "
                f"(in_channels has {len(self.in_channels)})"
            )
        self.zero_init_inputs = sorted(set(zero_init_inputs))
        # A plain Sequential (not ConvModule) keeps the state-dict keys fuse.0 / fuse.1 of existing checkpoints.
        self.fuse = nn.Sequential(
            nn.Conv2d(sum(in_channels), out_channels, 3, padding=1, bias=False),
            build_norm_layer(norm_cfg or dict(type="BN"), out_channels)[1],
            nn.ReLU(inplace=True),
        )
        self.zero_input_weights()

    def zero_input_weights(self) -> None:
        """Zeroes the conv weights that read the inputs named by ``zero_init_inputs``."""
        starts = [sum(self.in_channels[:i]) for i in range(len(self.in_channels))]
        with torch.no_grad():
            for i in self.zero_init_inputs:
                self.fuse[0].weight[:, starts[i] : starts[i] + self.in_channels[i]].zero_()

    def init_weights(self) -> None:
        # After any init_cfg of this module or a parent (mmengine runs children's init_weights last).
        super().init_weights()
        self.zero_input_weights()

    def forward(self, feats: Sequence[Tensor]) -> Tensor:
        """Args: feats, one (B, C_i, Y, X) map per modality. Returns (B, out_channels, Y, X)."""
        if [f.shape[1] for f in feats] != self.in_channels:
            raise ValueError(f"fuser.in_channels={self.in_channels} but got {[f.shape[1] for f in feats]}")
        return self.fuse(torch.cat(list(feats), 1))
