"""CenterDetHead's vectorised targets equal mmdet3d's per-object loop, value for value."""

import copy

import pytest
import torch
from mmdet3d.models.dense_heads import CenterHead
from mmdet3d.structures import LiDARInstance3DBoxes
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

from perception_mtl.heads.center_point_targets import gaussian_kernel
from perception_mtl.registry import MODELS
from perception_mtl.testing import config_path

CONFIG = config_path("bevfusion_fusion_demo.py")


@pytest.fixture(autouse=True)
def scope():
    init_default_scope("perception_mtl")


def _head(**train_cfg):
    cfg = copy.deepcopy(Config.fromfile(str(CONFIG)).model.heads.det.to_dict())
    cfg["train_cfg"].update(train_cfg)
    return MODELS.build(cfg)


def _objects(num: int, seed: int) -> InstanceData:
    """Boxes over and past the BEV range (+-51.2 m), sizes from cones to buses, some zero-sized."""
    gen = torch.Generator().manual_seed(seed)
    xy = (torch.rand(num, 2, generator=gen) - 0.5) * 2 * 56.0
    z = torch.rand(num, 1, generator=gen) * 2 - 2
    dims = torch.rand(num, 3, generator=gen) * torch.tensor([11.0, 2.8, 3.5]) + 0.3
    dims[::17, 1] = 0.0  # zero width: mmdet3d skips these
    yaw = (torch.rand(num, 1, generator=gen) - 0.5) * 6.4
    vel = torch.randn(num, 2, generator=gen) * 3
    gt = InstanceData()
    gt.bboxes_3d = LiDARInstance3DBoxes(torch.cat([xy, z, dims, yaw, vel], 1), box_dim=9)
    gt.labels_3d = torch.randint(0, 10, (num,), generator=gen)
    return gt


@pytest.mark.parametrize("num, max_objs, seed", [(300, 500, 0), (300, 12, 1), (1, 500, 2), (0, 500, 3)])
def test_targets_equal_mmdet3d_loop(num, max_objs, seed):
    head = _head(max_objs=max_objs)
    gt = _objects(num, seed)
    ours = head.get_targets_single(gt)
    reference = CenterHead.get_targets_single(head, gt)
    for name, mine, theirs in zip(("heatmaps", "anno_boxes", "inds", "masks"), ours, reference):
        assert len(mine) == len(theirs) == 6
        for group, (a, b) in enumerate(zip(mine, theirs)):
            assert a.dtype == b.dtype and a.shape == b.shape, (name, group)
            assert torch.equal(a, b), (name, group, (a.float() - b.float()).abs().max())
    if num > 100:  # the case is not trivial: Gaussians overlap, slots are left empty and filled
        heatmaps, _, _, masks = ours
        assert sum(int((h == 1).sum()) for h in heatmaps) > 20
        assert any(0 < int(m.sum()) < max_objs for m in masks)


def test_min_radius_and_border_clipping():
    head = _head(min_radius=3)
    gt = InstanceData()
    gt.bboxes_3d = LiDARInstance3DBoxes(
        torch.tensor(
            [[-51.0, -51.0, -1.0, 0.5, 0.5, 1.7, 0.0, 0.0, 0.0], [51.0, 0.0, -1.0, 4.0, 1.9, 1.6, 0.3, 1.0, 0.0]]
        ),
        box_dim=9,
    )
    gt.labels_3d = torch.tensor([8, 0])  # a pedestrian in a corner, a car at the +x edge
    heatmaps, _, inds, _ = head.get_targets_single(gt)
    ped = heatmaps[5][0]  # group 5 = pedestrian, traffic_cone
    assert ped[0, 0] == 1 and ped[:4, :4].gt(0).all() and ped[4:, :].eq(0).all()
    kernel = gaussian_kernel(3)
    assert torch.equal(ped[:4, :4], kernel[3:, 3:])
    assert inds[0][0] == 64 * 128 + 127 and heatmaps[0][0, 64, 127] == 1
