from .bad_sample_error import BadSampleError
from .nuscenes_mtl_dataset import NuScenesMTLDataset
from .synthetic_dense_scenes import SyntheticDenseScenes
from .toy_bev_dataset import ToyBEVDataset
from .transforms import *  # noqa: F401,F403  (registers the transforms)
from .two_modality_bev_dataset import TwoModalityBEVDataset

__all__ = ["BadSampleError", "NuScenesMTLDataset", "ToyBEVDataset"]
__all__ += ["SyntheticDenseScenes"]
__all__ += ["TwoModalityBEVDataset"]
