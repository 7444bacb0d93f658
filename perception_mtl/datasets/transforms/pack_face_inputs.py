"""Packs a face sample: the image as input, faces as an mmdet ``DetDataSample``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData

from perception_mtl.registry import TRANSFORMS

FACE_META_KEYS = ("img_id", "img_path", "ori_shape", "img_shape", "scale_factor", "img_offset", "flip")


@TRANSFORMS.register_module()
class PackFaceInputs(BaseTransform):
    """``inputs``: (3, H, W) uint8 BGR tensor. ``data_samples``: ``DetDataSample`` whose
    ``gt_instances`` hold ``bboxes`` (N, 4) xyxy, ``labels`` (N,) zeros, ``landmarks`` (N, 5, 2),
    ``landmarks_valid`` (N,) bool and ``poses`` (N, 3) yaw/pitch/roll degrees (NaN = unknown),
    all in network-input pixels; the metainfo keeps ``meta_keys``.
    """

    def __init__(self, meta_keys: Sequence[str] = FACE_META_KEYS) -> None:
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: dict) -> dict:
        img = torch.from_numpy(np.ascontiguousarray(results["img"].transpose(2, 0, 1)))
        sample = DetDataSample(metainfo={k: results[k] for k in self.meta_keys if k in results})
        gt = InstanceData()
        boxes = results.get("gt_bboxes", np.zeros((0, 4), np.float32))
        gt.bboxes = torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4)
        gt.labels = torch.zeros(len(gt.bboxes), dtype=torch.long)
        gt.landmarks = torch.as_tensor(results.get("gt_landmarks", np.zeros((0, 5, 2))), dtype=torch.float32)
        gt.landmarks_valid = torch.as_tensor(results.get("gt_landmarks_valid", np.zeros(0, bool)), dtype=torch.bool)
        gt.poses = torch.as_tensor(results.get("gt_poses", np.zeros((0, 3))), dtype=torch.float32).reshape(-1, 3)
        sample.gt_instances = gt
        return dict(inputs=img, data_samples=sample)
