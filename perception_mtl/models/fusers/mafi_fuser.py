"""Modality-adaptive feature integration (M3Net's MAFI fuser): a fused map re-weighted per channel by
a squeeze-excitation attention from each modality."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import Tensor, nn

from perception_mtl.registry import MODELS


@MODELS.register_module()
class MAFIFuser(BaseModule):
    """``fused * att_1 + ... + fused * att_M`` with ``fused = ConvBNReLU3x3(cat(feats))``.

    Each modality ``m`` has its own 3x3 conv-BN-ReLU branch to ``out_channels``, and from that
    branch a squeeze-excitation channel attention ``att_m = sigmoid(Conv1x1(GlobalAvgPool(branch_m(feat_m))))``
    of shape (B, out_channels, 1, 1). The fused map is scaled by each modality's own attention and
    the results are summed, so a modality that is informative for a channel (in this scene) raises that
    channel. With two modalities (camera, LiDAR): ``out = fused * att_cam + fused * att_lidar``, which is
    computed as ``fused * (att_cam + att_lidar)`` (one multiply over the map).

    The public M3Net code (``SE_Blockv2``) applies the LiDAR attention to both branches, so its camera
    attention is never used; here every modality's attention is its own. The sum of attentions lies in
    (0, M) and starts near M / 2 (about 1 for two modalities), so the fuser starts close to a ConvFuser.

    Same call as :class:`ConvFuser` (a list of maps in the model's modality order, camera first), so
    configs swap the two. Exportable: convolutions, a global average pool and sigmoids, no
    data-dependent shapes.

    Args:
        in_channels: channels of each modality's BEV map, in the model's modality order (camera, lidar).
        out_channels: fused channels.
        norm_cfg: mmcv norm config of the 3x3 convs; default BatchNorm (``dict(type='BN')``).
        init_cfg: MMEngine init config.

    State-dict layout: ``fuse`` (the concatenation's ConvModule), ``modality_convs.<m>`` (the branches)
    and ``modality_attentions.<m>`` (global average pool, then a 1x1 ConvModule with a sigmoid), with
    ``m`` the index in ``in_channels``.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        out_channels: int,
        norm_cfg: dict | None = None,
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        self.in_channels = list(in_channels)
        self.out_channels = out_channels
        norm_cfg = norm_cfg or dict(type="BN")
        self.fuse = ConvModule(sum(self.in_channels), out_channels, 3, padding=1, norm_cfg=norm_cfg)
        self.modality_convs = nn.ModuleList(
            ConvModule(c, out_channels, 3, padding=1, norm_cfg=norm_cfg) for c in self.in_channels
        )
        self.modality_attentions = nn.ModuleList(
            nn.Sequential(
                nn.AdaptiveAvgPool2d(1),
                ConvModule(out_channels, out_channels, 1, norm_cfg=None, act_cfg=dict(type="Sigmoid")),
            )
            for _ in self.in_channels
        )

    def modality_attention(self, feats: Sequence[Tensor]) -> list[Tensor]:
        """Each modality's channel attention: one (B, out_channels, 1, 1) tensor in (0, 1) per input map."""
        return [att(conv(f)) for conv, att, f in zip(self.modality_convs, self.modality_attentions, feats)]

    def forward(self, feats: Sequence[Tensor]) -> Tensor:
        """Args: feats, one (B, C_i, Y, X) map per modality, all with the same (Y, X).
        Returns (B, out_channels, Y, X)."""
        if [f.shape[1] for f in feats] != self.in_channels:
            raise ValueError(f"fuser.in_channels={self.in_channels} but got {[f.shape[1] for f in feats]}")
        fused = self.fuse(torch.cat(list(feats), 1))
        return fused * torch.stack(self.modality_attention(feats)).sum(0)
