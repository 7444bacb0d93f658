"""Registry cases of the heads of the BEV-raster model (TwoModalityMultiTaskNet): each loss equals its
formula written out by hand, every parameter learns, predictions have the documented fields."""

import torch
from mmengine.structures import BaseDataElement

from perception_mtl.registry import MODELS
from perception_mtl.testing import RegistryCase

GRID = 16


def _samples():
    samples = []
    for centres in ([[1.125, -2.125], [-3.0, 2.6]], [[0.2, 0.3]]):
        sample = BaseDataElement()
        sample.gt_centers = torch.tensor(centres)
        sample.gt_bev_seg = (torch.rand(2, GRID, GRID) > 0.6).float()
        samples.append(sample)
    return samples


def _check_trains(head, losses):
    sum(losses.values()).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head.parameters())


def check_center_heatmap_head(head):
    torch.manual_seed(0)
    feat = torch.randn(2, 8, GRID, GRID)
    samples = _samples()
    losses = head.loss(feat, samples)
    assert set(losses) == {"loss_heatmap", "loss_offset"}
    # CenterNet's penalty-reduced focal loss and the masked offset L1, per centre cell, by hand.
    out = head(feat).detach()
    heat, offset, mask = head.targets([s.gt_centers for s in samples], (GRID, GRID), "cpu")
    assert mask.sum() == 3 and heat.eq(1).sum() == 3 and heat.max() == 1
    prob = out[:, :1].sigmoid().clamp(1e-4, 1 - 1e-4)
    pos = heat.eq(1).float()
    focal = (
        -(prob.log() * (1 - prob) ** 2 * pos).sum() - ((1 - prob).log() * prob**2 * (1 - heat) ** 4 * (1 - pos)).sum()
    )
    assert torch.allclose(losses["loss_heatmap"], focal / 3, rtol=1e-5)
    l1 = ((out[:, 1:] - offset).abs() * mask).sum() / 3
    assert torch.allclose(losses["loss_offset"], l1, rtol=1e-5)
    _check_trains(head, losses)
    preds = head.predict(feat, _samples())
    for pred in preds:
        assert pred.pred_centers.shape == (len(pred.pred_scores), 2) and len(pred.pred_scores) <= head.max_detections
        assert (pred.pred_scores >= head.score_threshold).all()


def check_seg_head(head):
    torch.manual_seed(0)
    feat = torch.randn(2, 8, GRID, GRID)
    samples = _samples()
    losses = head.loss(feat, samples)
    assert set(losses) == {"loss_bce"}
    # Per-class sigmoid cross-entropy with foreground cells weighted 3, by hand.
    prob = head(feat).detach().sigmoid()
    target = torch.stack([s.gt_bev_seg for s in samples])
    bce = -(3.0 * target * prob.log() + (1 - target) * (1 - prob).log()).mean()
    assert torch.allclose(losses["loss_bce"], bce, rtol=1e-5)
    _check_trains(head, losses)
    pred = head.predict(feat, _samples())[0].pred_bev_seg
    assert pred.shape == (2, GRID, GRID) and 0 <= pred.min() and pred.max() <= 1
    wrong = _samples()
    for sample in wrong:
        sample.gt_bev_seg = torch.zeros(3, GRID, GRID)
    try:
        head.loss(feat, wrong)
    except ValueError as err:
        assert "gt_bev_seg" in str(err)
    else:
        raise AssertionError("a target with the wrong number of classes must be refused")


CASES = {
    "BEVCenterHeatmapHead": RegistryCase(
        MODELS,
        dict(type="BEVCenterHeatmapHead", in_channels=8, cell_m=0.5, heatmap_radius=2),
        check_center_heatmap_head,
    ),
    "BEVSegHead": RegistryCase(
        MODELS, dict(type="BEVSegHead", in_channels=8, num_classes=2, pos_weight=3.0), check_seg_head
    ),
}
