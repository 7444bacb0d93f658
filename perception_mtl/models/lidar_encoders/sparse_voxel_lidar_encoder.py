"""Sparse 3D voxel encoder through mmdet3d's SparseEncoder (spconv or mmcv sparse ops: CUDA only)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from mmengine.model import BaseModule
from mmengine.registry import MODELS as MMENGINE_MODELS
from torch import Tensor

from perception_mtl.registry import MODELS


def sparse_conv_backend() -> str | None:
    """Name of a usable sparse-convolution backend on this machine, or None."""
    from mmdet3d.models.layers.spconv import IS_SPCONV2_AVAILABLE

    if not torch.cuda.is_available():
        return None
    if IS_SPCONV2_AVAILABLE:
        return "spconv2"
    from mmcv.ops import get_compiling_cuda_version

    return "mmcv" if get_compiling_cuda_version() != "not available" else None


@MODELS.register_module()
class SparseVoxelLidarEncoder(BaseModule):
    """Voxelised points -> mean voxel features -> mmdet3d ``SparseEncoder`` -> BEV (height folded into C).

    This is BEVFusion's LiDAR branch (0.075 m voxels, ``sparse_shape`` [1440, 1440, 41]). mmdet3d
    runs it on spconv 2.x or on mmcv's sparse ops; both have CUDA kernels only, so on a CPU tensor
    ``forward`` raises a ``RuntimeError`` naming the config key and the CPU alternative
    (``PillarLidarEncoder``) instead of failing deep inside mmcv.

    Args:
        in_channels: features per point.
        sparse_shape: (Z, Y, X) voxel grid, as mmdet3d's SparseEncoder expects it.
        encoder: extra ``mmdet3d.SparseEncoder`` arguments (channels, paddings, block type, ...).
        init_cfg: MMEngine init config.

    Attributes:
        out_channels: channels of the BEV output (SparseEncoder's output channels times its
            remaining height).
    """

    def __init__(
        self,
        in_channels: int = 5,
        sparse_shape: Sequence[int] = (41, 1440, 1440),
        encoder: dict | None = None,
        out_channels: int = 256,
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        self.in_channels = in_channels
        self.out_channels = out_channels
        cfg = dict(type="mmdet3d.SparseEncoder", in_channels=in_channels, sparse_shape=list(sparse_shape))
        cfg.update(encoder or {})
        self.encoder = MMENGINE_MODELS.build(cfg)

    def forward(self, voxels: Tensor, num_points: Tensor, coors: Tensor, batch_size: int) -> Tensor:
        """Args/returns as :meth:`PillarLidarEncoder.forward`; the output grid is SparseEncoder's."""
        if not voxels.is_cuda or sparse_conv_backend() is None:
            raise RuntimeError(
                "encoders.lidar: SparseVoxelLidarEncoder needs sparse convolutions with CUDA kernels "
                f"(spconv 2.x or mmcv built with CUDA); got tensors on {voxels.device} and backend "
                f"{sparse_conv_backend()}. On CPU use encoders.lidar.type='PillarLidarEncoder'."
            )
        mean = voxels.sum(1) / num_points.clamp(min=1).view(-1, 1).to(voxels.dtype)
        bev = self.encoder(mean, coors.int(), batch_size)
        if bev.shape[1] != self.out_channels:
            raise ValueError(f"encoders.lidar.out_channels={self.out_channels} but SparseEncoder gives {bev.shape[1]}")
        return bev
