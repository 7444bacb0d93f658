"""Data generators, one subpackage per generated world.

- ``driving``: the synthetic nuScenes-format dataset (city map, scenes, ray-cast LiDAR, rendered
  cameras, map expansion, Occ3D labels), written to disk by ``SyntheticNuScenesWriter``.
- ``faces``: rendered faces with landmarks and known head pose (RetinaFace / AFLW2000 formats).
- ``stereo``: rendered rectified road stereo pairs with known calibration (CVGL layout).
- ``dense_scenes``: rendered scenes with exact semantics, depth and edges (generated on the fly).
- ``bev_rasters``: camera + LiDAR BEV rasters for the two-modality gradient-balancing demo
  (generated on the fly).

The readers of the written formats live in ``perception_mtl.datasets``.
"""

from .bev_rasters import TwoModalityBEVDataset
from .dense_scenes import SyntheticDenseScenes

__all__ = ["SyntheticDenseScenes", "TwoModalityBEVDataset"]
