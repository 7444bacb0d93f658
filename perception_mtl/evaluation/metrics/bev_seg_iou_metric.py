"""BEV segmentation IoU in BEVFusion's map protocol.

Per class, intersections and unions are summed over the whole split (not averaged per sample)
at each score threshold in 0.35..0.65 (step 0.05); a class scores its best threshold's IoU and
the headline ``mIoU`` is the mean over classes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric

from perception_mtl.registry import METRICS


@METRICS.register_module()
class BEVSegIoUMetric(BaseMetric):
    """Dataset-level IoU per class, max over thresholds, mean over classes.

    Reads ``pred_bev_seg`` (K, H, W) probabilities and ``gt_bev_seg`` (K, H, W) in {0, 1} from
    each predicted data sample.

    Args:
        thresholds: score thresholds to sweep; BEVFusion's 0.35..0.65 by default.
        classes: class names for the per-class keys; taken from ``dataset_meta`` when omitted.
        prefix: metric key prefix (MMEngine convention).
    """

    default_prefix = "bev_seg"

    def __init__(
        self,
        thresholds: Sequence[float] = (0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65),
        classes: Sequence[str] | None = None,
        collect_device: str = "cpu",
        prefix: str | None = None,
    ) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.thresholds = torch.tensor(list(thresholds), dtype=torch.float32)
        self.classes = tuple(classes) if classes is not None else None

    def process(self, data_batch, data_samples: Sequence) -> None:
        for sample in data_samples:
            pred = _field(sample, "pred_bev_seg").float().cpu()
            gt = _field(sample, "gt_bev_seg").cpu().bool()
            if pred.shape != gt.shape:
                raise ValueError(
                    f"BEVSegIoUMetric: pred_bev_seg {tuple(pred.shape)} and gt_bev_seg {tuple(gt.shape)} "
                    f"differ for sample {_field(sample, 'metainfo', None)}"
                )
            # (T, K, H*W) binarised predictions for every threshold at once.
            hit = pred.flatten(1)[None] >= self.thresholds[:, None, None]
            gt_flat = gt.flatten(1)[None]
            inter = (hit & gt_flat).sum(-1)
            union = (hit | gt_flat).sum(-1)
            self.results.append((inter.numpy(), union.numpy()))

    def compute_metrics(self, results: list) -> dict[str, float]:
        inter = np.sum([r[0] for r in results], axis=0).astype(np.float64)  # (T, K)
        union = np.sum([r[1] for r in results], axis=0).astype(np.float64)
        iou = np.where(union > 0, inter / np.maximum(union, 1), np.nan)
        best = np.nanmax(np.where(np.isnan(iou), -1.0, iou), axis=0)
        best = np.where(best < 0, np.nan, best)  # classes absent from both pred and gt
        classes = self.classes or tuple((self.dataset_meta or {}).get("classes", ()))
        if len(classes) != len(best):
            classes = tuple(f"class_{k}" for k in range(len(best)))
        metrics = {f"{name}_IoU": float(v) for name, v in zip(classes, best)}
        metrics["mIoU"] = float(np.nanmean(best)) if np.isfinite(best).any() else float("nan")
        return metrics


def _field(sample, name: str, default=KeyError):
    value = sample.get(name, None) if isinstance(sample, dict) else getattr(sample, name, None)
    if value is None:
        if default is KeyError:
            raise KeyError(f"BEVSegIoUMetric: data sample has no '{name}'")
        return default
    return value
