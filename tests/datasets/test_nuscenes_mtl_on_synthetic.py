"""NuScenesMTLDataset on generated nuScenes-format data: map raster vs the devkit, BEV flips, full pipeline."""

import os.path as osp

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope

from perception_mtl.datasets import NuScenesMTLDataset
from perception_mtl.datasets.transforms import MAP_CLASSES

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BASE = Config.fromfile(osp.join(ROOT, "configs/_base_/datasets/nuscenes_mtl.py"))


def _pipeline(root, flip_x=False, image_size=(128, 352)):
    steps = []
    for step in BASE.train_pipeline:
        step = dict(step)
        if step["type"] == "LoadBEVMapSegmentation":
            step["data_root"] = root
        if step["type"] == "MultiViewImageAug":
            step.update(final_size=image_size, is_train=False)
        if step["type"] == "LoadLidarPointsWithSweeps":
            step["test_mode"] = True
        if step["type"] == "BEVAug":
            step = dict(type="BEVAug", rot_range=(0, 0), scale_range=(1, 1), flip_x_prob=float(flip_x), flip_y_prob=0)
        steps.append(step)
    return steps


@pytest.fixture(scope="module")
def datasets(synthetic_root):
    init_default_scope("perception_mtl")

    def build(**kw):
        return NuScenesMTLDataset(
            data_root=synthetic_root, ann_file="nuscenes_infos_train.pkl", pipeline=_pipeline(synthetic_root, **kw)
        )

    return build(), build(flip_x=True)


def test_every_sample_packs(datasets):
    plain, _ = datasets
    for i in range(len(plain)):
        item = plain[i]
        assert item["inputs"]["img"].shape == (6, 3, 128, 352)
        assert item["inputs"]["points"].shape[1] == 5
        assert item["data_samples"].gt_bev_seg.shape == (6, 200, 200)
        assert item["data_samples"].gt_occ["semantics"].shape == (200, 200, 16)
        assert len(item["data_samples"].gt_instances_3d.bboxes_3d) > 0


def test_map_raster_agrees_with_the_devkit(datasets, synthetic_root):
    from nuscenes.map_expansion.map_api import NuScenesMap

    plain, _ = datasets
    info = plain.get_data_info(0)
    seg = plain[0]["data_samples"].gt_bev_seg.numpy()
    nusc_map = NuScenesMap(dataroot=synthetic_root, map_name=info["map_location"])
    lidar2global = np.asarray(info["ego2global"]) @ np.asarray(info["lidar_points"]["lidar2ego"])
    rng = np.random.default_rng(0)
    cells = rng.integers(0, 200, size=(400, 2))
    agree = total = 0
    for name in ("drivable_area", "walkway", "carpark_area", "ped_crossing"):
        k = list(MAP_CLASSES).index(name)
        for i, j in cells:
            x, y = -50 + (i + 0.5) * 0.5, -50 + (j + 0.5) * 0.5
            gx, gy = (lidar2global @ np.array([x, y, 0.0, 1.0]))[:2]
            layers = nusc_map.layers_on_point(gx, gy, layer_names=list(MAP_CLASSES[name]))
            expected = any(token != "" for token in layers.values())
            agree += int(bool(seg[k, i, j]) == expected)
            total += 1
    assert seg[0].mean() > 0.05  # the ego drives on a road: drivable area is present
    assert agree / total > 0.97  # cells on polygon edges may round either way


def test_flip_moves_boxes_map_and_points_together(datasets):
    plain, flipped = datasets
    a, b = plain[0], flipped[0]
    boxes_a = a["data_samples"].gt_instances_3d.bboxes_3d.tensor
    boxes_b = b["data_samples"].gt_instances_3d.bboxes_3d.tensor
    assert np.allclose(boxes_b[:, 0], -boxes_a[:, 0], atol=1e-4) and np.allclose(boxes_b[:, 1], boxes_a[:, 1])
    map_a, map_b = a["data_samples"].gt_bev_seg.numpy(), b["data_samples"].gt_bev_seg.numpy()
    assert (map_b == map_a[:, ::-1]).mean() > 0.99  # rows are x: flipping x reverses them
    pts_a, pts_b = a["inputs"]["points"], b["inputs"]["points"]
    assert np.allclose(pts_b[:, 0], -pts_a[:, 0], atol=1e-4)
    occ_a = (a["data_samples"].gt_occ["semantics"] != 17).sum()
    occ_b = (b["data_samples"].gt_occ["semantics"] != 17).sum()
    assert abs(int(occ_a) - int(occ_b)) / int(occ_a) < 0.1  # resampled, not lost
