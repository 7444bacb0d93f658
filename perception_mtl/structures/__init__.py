from . import camera_geometry
from .head_pose import euler_to_matrix, flip_boxes, flip_landmarks, flip_pose, matrix_to_euler
from .rotations import euler_xyz_to_matrix, euler_xyz_to_matrix_torch, matrix_to_euler_xyz, matrix_to_euler_xyz_torch
from .sensor_calibration import SensorCalibration

__all__ = ["SensorCalibration"]
__all__ += ["euler_to_matrix", "flip_boxes", "flip_landmarks", "flip_pose", "matrix_to_euler"]
__all__ += ["euler_xyz_to_matrix", "euler_xyz_to_matrix_torch", "matrix_to_euler_xyz", "matrix_to_euler_xyz_torch"]
__all__ += ["camera_geometry"]
