"""BEVSegIoUMetric on examples small enough to count by hand."""

import math

import pytest
import torch

from perception_mtl.evaluation import BEVSegIoUMetric


def _sample(pred, gt):
    return dict(pred_bev_seg=torch.tensor(pred, dtype=torch.float32), gt_bev_seg=torch.tensor(gt))


def test_iou_is_summed_over_the_split_and_maxed_over_thresholds():
    metric = BEVSegIoUMetric(classes=("a", "b"))
    # Class a: sample 1 has gt on 2 cells, predicted 0.9 and 0.5; a false positive of 0.4.
    # At t=0.35/0.4: hits {0.9, 0.5, 0.4} -> inter 2, union 3. At t=0.45/0.5: inter 2, union 2.
    # At t>0.5: only 0.9 -> inter 1, union 2.
    # Sample 2 for class a: gt on one cell predicted 0.3 (never hit) -> adds 1 to every union.
    # So best over thresholds for a = 2 / 3 (t in 0.45..0.5).
    # Class b: never in gt; predictions 0.2 everywhere -> union 0 -> ignored (NaN) in the mean.
    s1 = _sample([[[0.9, 0.5, 0.4, 0.0]], [[0.2] * 4]], [[[1, 1, 0, 0]], [[0] * 4]])
    s2 = _sample([[[0.3, 0.0, 0.0, 0.0]], [[0.2] * 4]], [[[1, 0, 0, 0]], [[0] * 4]])
    metric.process({}, [s1, s2])
    result = metric.compute_metrics(metric.results)
    assert result["a_IoU"] == pytest.approx(2 / 3)
    assert math.isnan(result["b_IoU"])
    assert result["mIoU"] == pytest.approx(2 / 3)


def test_mismatched_shapes_raise():
    metric = BEVSegIoUMetric()
    with pytest.raises(ValueError, match="pred_bev_seg"):
        metric.process({}, [_sample([[[0.1, 0.2]]], [[[1, 0, 0]]])])


def test_missing_field_is_named():
    metric = BEVSegIoUMetric()
    with pytest.raises(KeyError, match="gt_bev_seg"):
        metric.process({}, [dict(pred_bev_seg=torch.zeros(1, 2, 2))])
