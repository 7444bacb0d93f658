"""OccupancyMIoUMetric on hand-made volumes: Occ3D's split-level confusion-matrix mIoU over classes 0..16."""

import math

import pytest
import torch
from mmdet3d.structures import Det3DDataSample
from mmengine.evaluator import Evaluator
from mmengine.registry import init_default_scope

from perception_mtl.evaluation.metrics.occupancy_miou_metric import OCC3D_CLASSES
from perception_mtl.registry import METRICS

FREE, CAR, TRUCK, BUS, PED = 17, 4, 10, 3, 7
SHAPE = (4, 4, 2)


@pytest.fixture(autouse=True)
def scope():
    init_default_scope("perception_mtl")


def _volume(labels: dict[tuple, int]) -> torch.Tensor:
    vol = torch.full(SHAPE, FREE, dtype=torch.uint8)
    for index, label in labels.items():
        vol[index] = label
    return vol


def _sample(pred, gt, mask_camera=None, mask_lidar=None):
    ones = torch.ones(SHAPE, dtype=torch.bool)
    gt_occ = dict(
        semantics=gt,
        mask_camera=ones if mask_camera is None else mask_camera,
        mask_lidar=ones if mask_lidar is None else mask_lidar,
    )
    return dict(pred_occ=pred, gt_occ=gt_occ)


def _evaluate(samples, **kwargs):
    metric = METRICS.build(dict(type="OccupancyMIoUMetric", **kwargs))
    metric.process({}, samples)
    return metric.evaluate(len(samples))


def test_class_names_follow_the_lidarseg_index():
    assert OCC3D_CLASSES[CAR] == "car" and OCC3D_CLASSES[TRUCK] == "truck" and OCC3D_CLASSES[1] == "barrier"
    assert len(OCC3D_CLASSES) == 18 and OCC3D_CLASSES[FREE] == "free"


def test_perfect_prediction_scores_one_and_keys_are_named():
    gt = _volume({(0, 0, 0): CAR, (1, 1, 0): CAR, (2, 2, 1): TRUCK})
    result = _evaluate([_sample(gt.clone(), gt)])
    assert result["occ/mIoU"] == 1.0
    assert result["occ/IoU_car"] == 1.0 and result["occ/IoU_truck"] == 1.0
    assert "occ/IoU_free" not in result and len([k for k in result if k.startswith("occ/IoU_")]) == 17


def test_class_absent_from_gt_and_prediction_is_excluded_not_zero():
    gt = _volume({(0, 0, 0): CAR, (0, 1, 0): CAR, (3, 3, 1): TRUCK})
    pred = _volume({(0, 0, 0): CAR, (3, 3, 1): TRUCK})  # one car voxel predicted free
    result = _evaluate([_sample(pred, gt)])
    assert math.isnan(result["occ/IoU_bus"])
    assert result["occ/IoU_car"] == pytest.approx(0.5) and result["occ/IoU_truck"] == 1.0
    assert result["occ/mIoU"] == pytest.approx((0.5 + 1.0) / 2)  # not divided by 17


def test_class_predicted_without_ground_truth_counts_as_zero():
    gt = _volume({(0, 0, 0): CAR})
    pred = _volume({(0, 0, 0): CAR, (1, 1, 1): BUS})  # a bus where the truth is free
    result = _evaluate([_sample(pred, gt)])
    assert result["occ/IoU_bus"] == 0.0 and result["occ/IoU_car"] == 1.0
    assert result["occ/mIoU"] == pytest.approx(0.5)


def test_all_wrong_gives_zero():
    gt = _volume({(0, 0, 0): CAR, (1, 0, 0): TRUCK})
    pred = _volume({(0, 0, 0): TRUCK, (1, 0, 0): PED})
    result = _evaluate([_sample(pred, gt)])
    assert result["occ/mIoU"] == 0.0
    assert result["occ/IoU_car"] == 0.0 and result["occ/IoU_truck"] == 0.0 and result["occ/IoU_pedestrian"] == 0.0


def test_free_is_left_out_of_the_mean():
    gt = _volume({(0, 0, 0): CAR})
    # Half the volume predicted car: car IoU 1 / 16, free IoU 16 / 31; only car enters the mean.
    pred = torch.full(SHAPE, CAR, dtype=torch.uint8)
    pred[2:] = FREE
    result = _evaluate([_sample(pred, gt)])
    assert result["occ/mIoU"] == pytest.approx(1 / 16)


def test_confusion_accumulates_over_the_split_not_a_mean_of_samples():
    gt1 = _volume({(0, 0, 0): CAR})
    gt2 = _volume({(0, 0, 0): CAR, (0, 1, 0): CAR, (0, 2, 0): CAR})
    samples = [_sample(gt1.clone(), gt1), _sample(_volume({(0, 0, 0): CAR}), gt2)]
    # Per sample: car IoU 1 and 1/3 (mean 2/3); over the split: 2 hits / 4 car voxels = 0.5.
    result = _evaluate(samples)
    assert result["occ/IoU_car"] == pytest.approx(0.5) and result["occ/mIoU"] == pytest.approx(0.5)
    # process() called once per batch accumulates the same way.
    metric = METRICS.build(dict(type="OccupancyMIoUMetric"))
    metric.process({}, samples[:1])
    metric.process({}, samples[1:])
    assert metric.evaluate(2)["occ/mIoU"] == pytest.approx(0.5)


@pytest.mark.parametrize("mask", ["camera", "lidar", None])
def test_only_voxels_in_the_chosen_mask_count(mask):
    gt = _volume({(0, 0, 0): CAR, (3, 3, 1): TRUCK})
    pred = _volume({(0, 0, 0): CAR, (3, 3, 1): PED})  # the truck is missed
    hide_truck = torch.ones(SHAPE, dtype=torch.bool)
    hide_truck[3, 3, 1] = False
    ones = torch.ones(SHAPE, dtype=torch.bool)
    cam, lidar = (hide_truck, ones) if mask == "camera" else (ones, hide_truck)
    result = _evaluate([_sample(pred, gt, cam, lidar)], mask=mask)
    if mask is None:
        assert result["occ/IoU_truck"] == 0.0 and result["occ/mIoU"] == pytest.approx(1 / 3)
    else:
        assert math.isnan(result["occ/IoU_truck"]) and result["occ/mIoU"] == 1.0


def test_runs_through_mmengine_evaluator_with_data_samples():
    gt = _volume({(0, 0, 0): CAR, (1, 1, 0): TRUCK})
    pred = _volume({(0, 0, 0): CAR})
    sample = Det3DDataSample()
    sample.pred_occ = pred
    sample.gt_occ = dict(semantics=gt, mask_camera=torch.ones(SHAPE, dtype=torch.bool))
    evaluator = Evaluator(dict(type="OccupancyMIoUMetric"))
    evaluator.process([sample], {})
    result = evaluator.evaluate(1)
    assert result["occ/IoU_car"] == 1.0 and result["occ/IoU_truck"] == 0.0 and result["occ/mIoU"] == 0.5


def test_class_names_and_bad_input():
    names = tuple(f"c{k}" for k in range(18))
    gt = _volume({(0, 0, 0): CAR})
    assert _evaluate([_sample(gt, gt)], classes=names)["occ/IoU_c4"] == 1.0
    with pytest.raises(ValueError, match="outside"):
        _evaluate([_sample(torch.full(SHAPE, 18, dtype=torch.uint8), gt)])
    with pytest.raises(ValueError, match="differ"):
        _evaluate([_sample(torch.zeros(2, 2, 2, dtype=torch.uint8), gt)])
    with pytest.raises(ValueError, match="mask"):
        METRICS.build(dict(type="OccupancyMIoUMetric", mask="radar"))
