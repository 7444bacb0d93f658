"""Registry case of the 3D detection head."""

import importlib.util
import pathlib

import torch

from perception_mtl.registry import MODELS
from perception_mtl.testing import RegistryCase

_path = pathlib.Path(__file__).resolve().parents[2] / "models" / "bev" / "bev_builders.py"
_spec = importlib.util.spec_from_file_location("bev_builders", _path)
bev = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bev)


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


CASES = {"CenterDetHead": RegistryCase(MODELS, bev.head_cfg(32), check_center_det_head)}
