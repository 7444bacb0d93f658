"""Per-parameter mean absolute error of camera calibration (the UGCL / CVGL protocol, correctly averaged)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric

from perception_mtl.registry import METRICS

from .sem_seg_iou_metric import sample_field

PARAM_NAMES = ("fx", "fy", "u0", "v0", "baseline", "disparity", "tx", "ty", "tz", "pitch")


@METRICS.register_module()
class CameraCalibrationMetric(BaseMetric):
    """MAE of each calibration parameter over the evaluated samples.

    Reads ``pred_calib`` and ``gt_calib`` (10,) per sample in the order fx, fy, u0, v0 (pixels),
    baseline (m), disparity (pixels), tx, ty, tz (m), pitch (radians). Keys: one per parameter,
    ``sum |pred - gt| / N`` with N the number of evaluated samples (the original notebooks divided
    the test-set sum by the training-set size), pitch in degrees; ``fx_pct`` =
    100 * MAE(fx) / mean(gt fx) (the error as a share of the mean focal length of the evaluated
    samples); ``num_samples``.

    Args:
        prefix: metric key prefix.
    """

    default_prefix = "calib"

    def __init__(self, collect_device: str = "cpu", prefix: str | None = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)

    def process(self, data_batch, data_samples: Sequence) -> None:
        for sample in data_samples:
            pred = (
                torch.as_tensor(sample_field(sample, "pred_calib", "CameraCalibrationMetric")).cpu().double().flatten()
            )
            gt = torch.as_tensor(sample_field(sample, "gt_calib", "CameraCalibrationMetric")).cpu().double().flatten()
            if pred.numel() != len(PARAM_NAMES) or gt.numel() != len(PARAM_NAMES):
                raise ValueError(
                    f"CameraCalibrationMetric: pred_calib and gt_calib need {len(PARAM_NAMES)} values, got "
                    f"{pred.numel()} and {gt.numel()}"
                )
            self.results.append(np.concatenate([(pred - gt).abs().numpy(), gt[:1].numpy()]))

    def compute_metrics(self, results: list) -> dict[str, float]:
        if not results:
            return {name: float("nan") for name in (*PARAM_NAMES, "fx_pct")} | dict(num_samples=0)
        table = np.stack(results)
        mae = table[:, : len(PARAM_NAMES)].mean(0)
        metrics = {name: float(v) for name, v in zip(PARAM_NAMES, mae)}
        metrics["pitch"] = float(np.rad2deg(mae[PARAM_NAMES.index("pitch")]))
        metrics["fx_pct"] = float(100.0 * mae[0] / table[:, -1].mean())
        metrics["num_samples"] = len(table)
        return metrics
