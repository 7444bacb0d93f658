"""Registry case of the M3Net / BEVFusion map segmentation head."""

import torch
from mmengine.structures import BaseDataElement

from perception_mtl.registry import MODELS
from perception_mtl.testing import RegistryCase


def check_bev_map_seg_head(head):
    feat = torch.randn(2, 8, 32, 32, requires_grad=True)
    samples = [BaseDataElement(gt_bev_seg=(torch.rand(6, 20, 20) > 0.5).to(torch.uint8)) for _ in range(2)]
    losses = head.loss(feat, samples)
    assert set(losses) == {"loss_focal"} and torch.isfinite(losses["loss_focal"])
    losses["loss_focal"].backward()
    assert feat.grad.abs().sum() > 0
    head.eval()
    assert head.predict(feat.detach(), samples)[0].pred_bev_seg.shape == (6, 20, 20)


CASES = {
    "BEVMapSegHead": RegistryCase(
        MODELS,
        dict(
            type="BEVMapSegHead",
            in_channels=8,
            bev_range=[-51.2, -51.2, -5.0, 51.2, 51.2, 3.0],
            xbound=(-50.0, 50.0, 5.0),
            ybound=(-50.0, 50.0, 5.0),
            feat_channels=8,
        ),
        check_bev_map_seg_head,
    ),
}
