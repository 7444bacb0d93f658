"""Camera-to-BEV view transforms and BEV pooling."""

from .bev_pool import bev_pool, bev_pool_cumsum, bev_pool_indices, grid_shape
from .lss_depth_transform import LSSDepthTransform
from .sparse_bev_pool import SparseBEVPoolPlan, sparse_bev_pool
from .sparse_bev_pool_cache import SparseBEVPoolCache

__all__ = [
    "LSSDepthTransform",
    "SparseBEVPoolCache",
    "SparseBEVPoolPlan",
    "bev_pool",
    "bev_pool_cumsum",
    "bev_pool_indices",
    "grid_shape",
    "sparse_bev_pool",
]
