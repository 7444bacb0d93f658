"""LiDAR encoders: voxelised points -> BEV features."""

from .pillar_lidar_encoder import PillarLidarEncoder
from .sparse_voxel_lidar_encoder import SparseVoxelLidarEncoder

__all__ = ["PillarLidarEncoder", "SparseVoxelLidarEncoder"]
