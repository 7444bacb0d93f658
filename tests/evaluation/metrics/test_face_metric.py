import numpy as np
import pytest
import torch
from mmdet.evaluation.functional import average_precision
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import bbox_overlaps
from mmengine.structures import InstanceData

from perception_mtl.evaluation.metrics.face_metric import FaceMetric


def _sample(gt_boxes, pred_boxes, scores, gt_lm=None, pred_lm=None, gt_poses=None, pred_poses=None, scale=1.0):
    n, m = len(gt_boxes), len(pred_boxes)
    s = DetDataSample(metainfo=dict(scale_factor=(scale, scale)))
    gt = InstanceData()
    gt.bboxes = torch.tensor(gt_boxes, dtype=torch.float32).reshape(-1, 4) * scale  # network-input pixels
    gt.landmarks = (torch.tensor(gt_lm, dtype=torch.float32) if gt_lm is not None else torch.zeros(n, 5, 2)) * scale
    gt.landmarks_valid = torch.ones(n, dtype=torch.bool) if gt_lm is not None else torch.zeros(n, dtype=torch.bool)
    gt.poses = torch.tensor(gt_poses, dtype=torch.float32) if gt_poses is not None else torch.full((n, 3), np.nan)
    s.gt_instances = gt
    pred = InstanceData()
    pred.bboxes = torch.tensor(pred_boxes, dtype=torch.float32).reshape(-1, 4)
    pred.scores = torch.tensor(scores, dtype=torch.float32)
    pred.landmarks = torch.tensor(pred_lm, dtype=torch.float32) if pred_lm is not None else torch.zeros(m, 5, 2)
    pred.poses = torch.tensor(pred_poses, dtype=torch.float32) if pred_poses is not None else torch.zeros(m, 3)
    s.pred_instances = pred
    return s.to_dict()


def _evaluate(metric, samples):
    metric.process({}, samples)
    return metric.compute_metrics(metric.results)


def _reference_voc_ap(recall, precision):
    """The hand-written VOC all-point AP that mmdet's ``average_precision(mode='area')`` replaced."""
    r = np.concatenate([[0.0], recall, [1.0]])
    p = np.concatenate([[0.0], precision, [0.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]
    steps = np.nonzero(r[1:] != r[:-1])[0]
    return float(((r[steps + 1] - r[steps]) * p[steps + 1]).sum())


def _reference_iou(a, b):
    lt, rb = np.maximum(a[:, None, :2], b[None, :, :2]), np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area_a, area_b = (a[:, 2:] - a[:, :2]).clip(0).prod(-1), (b[:, 2:] - b[:, :2]).clip(0).prod(-1)
    return inter / np.maximum(area_a[:, None] + area_b[None] - inter, 1e-12)


def test_voc_all_point_ap():
    # TP, FP, TP over 2 faces: precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1 -> envelope 1 then 2/3
    ap = average_precision(np.array([0.5, 0.5, 1.0]), np.array([1.0, 0.5, 2 / 3]), mode="area")
    assert ap == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert average_precision(np.array([0.5]), np.array([1.0]), mode="area") == pytest.approx(0.5)
    # '11points' (VOC2007) would give (6 * 1 + 5 * 2/3) / 11 here, not the all-point value
    assert average_precision(np.array([0.5, 0.5, 1.0]), np.array([1.0, 0.5, 2 / 3]), "11points") != pytest.approx(ap)
    # equal to the hand-written AP on random curves (mmdet returns float32)
    rng = np.random.default_rng(0)
    for _ in range(20):
        hits = rng.random(50) < 0.6
        tp, fp = np.cumsum(hits), np.cumsum(~hits)
        recall, precision = tp / (hits.sum() + rng.integers(0, 5)), tp / np.maximum(tp + fp, 1)
        ap = average_precision(recall, precision, mode="area")
        assert ap == pytest.approx(_reference_voc_ap(recall, precision), rel=1e-6)


def test_iou_equals_the_hand_written_one():
    rng = np.random.default_rng(1)
    xy = rng.random((2, 30, 2)) * 100
    boxes = np.concatenate([xy, xy + 1 + rng.random((2, 30, 2)) * 60], -1)
    iou = bbox_overlaps(torch.from_numpy(boxes[0]), torch.from_numpy(boxes[1])).numpy()
    assert iou.dtype == np.float64 and (iou > 0).sum() > 30
    np.testing.assert_allclose(iou, _reference_iou(boxes[0], boxes[1]), rtol=1e-12, atol=1e-15)


def test_ap_splits_ignore_small_faces_and_use_the_right_denominator():
    big1, big2 = [0, 0, 60, 60], [100, 0, 160, 60]  # size 60: counted in every split
    small = [200, 0, 230, 30]  # size 30: medium and hard only
    samples = [
        _sample(
            [big1, big2, small],
            [big1, [300, 300, 360, 360], big2, small, [400, 400, 420, 420]],
            [0.9, 0.8, 0.7, 0.6, 0.5],
        )
    ]
    m = _evaluate(FaceMetric(size_splits=dict(easy=50.0, medium=25.0, hard=0.0)), samples)
    # easy: TP(.9) FP(.8, 60 px) TP(.7); .6 matches an ignored face; .5 is a 20 px false positive -> ignored
    assert m["AP_easy"] == pytest.approx(0.5 + 0.5 * 2 / 3)
    # medium: 3 faces; TP FP TP TP, the 20 px detection ignored -> P = 1, 1/2, 2/3, 3/4 at R = 1/3 .. 1
    assert m["AP_medium"] == pytest.approx(1 / 3 * 1.0 + 2 / 3 * 0.75)
    # hard: every detection counts; the 20 px one is a last FP, which does not change the envelope
    assert m["AP_hard"] == pytest.approx(m["AP_medium"])


def test_nme_is_normalised_by_box_size_and_pose_mae_skips_large_angles():
    gt_lm = np.tile(np.array([[10.0, 10.0], [30.0, 10.0], [20.0, 20.0], [12.0, 30.0], [28.0, 30.0]]), (2, 1, 1))
    pred_lm = gt_lm + np.array([2.0, 0.0])  # 2 px error on every point
    samples = [
        _sample(
            [[0, 0, 10, 40], [50, 0, 70, 20]],  # sizes sqrt(10 * 40) = 20 and 20
            [[0, 0, 10, 40], [50, 0, 70, 20], [200, 200, 220, 220]],
            [0.9, 0.8, 0.3],  # the 0.3 detection is below score_thr
            gt_lm=gt_lm,
            pred_lm=np.concatenate([pred_lm, gt_lm[:1]]),
            gt_poses=[[10.0, -20.0, 5.0], [120.0, 0.0, 0.0]],  # the second face has |yaw| >= 99
            pred_poses=[[13.0, -16.0, 5.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]],
            scale=2.0,  # GT is stored in input pixels and mapped back
        )
    ]
    m = _evaluate(FaceMetric(score_thr=0.5), samples)
    assert m["NME"] == pytest.approx(2.0 / 20.0)
    assert (m["yaw_MAE"], m["pitch_MAE"], m["roll_MAE"]) == pytest.approx((3.0, 4.0, 0.0))
    assert m["pose_MAE"] == pytest.approx(7.0 / 3)
    assert m["recall_at_thr"] == pytest.approx(1.0)


def test_pose_mae_per_size_split_counts_only_faces_of_that_size():
    samples = [
        _sample(
            [[0, 0, 60, 60], [100, 0, 120, 20]],  # sizes 60 and 20
            [[0, 0, 60, 60], [100, 0, 120, 20]],
            [0.9, 0.8],
            gt_poses=[[10.0, 0.0, 0.0], [0.0, 0.0, 0.0]],
            pred_poses=[[13.0, 0.0, 0.0], [30.0, 30.0, 30.0]],
        )
    ]
    m = _evaluate(FaceMetric(size_splits=dict(easy=50.0, hard=0.0)), samples)
    assert m["pose_MAE_easy"] == pytest.approx(1.0)  # the 60 px face only: (3 + 0 + 0) / 3
    assert m["pose_MAE_hard"] == pytest.approx((3.0 + 90.0) / 6)
    assert m["pose_MAE_hard"] == pytest.approx(m["pose_MAE"])
