"""CenterDetHead: targets decode back to the boxes they came from; label-order and config checks."""

import math

import pytest
import torch
from mmengine.registry import init_default_scope

from perception_mtl.registry import MODELS
from perception_mtl.testing import bev


@pytest.fixture(autouse=True)
def scope():
    init_default_scope("perception_mtl")


def perfect_outputs(head, gt_instances):
    """Raw head outputs that encode exactly the head's own training targets."""
    heatmaps, anno_boxes, inds, masks = head.get_targets(gt_instances)
    outputs = []
    for task_id, heatmap in enumerate(heatmaps):
        batch, _, height, width = heatmap.shape
        maps = torch.zeros(batch, 10, height * width)
        for b in range(batch):
            keep = masks[task_id][b].bool()
            maps[b][:, inds[task_id][b][keep]] = anno_boxes[task_id][b][keep].T
        maps = maps.view(batch, 10, height, width)
        logits = torch.logit(heatmap.clamp(1e-4, 1 - 1e-4))
        outputs.append([dict(heatmap=logits, reg=maps[:, :2], height=maps[:, 2:3], dim=maps[:, 3:6],
                             rot=maps[:, 6:8], vel=maps[:, 8:10])])  # fmt: skip
    return tuple(outputs)


def test_targets_decode_back_to_the_ground_truth():
    """Catches row/column (x/y), centre-height and yaw-encoding mismatches between targets and decoding."""
    head = MODELS.build(bev.head_cfg(32))
    samples = bev.random_batch()["data_samples"]
    gts = [s.gt_instances_3d for s in samples]
    results = head.predict_by_feat(perfect_outputs(head, gts), [s.metainfo for s in samples])
    for gt, result in zip(gts, results):
        keep = result.scores_3d > 0.9
        pred_boxes, pred_labels = result.bboxes_3d.tensor[keep], result.labels_3d[keep]
        assert len(pred_boxes) == len(gt.bboxes_3d)
        for box, label in zip(gt.bboxes_3d.tensor, gt.labels_3d):
            dist = (pred_boxes[:, :2] - box[:2]).norm(dim=1)
            i = int(dist.argmin())
            assert dist[i] < 1e-3 and pred_labels[i] == label
            assert torch.allclose(pred_boxes[i, 2:6], box[2:6], atol=1e-3)  # bottom z, l, w, h
            assert abs(math.remainder(float(pred_boxes[i, 6] - box[6]), 2 * math.pi)) < 1e-3
            assert torch.allclose(pred_boxes[i, 7:9], box[7:9], atol=1e-3)


def test_label_order_must_match_the_class_groups():
    cfg = bev.head_cfg(32)
    cfg["class_names"] = list(reversed(bev.CLASSES))
    with pytest.raises(ValueError, match="heads.det.tasks"):
        MODELS.build(cfg)
    cfg = bev.head_cfg(32)
    cfg.pop("train_cfg")
    with pytest.raises(ValueError, match="heads.det.train_cfg"):
        MODELS.build(cfg)


def test_heatmap_prior_survives_init_weights():
    head = MODELS.build(bev.head_cfg(32))
    head.init_weights()
    for task_head in head.task_heads:
        assert torch.allclose(task_head.heatmap[-1].bias, torch.tensor(-2.19))
    with torch.no_grad():
        (group,) = head(torch.randn(1, 32, bev.GRID, bev.GRID))[0]
    assert group["heatmap"].sigmoid().mean().item() == pytest.approx(0.1, abs=0.03)
