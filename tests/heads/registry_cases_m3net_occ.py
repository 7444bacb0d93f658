"""Registry cases of the M3Net occupancy head and the Occ3D mIoU metric."""

import torch
from mmengine.structures import BaseDataElement

from perception_mtl.registry import METRICS, MODELS
from perception_mtl.testing import RegistryCase

GRID = (25, 25, 4)


def check_occupancy_head(head):
    feat = torch.randn(2, 8, 32, 32, requires_grad=True)
    samples = [
        BaseDataElement(
            gt_occ=dict(
                semantics=torch.randint(0, 18, GRID, dtype=torch.uint8),
                mask_camera=torch.rand(GRID) > 0.5,
                mask_lidar=torch.rand(GRID) > 0.5,
            )
        )
        for _ in range(2)
    ]
    losses = head.loss(feat, samples)
    assert set(losses) == {"loss_occ"} and torch.isfinite(losses["loss_occ"])
    losses["loss_occ"].backward()
    assert feat.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head.parameters())
    head.eval()
    pred = head.predict(feat.detach(), samples)[0].pred_occ
    assert pred.shape == GRID and pred.dtype == torch.uint8


def check_occupancy_miou_metric(metric):
    gt = torch.full((4, 4, 2), 17, dtype=torch.uint8)
    gt[0, 0, 0] = 4  # car
    pred = gt.clone()
    pred[1, 1, 1] = 4
    mask = torch.ones(4, 4, 2, dtype=torch.bool)
    metric.process({}, [dict(pred_occ=pred, gt_occ=dict(semantics=gt, mask_camera=mask))])
    result = metric.evaluate(1)
    assert result["occ/IoU_car"] == 0.5 and result["occ/mIoU"] == 0.5  # free is not in the mean


CASES = {
    "OccupancyHead": RegistryCase(
        MODELS,
        dict(
            type="OccupancyHead",
            in_channels=8,
            bev_range=[-51.2, -51.2, -5.0, 51.2, 51.2, 3.0],
            grid_size=GRID,
            feat_channels=8,
        ),
        check_occupancy_head,
    ),
    "OccupancyMIoUMetric": RegistryCase(METRICS, dict(type="OccupancyMIoUMetric"), check_occupancy_miou_metric),
}
