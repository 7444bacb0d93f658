"""Task heads (det3d, bev_seg, occupancy, face_pose, camera_calib) and their losses/coders."""

from .bev_center_heatmap_head import BEVCenterHeatmapHead
from .bev_map_seg_head import BEVMapSegHead
from .bev_seg_head import BEVSegHead
from .camera_calibration_head import CameraCalibrationHead
from .center_det_head import CenterDetHead
from .dense_depth_head import DenseDepthHead
from .dense_edge_head import DenseEdgeHead
from .dense_prediction_head import DensePredictionHead
from .dense_sem_seg_head import DenseSemSegHead
from .face_pose_head import FacePoseHead
from .occupancy_head import OccupancyHead
from .packed_separate_head import PackedSeparateHead

__all__ = ["DenseDepthHead", "DenseEdgeHead", "DensePredictionHead", "DenseSemSegHead"]
__all__ += ["CenterDetHead", "PackedSeparateHead"]
__all__ += ["FacePoseHead"]
__all__ += ["CameraCalibrationHead"]
__all__ += ["BEVCenterHeatmapHead", "BEVSegHead"]
__all__ += ["BEVMapSegHead"]
__all__ += ["OccupancyHead"]
