"""Loads a face image (BGR uint8, as RetinaFace / MOS train)."""

from __future__ import annotations

import cv2
from mmcv.transforms import BaseTransform

from perception_mtl.datasets.bad_sample_error import BadSampleError
from perception_mtl.registry import TRANSFORMS


@TRANSFORMS.register_module()
class LoadFaceImage(BaseTransform):
    """Reads ``results['img_path']`` into ``img`` (H, W, 3) uint8 BGR; sets ``ori_shape`` and ``img_shape``.

    Raises :class:`BadSampleError` naming the file when it is missing or unreadable.
    """

    def transform(self, results: dict) -> dict:
        path = results["img_path"]
        img = cv2.imread(path, cv2.IMREAD_COLOR)
        if img is None:
            raise BadSampleError(f"image missing or unreadable (sample {results.get('img_id')})", path=path)
        results["img"] = img
        results["ori_shape"] = results["img_shape"] = img.shape[:2]
        return results
