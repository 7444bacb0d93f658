from .bev_aug import BEVAug
from .face_random_flip import FaceRandomFlip
from .face_resize_pad import FaceResizePad
from .gt_paste_sampler import GTPasteSampler
from .load_bev_map_segmentation import MAP_CLASSES, LoadBEVMapSegmentation
from .load_face_image import LoadFaceImage
from .load_lidar_points_with_sweeps import LoadLidarPointsWithSweeps
from .load_multi_view_images import NUSCENES_CAMERAS, LoadMultiViewImages
from .load_occupancy import LoadOccupancy
from .multi_view_image_aug import MultiViewImageAug
from .pack_face_inputs import PackFaceInputs
from .pack_mtl_inputs import PackMTLInputs

__all__ = [
    "BEVAug",
    "LoadBEVMapSegmentation",
    "LoadLidarPointsWithSweeps",
    "LoadMultiViewImages",
    "LoadOccupancy",
    "MAP_CLASSES",
    "MultiViewImageAug",
    "NUSCENES_CAMERAS",
    "PackMTLInputs",
]
__all__ += ["FaceRandomFlip", "FaceResizePad", "LoadFaceImage", "PackFaceInputs"]
__all__ += ["GTPasteSampler"]
