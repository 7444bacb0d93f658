"""Monocular depth errors over a whole split (the NYUv2 / KITTI error set)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric

from perception_mtl.registry import METRICS

from .sem_seg_iou_metric import sample_field


@METRICS.register_module()
class DepthErrorMetric(BaseMetric):
    """Depth errors over every valid pixel of the split (pixel-weighted, not per-image means).

    Reads ``pred_depth`` and ``gt_depth`` (H, W) in metres; a pixel is valid when its target is in
    (min_depth, max_depth]. Keys: ``abs_rel`` mean |d - d*| / d*, ``abs_err`` mean |d - d*| (m),
    ``rmse`` (m), ``delta1`` share of pixels with max(d / d*, d* / d) < 1.25.

    Args:
        min_depth: targets at or below are invalid (0 marks sky / no return).
        max_depth: targets above are invalid.
        prefix: metric key prefix.
    """

    default_prefix = "depth"

    def __init__(
        self, min_depth: float = 1e-3, max_depth: float = 1e4, collect_device: str = "cpu", prefix: str | None = None
    ) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if not 0 <= min_depth < max_depth:
            raise ValueError(f"DepthErrorMetric: need 0 <= min_depth < max_depth; got {min_depth}, {max_depth}")
        self.min_depth, self.max_depth = min_depth, max_depth

    def process(self, data_batch, data_samples: Sequence) -> None:
        for sample in data_samples:
            pred = torch.as_tensor(sample_field(sample, "pred_depth", "DepthErrorMetric")).cpu().double().flatten()
            gt = torch.as_tensor(sample_field(sample, "gt_depth", "DepthErrorMetric")).cpu().double().flatten()
            if pred.shape != gt.shape:
                raise ValueError(f"DepthErrorMetric: pred_depth has {pred.numel()} pixels, gt_depth {gt.numel()}")
            valid = (gt > self.min_depth) & (gt <= self.max_depth)
            p, g = pred[valid].clamp(min=1e-6), gt[valid]
            ratio = torch.maximum(p / g, g / p)
            self.results.append(
                np.array(
                    [
                        valid.sum().item(),
                        ((p - g).abs() / g).sum().item(),
                        (p - g).abs().sum().item(),
                        ((p - g) ** 2).sum().item(),
                        (ratio < 1.25).sum().item(),
                    ]
                )
            )

    def compute_metrics(self, results: list) -> dict[str, float]:
        n, abs_rel, abs_err, sq, delta1 = np.sum(results, axis=0)
        if n == 0:
            nan = float("nan")
            return dict(abs_rel=nan, abs_err=nan, rmse=nan, delta1=nan)
        return dict(abs_rel=abs_rel / n, abs_err=abs_err / n, rmse=float(np.sqrt(sq / n)), delta1=delta1 / n)
