"""Random horizontal flip of a face sample with the annotation flip rules."""

from __future__ import annotations

import numpy as np
from mmcv.transforms import BaseTransform

from perception_mtl.registry import TRANSFORMS
from perception_mtl.structures.head_pose import flip_boxes, flip_landmarks, flip_pose


@TRANSFORMS.register_module()
class FaceRandomFlip(BaseTransform):
    """With probability ``prob`` mirrors ``img`` left-right and applies
    :mod:`perception_mtl.structures.head_pose`'s rules: boxes mirrored, landmarks mirrored with
    left/right swapped (invalid landmarks stay invalid), yaw and roll negated. Sets ``flip``.

    Args:
        prob: flip probability.
    """

    def __init__(self, prob: float = 0.5) -> None:
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"FaceRandomFlip: prob must be in [0, 1], got {prob}")
        self.prob = float(prob)

    def transform(self, results: dict) -> dict:
        flip = bool(np.random.rand() < self.prob)
        results["flip"] = flip
        if not flip:
            return results
        width = results["img"].shape[1]
        results["img"] = np.ascontiguousarray(results["img"][:, ::-1])
        if "gt_bboxes" in results:
            results["gt_bboxes"] = flip_boxes(results["gt_bboxes"], width).astype(np.float32)
            valid = results["gt_landmarks_valid"]
            flipped = flip_landmarks(results["gt_landmarks"], width).astype(np.float32)
            results["gt_landmarks"] = np.where(valid[:, None, None], flipped, -1.0).astype(np.float32)
            results["gt_poses"] = flip_pose(results["gt_poses"]).astype(np.float32)
        return results
