from . import camera_geometry
from .head_pose import euler_to_matrix, flip_boxes, flip_landmarks, flip_pose, matrix_to_euler
from .sensor_calibration import SensorCalibration

__all__ = ["SensorCalibration"]
__all__ += ["euler_to_matrix", "flip_boxes", "flip_landmarks", "flip_pose", "matrix_to_euler"]
__all__ += ["camera_geometry"]
