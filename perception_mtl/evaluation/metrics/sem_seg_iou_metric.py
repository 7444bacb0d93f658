"""Semantic segmentation IoU over a whole split (confusion-matrix protocol of mmseg / Cityscapes)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric

from perception_mtl.registry import METRICS


def sample_field(sample, name: str, metric: str):
    """``name`` from a data sample given as dict (what MMEngine's evaluator passes) or object."""
    value = sample.get(name, None) if isinstance(sample, dict) else getattr(sample, name, None)
    if value is None:
        raise KeyError(f"{metric}: data sample has no '{name}'")
    return value


@METRICS.register_module()
class SemSegIoUMetric(BaseMetric):
    """Per-class IoU from one confusion matrix summed over every pixel of the split.

    Reads ``pred_sem_seg`` and ``gt_sem_seg`` (H, W) class ids; pixels whose target is
    ``ignore_index`` are skipped. Keys: ``mIoU`` (mean over classes present in prediction or
    target), ``aAcc`` (pixel accuracy) and ``<class>_IoU``.

    Args:
        num_classes: K; taken from ``dataset_meta['classes']`` when omitted.
        ignore_index: target value to skip.
        classes: class names for the per-class keys (default from ``dataset_meta``).
        prefix: metric key prefix.
    """

    default_prefix = "seg"

    def __init__(
        self,
        num_classes: int | None = None,
        ignore_index: int = 255,
        classes: Sequence[str] | None = None,
        collect_device: str = "cpu",
        prefix: str | None = None,
    ) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if num_classes is not None and num_classes < 2:
            raise ValueError(f"SemSegIoUMetric: num_classes must be >= 2, got {num_classes}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.classes = tuple(classes) if classes is not None else None

    def _class_names(self) -> tuple[str, ...]:
        names = self.classes or tuple((self.dataset_meta or {}).get("classes", ()))
        if self.num_classes is not None and len(names) != self.num_classes:
            names = tuple(f"class_{k}" for k in range(self.num_classes))
        if not names:
            raise ValueError("SemSegIoUMetric: set num_classes or give the dataset a 'classes' metainfo")
        return names

    def process(self, data_batch, data_samples: Sequence) -> None:
        k = len(self._class_names())
        for sample in data_samples:
            pred = torch.as_tensor(sample_field(sample, "pred_sem_seg", "SemSegIoUMetric")).cpu().long().flatten()
            gt = torch.as_tensor(sample_field(sample, "gt_sem_seg", "SemSegIoUMetric")).cpu().long().flatten()
            if pred.shape != gt.shape:
                raise ValueError(f"SemSegIoUMetric: pred_sem_seg has {pred.numel()} pixels, gt_sem_seg {gt.numel()}")
            valid = gt != self.ignore_index
            if ((gt[valid] < 0) | (gt[valid] >= k)).any() or ((pred < 0) | (pred >= k)).any():
                raise ValueError(f"SemSegIoUMetric: class ids outside [0, {k}) (ignore_index={self.ignore_index})")
            confusion = torch.bincount(gt[valid] * k + pred[valid], minlength=k * k).reshape(k, k)
            self.results.append(confusion.numpy())

    def compute_metrics(self, results: list) -> dict[str, float]:
        confusion = np.sum(results, axis=0).astype(np.float64)  # (K, K): rows target, columns prediction
        inter = np.diag(confusion)
        union = confusion.sum(0) + confusion.sum(1) - inter
        iou = np.where(union > 0, inter / np.maximum(union, 1), np.nan)
        metrics = {f"{name}_IoU": float(v) for name, v in zip(self._class_names(), iou)}
        metrics["mIoU"] = float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan")
        metrics["aAcc"] = float(inter.sum() / max(confusion.sum(), 1))
        return metrics
