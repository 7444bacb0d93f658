"""Registry cases of the 3D detection head and its packed output branches."""

import torch

from perception_mtl.registry import MODELS
from perception_mtl.testing import RegistryCase, bev


def check_center_det_head(head):
    head.init_weights()
    samples = bev.random_batch()["data_samples"]
    feat = torch.randn(2, 32, bev.GRID, bev.GRID, requires_grad=True)
    losses = head.loss(feat, samples)
    groups = ["car", "truck_construction_vehicle", "bus_trailer", "barrier", "motorcycle_bicycle",
              "pedestrian_traffic_cone"]  # fmt: skip
    assert sorted(losses) == sorted(f"{g}.loss_{k}" for g in groups for k in ("heatmap", "bbox"))
    sum(losses.values()).backward()
    missing = [n for n, p in head.named_parameters() if p.grad is None or not p.grad.any()]
    assert not missing, missing
    head.eval()
    with torch.no_grad():
        out = head.predict(feat, samples)
        flat = head.export_outputs(feat)
    assert out[0].pred_instances_3d.bboxes_3d.tensor.shape[1] == 9
    assert len(flat) == 6 * 6 and flat[0].shape == (2, 1, bev.GRID, bev.GRID)


def check_packed_separate_head(head):
    head.init_weights()
    assert torch.all(head.output_bias("heatmap") == -2.19)
    feat = torch.randn(2, 8, 5, 6, requires_grad=True)
    out = head(feat)
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "reg": (2, 2, 5, 6), "vel": (2, 2, 5, 6), "heatmap": (2, 3, 5, 6)
    }  # fmt: skip
    sum(v.square().sum() for v in out.values()).backward()
    missing = [n for n, p in head.named_parameters() if p.grad is None or not p.grad.any()]
    assert not missing and feat.grad.abs().sum() > 0, missing


PACKED_HEAD_CFG = dict(
    type="PackedSeparateHead", in_channels=8, heads=dict(reg=(2, 1), vel=(2, 2), heatmap=(3, 1)), head_conv=8
)
CASES = {
    "CenterDetHead": RegistryCase(MODELS, bev.head_cfg(32), check_center_det_head),
    "PackedSeparateHead": RegistryCase(MODELS, PACKED_HEAD_CFG, check_packed_separate_head),
}
