"""Resizes a face image to fit a fixed square and pads it (boxes and landmarks follow)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from mmcv.transforms import BaseTransform

from perception_mtl.registry import TRANSFORMS


@TRANSFORMS.register_module()
class FaceResizePad(BaseTransform):
    """Scales the longer side to ``size`` (aspect kept), then pads bottom/right to ``size`` x ``size``.

    With ``scale_range=(lo, hi)`` (training), the scale is further multiplied by a random factor
    in that range and the scaled image is placed at a random offset (cropped when larger than
    the square); faces whose centre leaves the square are dropped, the others clipped to it.
    ``scale_factor`` (w, h) and ``img_offset`` (x, y) record the mapping
    ``input = original * scale + offset``; predictions are mapped back by the model, and evaluation
    uses no random scale (offset 0).

    Updates ``img``, ``img_shape``, ``gt_bboxes``, ``gt_landmarks`` and the per-face arrays.

    Args:
        size: output side in pixels.
        pad_val: BGR fill (the data preprocessor's mean, so padding normalises to 0).
        scale_range: optional random zoom range.
    """

    def __init__(
        self, size: int = 640, pad_val: Sequence[float] = (104, 117, 123), scale_range: Sequence[float] | None = None
    ) -> None:
        if size < 8:
            raise ValueError(f"FaceResizePad: size must be >= 8, got {size}")
        self.size = int(size)
        self.pad_val = tuple(float(v) for v in pad_val)
        self.scale_range = tuple(scale_range) if scale_range is not None else None

    def transform(self, results: dict) -> dict:
        img = results["img"]
        h, w = img.shape[:2]
        scale = self.size / max(h, w)
        offset = np.zeros(2)
        if self.scale_range is not None:
            scale *= np.random.uniform(*self.scale_range)
        new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
        resized = cv2.resize(img, (new_w, new_h), interpolation=cv2.INTER_LINEAR if scale > 1 else cv2.INTER_AREA)
        sx, sy = new_w / w, new_h / h
        if self.scale_range is not None:
            offset = np.array(
                [
                    np.random.uniform(min(0, self.size - new_w), max(0, self.size - new_w)),
                    np.random.uniform(min(0, self.size - new_h), max(0, self.size - new_h)),
                ]
            ).round()
        canvas = np.empty((self.size, self.size, 3), img.dtype)
        canvas[:] = np.array(self.pad_val, np.float64).round().astype(img.dtype)
        ox, oy = int(offset[0]), int(offset[1])
        src_x0, src_y0 = max(0, -ox), max(0, -oy)
        dst_x0, dst_y0 = max(0, ox), max(0, oy)
        cw = min(new_w - src_x0, self.size - dst_x0)
        ch = min(new_h - src_y0, self.size - dst_y0)
        canvas[dst_y0 : dst_y0 + ch, dst_x0 : dst_x0 + cw] = resized[src_y0 : src_y0 + ch, src_x0 : src_x0 + cw]
        results["img"] = canvas
        results["img_shape"] = canvas.shape[:2]
        results["scale_factor"] = (sx, sy)
        results["img_offset"] = (float(ox), float(oy))
        if "gt_bboxes" in results:
            boxes = results["gt_bboxes"] * np.array([sx, sy, sx, sy], np.float32) + np.array([ox, oy, ox, oy])
            lms = results["gt_landmarks"] * np.array([sx, sy], np.float32) + np.array([ox, oy])
            valid_lm = results["gt_landmarks_valid"]
            lms = np.where(valid_lm[:, None, None], lms, -1.0)
            if self.scale_range is not None:
                centre = (boxes[:, :2] + boxes[:, 2:]) / 2
                keep = ((centre >= 0) & (centre < self.size)).all(1)
                boxes = np.clip(boxes[keep], 0, self.size)
                for key in ("gt_landmarks_valid", "gt_poses"):
                    results[key] = results[key][keep]
                lms = lms[keep]
            results["gt_bboxes"] = boxes.astype(np.float32)
            results["gt_landmarks"] = lms.astype(np.float32)
        return results
