"""Occ3D-nuScenes occupancy mIoU (the definition of Occ3D's ``Metric_mIoU``).

One confusion matrix (num_classes x num_classes, rows = ground truth, columns = prediction) is summed
over every voxel of every sample of the split inside the evaluation mask (``mask_camera`` by default,
as the Occ3D benchmark). Per class ``IoU_c = C[c, c] / (sum_row C[c] + sum_col C[:, c] - C[c, c])``,
from the split-level counts, not a mean of per-sample IoUs. The mIoU is the NaN-mean of ``IoU_c``
over the non-free classes 0..16:

* a class with neither ground truth nor prediction in the split has 0 / 0 = NaN and is left out;
* a class with no ground truth that is predicted somewhere has IoU 0 and counts (Occ3D's nanmean);
* the free class (17) is never in the mean.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric

from perception_mtl.registry import METRICS

# Occ3D-nuScenes label ids: nuScenes-lidarseg's 16-class challenge index (alphabetical, as the devkit's
# LidarsegClassMapper: barrier 1, bicycle 2, bus 3, car 4, ...), 0 = others, 17 = free. This is the
# order in FlashOcc / BEVDet's ``Metric_mIoU``; the CVPR 2023 challenge script prints another order
# (car 1, truck 2, ...) over the same ids.
OCC3D_CLASSES = (
    "others",
    "barrier",
    "bicycle",
    "bus",
    "car",
    "construction_vehicle",
    "motorcycle",
    "pedestrian",
    "traffic_cone",
    "trailer",
    "truck",
    "driveable_surface",
    "other_flat",
    "sidewalk",
    "terrain",
    "manmade",
    "vegetation",
    "free",
)

MASK_KEYS = {"camera": "mask_camera", "lidar": "mask_lidar", None: None}


@METRICS.register_module()
class OccupancyMIoUMetric(BaseMetric):
    """Split-level occupancy mIoU over the non-free classes, Occ3D's definition (module docstring).

    Reads ``pred_occ`` (X, Y, Z) integer labels and ``gt_occ`` (dict with ``semantics`` (X, Y, Z), 17 =
    free, and the mask named by ``mask``) from each predicted data sample. Ground-truth labels outside
    [0, num_classes) are ignored (as Occ3D's 255); predictions outside it are an error.

    Keys (with the default prefix): ``occ/mIoU`` and ``occ/IoU_<class>`` for classes 0..16 (NaN when a
    class has neither ground truth nor prediction).

    Args:
        mask: ``'camera'`` (Occ3D benchmark), ``'lidar'`` or None (every voxel).
        num_classes: classes including free.
        free_label: the free class, left out of the mean and of the per-class keys.
        classes: names of the ``num_classes`` labels; else ``dataset_meta['occ_classes']`` when the
            dataset provides it, else ``OCC3D_CLASSES``.
        collect_device, prefix: MMEngine's.
    """

    default_prefix = "occ"

    def __init__(
        self,
        mask: str | None = "camera",
        num_classes: int = len(OCC3D_CLASSES),
        free_label: int = len(OCC3D_CLASSES) - 1,
        classes: Sequence[str] | None = None,
        collect_device: str = "cpu",
        prefix: str | None = None,
    ) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if mask not in MASK_KEYS:
            raise ValueError(f"OccupancyMIoUMetric: mask must be 'camera', 'lidar' or None, got {mask!r}")
        if not 0 <= free_label < num_classes:
            raise ValueError(f"OccupancyMIoUMetric: free_label {free_label} outside [0, {num_classes})")
        if classes is not None and len(classes) != num_classes:
            raise ValueError(f"OccupancyMIoUMetric: {len(classes)} class names for {num_classes} classes")
        self.mask_key = MASK_KEYS[mask]
        self.num_classes = num_classes
        self.free_label = free_label
        self.classes = tuple(classes) if classes is not None else None

    def process(self, data_batch, data_samples: Sequence) -> None:
        """Adds each sample's confusion matrix (num_classes, num_classes) int64 to ``self.results``."""
        n = self.num_classes
        for sample in data_samples:
            pred = torch.as_tensor(_field(sample, "pred_occ")).cpu().long()
            gt_occ = _field(sample, "gt_occ")
            gt = torch.as_tensor(gt_occ["semantics"]).cpu().long()
            if pred.shape != gt.shape:
                raise ValueError(
                    f"OccupancyMIoUMetric: pred_occ {tuple(pred.shape)} and gt_occ semantics {tuple(gt.shape)} differ"
                )
            if pred.numel() and (pred.min() < 0 or pred.max() >= n):
                raise ValueError(f"OccupancyMIoUMetric: pred_occ labels outside [0, {n})")
            keep = (gt >= 0) & (gt < n)
            if self.mask_key is not None:
                keep &= torch.as_tensor(gt_occ[self.mask_key]).cpu().bool()
            hist = torch.bincount(gt[keep] * n + pred[keep], minlength=n * n).reshape(n, n)
            self.results.append(hist.numpy())

    def compute_metrics(self, results: list) -> dict[str, float]:
        hist = np.sum(results, axis=0).astype(np.float64) if results else np.zeros((self.num_classes,) * 2)
        iou = self.per_class_iou(hist)
        names = self.classes or tuple((self.dataset_meta or {}).get("occ_classes", ()))
        if len(names) != self.num_classes:
            names = OCC3D_CLASSES if self.num_classes == len(OCC3D_CLASSES) else tuple(range(self.num_classes))
        scored = [c for c in range(self.num_classes) if c != self.free_label]
        metrics = {f"IoU_{names[c]}": float(iou[c]) for c in scored}
        values = iou[scored]
        metrics["mIoU"] = float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
        return metrics

    @staticmethod
    def per_class_iou(hist: np.ndarray) -> np.ndarray:
        """IoU per class from a confusion matrix (rows = gt, columns = prediction); NaN where the class has
        neither ground truth nor prediction."""
        inter = np.diag(hist)
        union = hist.sum(0) + hist.sum(1) - inter
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(union > 0, inter / np.maximum(union, 1), np.nan)


def _field(sample, name: str):
    value = sample.get(name, None) if isinstance(sample, dict) else getattr(sample, name, None)
    if value is None:
        raise KeyError(f"OccupancyMIoUMetric: data sample has no '{name}'")
    return value
