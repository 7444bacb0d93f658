"""Centre-distance average precision for BEV object detection (nuScenes' matching rule)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric

from perception_mtl.registry import METRICS


@METRICS.register_module()
class BEVCenterAPMetric(BaseMetric):
    """AP of predicted object centres, matched to ground truth by BEV centre distance.

    As in nuScenes detection, predictions over the whole split are taken in descending score
    order and each is matched to the closest still-unmatched ground-truth centre of its sample
    within the distance threshold. AP is the area under the precision envelope (all-point
    interpolation); ``mAP`` is the mean over thresholds. Reads ``pred_centers`` (K, 2) and
    ``pred_scores`` (K,) and ``gt_centers`` (N, 2), in metres, from each data sample.

    Args:
        distance_thresholds: match distances in metres.
        prefix: metric key prefix (default 'det').
    """

    default_prefix = "det"

    def __init__(
        self,
        distance_thresholds: Sequence[float] = (0.5, 1.0, 2.0),
        collect_device: str = "cpu",
        prefix: str | None = None,
    ) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if not distance_thresholds or min(distance_thresholds) <= 0:
            raise ValueError(f"BEVCenterAPMetric: distance_thresholds must be positive, got {distance_thresholds}")
        self.distance_thresholds = tuple(float(t) for t in distance_thresholds)

    def process(self, data_batch, data_samples: Sequence) -> None:
        for sample in data_samples:
            pred = _field(sample, "pred_centers").reshape(-1, 2)
            scores = _field(sample, "pred_scores").reshape(-1)
            gt = _field(sample, "gt_centers").reshape(-1, 2)
            if len(pred) != len(scores):
                raise ValueError(f"BEVCenterAPMetric: {len(pred)} pred_centers but {len(scores)} pred_scores")
            self.results.append((pred, scores, gt))

    def compute_metrics(self, results: list) -> dict[str, float]:
        metrics = {}
        for thr in self.distance_thresholds:
            metrics[f"AP@{thr:g}m"] = average_precision(results, thr)
        values = [v for v in metrics.values() if np.isfinite(v)]
        metrics["mAP"] = float(np.mean(values)) if values else float("nan")
        return metrics


def average_precision(results: list[tuple[np.ndarray, np.ndarray, np.ndarray]], threshold: float) -> float:
    """AP at one centre-distance threshold over ``[(pred (K, 2), scores (K,), gt (N, 2)), ...]``."""
    num_gt = sum(len(gt) for _, _, gt in results)
    if num_gt == 0:
        return float("nan")
    order = [(score, i, k) for i, (_, scores, _) in enumerate(results) for k, score in enumerate(scores)]
    order.sort(key=lambda x: -x[0])
    taken = [np.zeros(len(gt), dtype=bool) for _, _, gt in results]
    tp = np.zeros(len(order))
    for rank, (_, i, k) in enumerate(order):
        pred, _, gt = results[i]
        if len(gt) == 0:
            continue
        dist = np.linalg.norm(gt - pred[k], axis=1)
        dist[taken[i]] = np.inf
        j = int(np.argmin(dist))
        if dist[j] <= threshold:
            taken[i][j] = True
            tp[rank] = 1
    if len(order) == 0:
        return 0.0
    hits = np.cumsum(tp)
    recall = hits / num_gt
    precision = hits / np.arange(1, len(order) + 1)
    # Precision envelope, then the area under the recall steps.
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.diff(np.concatenate([[0.0], recall]))
    return float(np.sum(steps * envelope))


def _field(sample, name: str) -> np.ndarray:
    value = sample.get(name, None) if isinstance(sample, dict) else getattr(sample, name, None)
    if value is None:
        raise KeyError(f"BEVCenterAPMetric: data sample has no '{name}'")
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=np.float64)
