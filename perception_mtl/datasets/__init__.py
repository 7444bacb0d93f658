from .aflw2000_dataset import AFLW2000Dataset
from .bad_sample_error import BadSampleError
from .cvgl_stereo_dataset import CVGLStereoDataset
from .face_dataset import FaceDataset
from .nuscenes_mtl_dataset import NuScenesMTLDataset
from .transforms import *  # noqa: F401,F403  (registers the transforms)

__all__ = ["BadSampleError", "NuScenesMTLDataset"]
__all__ += ["AFLW2000Dataset", "FaceDataset"]
__all__ += ["CVGLStereoDataset"]
