"""Camera-to-BEV view transforms and BEV pooling."""

from .bev_pool import bev_pool, bev_pool_cumsum, bev_pool_indices, grid_shape
from .lss_depth_transform import LSSDepthTransform

__all__ = ["LSSDepthTransform", "bev_pool", "bev_pool_cumsum", "bev_pool_indices", "grid_shape"]
