"""Edge detection F-measure at the optimal dataset scale (ODS), with a pixel matching tolerance."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.evaluator import BaseMetric

from perception_mtl.registry import METRICS

from .sem_seg_iou_metric import sample_field


@METRICS.register_module()
class EdgeF1Metric(BaseMetric):
    """ODS F-measure of edge maps, BSDS-style but with tolerance matching by dilation.

    At each threshold, a predicted edge pixel is correct when a target edge lies within
    ``tolerance`` pixels (Chebyshev distance), and a target edge pixel is recalled when a predicted
    one does; counts are summed over the split. Keys: ``ODS_F`` (best F over thresholds), and
    ``precision``, ``recall`` and ``threshold`` at that threshold. Unlike BSDS there is no one-to-one
    matching or thinning, so thick predictions are not penalised beyond their precision.

    Args:
        thresholds: probability thresholds to sweep (default 0.05 .. 0.95).
        tolerance: matching radius in pixels.
        prefix: metric key prefix.
    """

    default_prefix = "edge"

    def __init__(
        self,
        thresholds: Sequence[float] | None = None,
        tolerance: int = 1,
        collect_device: str = "cpu",
        prefix: str | None = None,
    ) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if tolerance < 0:
            raise ValueError(f"EdgeF1Metric: tolerance must be >= 0, got {tolerance}")
        values = np.arange(0.05, 0.951, 0.05) if thresholds is None else np.asarray(list(thresholds), dtype=np.float64)
        if values.size == 0 or (values <= 0).any() or (values >= 1).any():
            raise ValueError(f"EdgeF1Metric: thresholds must be in (0, 1), got {values.tolist()}")
        self.thresholds = torch.as_tensor(values, dtype=torch.float32)
        self.tolerance = tolerance

    def _dilate(self, x: torch.Tensor) -> torch.Tensor:
        r = self.tolerance
        return F.max_pool2d(x.float(), 2 * r + 1, stride=1, padding=r) > 0 if r else x

    def process(self, data_batch, data_samples: Sequence) -> None:
        for sample in data_samples:
            prob = torch.as_tensor(sample_field(sample, "pred_edge", "EdgeF1Metric")).cpu().float()
            gt = torch.as_tensor(sample_field(sample, "gt_edge", "EdgeF1Metric")).cpu() > 0.5
            if prob.shape != gt.shape or prob.dim() != 2:
                raise ValueError(
                    f"EdgeF1Metric: pred_edge {tuple(prob.shape)} and gt_edge {tuple(gt.shape)} must be (H, W)"
                )
            pred = prob[None] >= self.thresholds[:, None, None]  # (T, H, W)
            pred_near = self._dilate(pred[:, None])[:, 0]
            gt_near = self._dilate(gt[None, None])[0, 0]
            self.results.append(
                np.stack(
                    [
                        (pred & gt_near).sum((1, 2)).numpy(),  # predicted pixels with a target nearby
                        pred.sum((1, 2)).numpy(),
                        (gt[None] & pred_near).sum((1, 2)).numpy(),  # target pixels with a prediction nearby
                        np.full(len(self.thresholds), int(gt.sum())),
                    ]
                ).astype(np.float64)
            )

    def compute_metrics(self, results: list) -> dict[str, float]:
        tp_pred, n_pred, tp_gt, n_gt = np.sum(results, axis=0)
        precision = np.where(n_pred > 0, tp_pred / np.maximum(n_pred, 1), 0.0)
        recall = np.where(n_gt > 0, tp_gt / np.maximum(n_gt, 1), 0.0)
        f = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0.0)
        best = int(np.argmax(f))
        return dict(
            ODS_F=float(f[best]),
            precision=float(precision[best]),
            recall=float(recall[best]),
            threshold=float(self.thresholds[best]),
        )
