"""Pillars: a PointNet per pillar, scattered onto the BEV grid, then a strided conv stem."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import Tensor, nn

from perception_mtl.registry import MODELS


@MODELS.register_module()
class PillarLidarEncoder(BaseModule):
    """Voxelised points -> BEV features: PointPillars' pillar feature net + scatter, then a conv stem.

    Every point is decorated with its offset to the mean of its pillar's points and to the
    pillar's centre, passed through Linear-BN-ReLU, and max-pooled over the pillar (padded points
    masked by multiplication, no boolean indexing). Pillars are scattered onto the (Y, X) grid
    with ``scatter_add`` over flat indices (padding voxels with no points go to a dropped dump
    cell), then ``log2(out_stride)`` stride-2 conv blocks and ``num_convs`` more blocks (mmcv
    ``ConvModule``: 3x3 conv, BN, ReLU) reach the BEV grid the other modalities use. Everything
    after mmcv's voxelisation is plain PyTorch and exports to ONNX.

    Args:
        in_channels: features per point (x, y, z, intensity, time lag = 5).
        feat_channels: pillar feature channels.
        out_channels: BEV output channels.
        voxel_size: (dx, dy, dz) of a pillar in metres; dz spans the whole z range.
        point_cloud_range: (x_min, y_min, z_min, x_max, y_max, z_max) of the voxelisation.
        out_stride: BEV downsampling after the scatter (a power of two; 1 = none).
        num_convs: conv blocks after the downsampling.
        bn_momentum: BatchNorm momentum (PointPillars' 0.01 suits long schedules; short ones need more).
        init_cfg: MMEngine init config.
    """

    def __init__(
        self,
        in_channels: int = 5,
        feat_channels: int = 64,
        out_channels: int = 128,
        voxel_size: Sequence[float] = (0.2, 0.2, 8.0),
        point_cloud_range: Sequence[float] = (-51.2, -51.2, -5.0, 51.2, 51.2, 3.0),
        out_stride: int = 1,
        num_convs: int = 1,
        bn_momentum: float = 0.01,
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        if out_stride < 1 or out_stride & (out_stride - 1):
            raise ValueError(f"encoders.lidar.out_stride must be a power of two, got {out_stride}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.voxel_size = [float(v) for v in voxel_size]
        self.point_cloud_range = [float(v) for v in point_cloud_range]
        self.grid_x = int(round((point_cloud_range[3] - point_cloud_range[0]) / voxel_size[0]))
        self.grid_y = int(round((point_cloud_range[4] - point_cloud_range[1]) / voxel_size[1]))
        if self.grid_x % out_stride or self.grid_y % out_stride:
            raise ValueError(
                f"encoders.lidar: grid {self.grid_y}x{self.grid_x} is not divisible by out_stride={out_stride}"
            )
        self.pfn_linear = nn.Linear(in_channels + 6, feat_channels, bias=False)
        self.pfn_norm = nn.BatchNorm1d(feat_channels, eps=1e-3, momentum=bn_momentum)
        norm_cfg = dict(type="BN", eps=1e-3, momentum=bn_momentum)
        strides = [2] * (out_stride.bit_length() - 1) + [1] * num_convs
        blocks, channels = [], feat_channels
        for stride in strides:
            blocks.append(ConvModule(channels, out_channels, 3, stride=stride, padding=1, norm_cfg=norm_cfg))
            channels = out_channels
        if channels != out_channels:
            raise ValueError("encoders.lidar: with out_stride=1 and num_convs=0, feat_channels must equal out_channels")
        self.bev_stem = nn.Sequential(*blocks)

    def pillar_features(self, voxels: Tensor, num_points: Tensor, coors: Tensor) -> Tensor:
        """(V, P, C) padded points, (V,) counts, (V, 4) [b, z, y, x] -> (V, feat_channels)."""
        num_v, max_p, _ = voxels.shape
        mask = (torch.arange(max_p, device=voxels.device).view(1, -1) < num_points.view(-1, 1)).to(voxels.dtype)
        mask = mask.unsqueeze(-1)  # (V, P, 1)
        xyz = voxels[..., :3]
        mean = (xyz * mask).sum(1, keepdim=True) / num_points.clamp(min=1).view(-1, 1, 1).to(voxels.dtype)
        x0, y0, z0 = self.point_cloud_range[:3]
        dx, dy, dz = self.voxel_size
        centre = torch.stack(
            [
                (coors[:, 3].to(voxels.dtype) + 0.5) * dx + x0,
                (coors[:, 2].to(voxels.dtype) + 0.5) * dy + y0,
                (coors[:, 1].to(voxels.dtype) + 0.5) * dz + z0,
            ],
            -1,
        ).unsqueeze(1)
        decorated = torch.cat([voxels, xyz - mean, xyz - centre], -1) * mask
        hidden = self.pfn_linear(decorated)
        hidden = self.pfn_norm(hidden.reshape(num_v * max_p, -1)).reshape(num_v, max_p, -1)
        return (hidden.relu() * mask).max(1).values

    def scatter(self, pillar_feats: Tensor, num_points: Tensor, coors: Tensor, batch_size: int) -> Tensor:
        """Pillars onto the grid: (V, C) -> (B, C, Y, X); pillars without points are dropped.

        Every (pillar, channel) value goes straight to its place in the channels-first canvas, so
        neither the forward nor the backward pass copies a (B, Y, X, C) canvas into (B, C, Y, X).
        """
        channels = pillar_feats.shape[1]
        cells = self.grid_y * self.grid_x
        coors = coors.long()
        cell = coors[:, 2] * self.grid_x + coors[:, 3]
        channel = torch.arange(channels, device=pillar_feats.device)
        index = (coors[:, :1] * channels + channel) * cells + cell.unsqueeze(1)  # (V, C)
        dump = batch_size * channels * cells
        index = torch.where((num_points > 0).unsqueeze(1), index, torch.full_like(index, dump))
        canvas = pillar_feats.new_zeros(dump + 1)
        if torch.onnx.is_in_onnx_export():
            # Pillars own distinct cells (only the dropped dump cell repeats), so a plain scatter equals the
            # sum and exports as ScatterElements without a reduction, which TensorRT 10 parses.
            return canvas.scatter(0, index.reshape(-1), pillar_feats.reshape(-1))[:dump].view(
                batch_size, channels, self.grid_y, self.grid_x
            )
        canvas = canvas.scatter_add(0, index.reshape(-1), pillar_feats.reshape(-1))
        return canvas[:dump].view(batch_size, channels, self.grid_y, self.grid_x)

    def forward(self, voxels: Tensor, num_points: Tensor, coors: Tensor, batch_size: int) -> Tensor:
        """Encodes a batch of voxelised point clouds.

        Args:
            voxels: (V, P, C) points per pillar, zero-padded, LiDAR frame (after BEV augmentation).
            num_points: (V,) valid points per pillar.
            coors: (V, 4) int [batch, z, y, x] pillar indices (mmcv's voxelisation order).
            batch_size: B.

        Returns:
            (B, out_channels, Y / out_stride, X / out_stride) BEV features, rows along y.
        """
        if voxels.shape[-1] != self.in_channels:
            raise ValueError(
                f"encoders.lidar.in_channels={self.in_channels} but the points have {voxels.shape[-1]} features"
            )
        feats = self.pillar_features(voxels, num_points, coors)
        return self.bev_stem(self.scatter(feats, num_points, coors, batch_size))
