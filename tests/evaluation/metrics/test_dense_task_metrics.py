"""Per-task metrics of the dense image model against hand-computed values."""

import math

import pytest
import torch

from perception_mtl.evaluation.metrics import DepthErrorMetric, EdgeF1Metric, SemSegIoUMetric


def test_sem_seg_iou_sums_one_confusion_matrix_over_the_split():
    metric = SemSegIoUMetric(ignore_index=255)
    metric.dataset_meta = dict(classes=("a", "b", "c"))
    metric.process({}, [dict(pred_sem_seg=torch.tensor([0, 0, 1, 1]), gt_sem_seg=torch.tensor([0, 1, 1, 255]))])
    metric.process({}, [dict(pred_sem_seg=torch.tensor([1, 0]), gt_sem_seg=torch.tensor([1, 0]))])
    result = metric.evaluate(2)
    # a: inter 2, union 3; b: inter 2, union 3; c: never present -> NaN, left out of the mean.
    assert result["seg/a_IoU"] == pytest.approx(2 / 3) and result["seg/b_IoU"] == pytest.approx(2 / 3)
    assert math.isnan(result["seg/c_IoU"]) and result["seg/mIoU"] == pytest.approx(2 / 3)
    assert result["seg/aAcc"] == pytest.approx(4 / 5)
    with pytest.raises(ValueError, match="class ids"):
        metric.process({}, [dict(pred_sem_seg=torch.tensor([7]), gt_sem_seg=torch.tensor([0]))])


def test_depth_errors_are_pixel_weighted_over_the_split():
    metric = DepthErrorMetric()
    metric.process({}, [dict(pred_depth=torch.tensor([1.0, 3.0]), gt_depth=torch.tensor([1.0, 2.0]))])
    metric.process({}, [dict(pred_depth=torch.tensor([4.0, 5.0]), gt_depth=torch.tensor([4.0, 0.0]))])
    result = metric.evaluate(2)
    assert result["depth/abs_rel"] == pytest.approx(0.5 / 3)
    assert result["depth/abs_err"] == pytest.approx(1 / 3)
    assert result["depth/rmse"] == pytest.approx(math.sqrt(1 / 3))
    assert result["depth/delta1"] == pytest.approx(2 / 3)  # 3/2 = 1.5 is not within 1.25


def test_edge_f1_with_tolerance():
    gt = torch.zeros(10, 10)
    gt[:, 4] = 1
    shifted = torch.zeros(10, 10)
    shifted[:, 5] = 0.9  # one pixel off: matched with tolerance 1, missed with 0
    tolerant, strict = EdgeF1Metric(tolerance=1), EdgeF1Metric(tolerance=0)
    for metric in (tolerant, strict):
        metric.process({}, [dict(pred_edge=shifted, gt_edge=gt)])
    assert tolerant.evaluate(1)["edge/ODS_F"] == pytest.approx(1.0)
    assert strict.evaluate(1)["edge/ODS_F"] == 0.0
    # Half the predicted edge pixels are spurious: precision 1/2, recall 1 -> F = 2/3.
    noisy = gt * 0.8
    noisy[:, 8] = 0.8
    metric = EdgeF1Metric(thresholds=(0.5,), tolerance=1)
    metric.process({}, [dict(pred_edge=noisy, gt_edge=gt)])
    result = metric.evaluate(1)
    assert result["edge/precision"] == pytest.approx(0.5) and result["edge/recall"] == pytest.approx(1.0)
    assert result["edge/ODS_F"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="thresholds"):
        EdgeF1Metric(thresholds=(0.0, 0.5))
