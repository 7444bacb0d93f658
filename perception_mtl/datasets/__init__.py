from .bad_sample_error import BadSampleError
from .nuscenes_mtl_dataset import NuScenesMTLDataset
from .toy_bev_dataset import ToyBEVDataset
from .transforms import *  # noqa: F401,F403  (registers the transforms)

__all__ = ["BadSampleError", "NuScenesMTLDataset", "ToyBEVDataset"]
