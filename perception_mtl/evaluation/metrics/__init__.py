from .bev_center_ap_metric import BEVCenterAPMetric
from .bev_seg_iou_metric import BEVSegIoUMetric
from .camera_calibration_metric import CameraCalibrationMetric
from .depth_error_metric import DepthErrorMetric
from .edge_f1_metric import EdgeF1Metric
from .face_metric import FaceMetric
from .nuscenes_detection_metric import NuScenesDetectionMetric
from .occupancy_miou_metric import OccupancyMIoUMetric
from .sem_seg_iou_metric import SemSegIoUMetric

__all__ = ["BEVSegIoUMetric"]
__all__ += ["DepthErrorMetric", "EdgeF1Metric", "SemSegIoUMetric"]
__all__ += ["BEVCenterAPMetric"]
__all__ += ["NuScenesDetectionMetric"]
__all__ += ["FaceMetric"]
__all__ += ["CameraCalibrationMetric"]
__all__ += ["OccupancyMIoUMetric"]
