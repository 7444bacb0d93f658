"""Global BEV augmentation (rotation, scale, flips, translation) of points and boxes, as one matrix."""

from __future__ import annotations

import numpy as np
import torch
from mmcv.transforms import BaseTransform

from perception_mtl.registry import TRANSFORMS


def transform_boxes(boxes: torch.Tensor, matrix: np.ndarray) -> torch.Tensor:
    """Applies a similarity transform (rotation about z, uniform scale, axis flips, translation).

    Args:
        boxes: (M, 7 or 9) LiDAR boxes (x, y, z_bottom, l, w, h, yaw[, vx, vy]).
        matrix: (4, 4) transform; its upper-left 3x3 is ``scale * R`` with R a rotation about z,
            possibly composed with reflections of x and/or y.

    Returns:
        The transformed boxes, same shape. Yaw is re-derived from the transformed heading vector,
        which is exact under reflections too (a box is symmetric about its heading axis).
    """
    out = boxes.clone()
    if len(boxes) == 0:
        return out
    m = torch.as_tensor(matrix, dtype=boxes.dtype)
    scale = float(torch.linalg.det(m[:3, :3]).abs() ** (1.0 / 3.0))
    out[:, :3] = boxes[:, :3] @ m[:3, :3].T + m[:3, 3]
    out[:, 3:6] = boxes[:, 3:6] * scale
    heading = torch.stack([torch.cos(boxes[:, 6]), torch.sin(boxes[:, 6])], 1) @ m[:2, :2].T
    yaw = torch.atan2(heading[:, 1], heading[:, 0])
    out[:, 6] = torch.remainder(yaw + np.pi, 2 * np.pi) - np.pi
    if boxes.shape[1] > 7:
        out[:, 7:9] = boxes[:, 7:9] @ m[:2, :2].T
    return out


@TRANSFORMS.register_module()
class BEVAug(BaseTransform):
    """Random global rotation / scale / translation / flips of the LiDAR frame (training).

    The transform ``lidar_aug = F @ T @ S @ R`` (rotate about z, scale about the origin, translate,
    then flip x and/or y) is applied to ``points`` and ``gt_bboxes_3d`` and composed into
    ``results['lidar_aug']`` (4x4), which the map and occupancy loaders and the calibration
    structure read, so every BEV target moves together.

    Args:
        rot_range: yaw range in radians.
        scale_range: uniform scale range.
        translation_std: std of the (x, y, z) translation in metres.
        flip_x_prob: probability of mirroring x (front/back).
        flip_y_prob: probability of mirroring y (left/right).
        is_train: at test time the transform is the identity.
    """

    def __init__(
        self,
        rot_range: tuple[float, float] = (-0.3925, 0.3925),
        scale_range: tuple[float, float] = (0.95, 1.05),
        translation_std: tuple[float, float, float] = (0.0, 0.0, 0.0),
        flip_x_prob: float = 0.5,
        flip_y_prob: float = 0.5,
        is_train: bool = True,
    ) -> None:
        if scale_range[0] <= 0:
            raise ValueError(f"BEVAug: scale_range must be positive, got {scale_range}")
        self.rot_range = rot_range
        self.scale_range = scale_range
        self.translation_std = np.asarray(translation_std, dtype=np.float64)
        self.flip_x_prob = flip_x_prob
        self.flip_y_prob = flip_y_prob
        self.is_train = is_train

    def sample_matrix(self, rng=np.random) -> np.ndarray:
        if not self.is_train:
            return np.eye(4)
        angle = rng.uniform(*self.rot_range)
        scale = rng.uniform(*self.scale_range)
        rot = np.eye(4)
        rot[:2, :2] = [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
        trans = np.eye(4)
        trans[:3, 3] = rng.normal(0.0, 1.0, 3) * self.translation_std
        flip = np.diag([-1.0 if rng.uniform() < self.flip_x_prob else 1.0, 1.0, 1.0, 1.0])
        if rng.uniform() < self.flip_y_prob:
            flip[1, 1] = -1.0
        return flip @ trans @ np.diag([scale, scale, scale, 1.0]) @ rot

    def transform(self, results: dict) -> dict:
        return apply_bev_matrix(results, self.sample_matrix())


def apply_bev_matrix(results: dict, matrix: np.ndarray) -> dict:
    """Applies a 4x4 BEV transform to points and boxes and composes it into ``lidar_aug``."""
    if "points" in results and not np.allclose(matrix, np.eye(4)):
        points = results["points"]
        m = torch.as_tensor(matrix, dtype=points.tensor.dtype)
        points.tensor[:, :3] = torch.addmm(m[:3, 3], points.tensor[:, :3], m[:3, :3].T)
    boxes = results.get("gt_bboxes_3d")
    if boxes is not None:
        boxes.tensor = transform_boxes(boxes.tensor, matrix)
    previous = results.get("lidar_aug", np.eye(4))
    results["lidar_aug"] = (matrix @ previous).astype(np.float32)
    return results
