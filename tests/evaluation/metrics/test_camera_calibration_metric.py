"""CameraCalibrationMetric on a hand-computed example."""

import numpy as np
import pytest
import torch

from perception_mtl.evaluation.metrics import CameraCalibrationMetric


def test_mae_per_parameter_over_the_evaluated_samples():
    # Two samples; errors fx 2 and 4 (MAE 3), mean gt fx (100 + 200) / 2 = 150 -> fx_pct = 2 %.
    gt = [
        torch.tensor([100.0, 100.0, 64.0, 48.0, 0.5, 4.0, 1.0, 1.5, 10.0, 0.1]),
        torch.tensor([200.0, 200.0, 64.0, 48.0, 0.3, 6.0, -1.0, 1.2, 12.0, 0.0]),
    ]
    pred = [
        torch.tensor([102.0, 99.0, 65.0, 48.0, 0.6, 3.0, 1.0, 1.5, 11.0, 0.1 + np.deg2rad(2.0)]),
        torch.tensor([196.0, 200.0, 63.0, 50.0, 0.3, 6.0, -0.5, 1.0, 12.0, 0.0]),
    ]
    metric = CameraCalibrationMetric()
    metric.dataset_meta = {}
    metric.process({}, [dict(pred_calib=pred[0], gt_calib=gt[0])])
    metric.process({}, [dict(pred_calib=pred[1], gt_calib=gt[1])])
    result = metric.evaluate(2)
    expected = dict(
        fx=3.0, fy=0.5, u0=1.0, v0=1.0, baseline=0.05, disparity=0.5, tx=0.25, ty=0.1, tz=0.5, pitch=1.0, fx_pct=2.0
    )
    for key, value in expected.items():
        assert result[f"calib/{key}"] == pytest.approx(value, rel=1e-5, abs=1e-6), key
    assert result["calib/num_samples"] == 2


def test_wrong_length_raises():
    metric = CameraCalibrationMetric()
    with pytest.raises(ValueError, match="10 values"):
        metric.process({}, [dict(pred_calib=torch.zeros(9), gt_calib=torch.zeros(10))])
    with pytest.raises(KeyError, match="pred_calib"):
        metric.process({}, [dict(gt_calib=torch.zeros(10))])
