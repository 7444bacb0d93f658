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


def _pipeline(root, flip_x=False, image_size=(128, 352), yaw=0.0):
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
            step = dict(
                type="BEVAug", rot_range=(yaw, yaw), scale_range=(1, 1), flip_x_prob=float(flip_x), flip_y_prob=0
            )
        steps.append(step)
    return steps


@pytest.fixture(scope="module")
def datasets(synthetic_root):
    init_default_scope("perception_mtl")

    def build(**kw):
        return NuScenesMTLDataset(
            data_root=synthetic_root, ann_file="nuscenes_infos_train.pkl", pipeline=_pipeline(synthetic_root, **kw)
        )

    return build(), build(flip_x=True), build(flip_x=True, yaw=0.6)


def test_every_sample_packs(datasets):
    plain = datasets[0]
    for i in range(len(plain)):
        item = plain[i]
        assert item["inputs"]["img"].shape == (6, 3, 128, 352)
        assert item["inputs"]["points"].shape[1] == 5
        assert item["data_samples"].gt_bev_seg.shape == (6, 200, 200)
        assert item["data_samples"].gt_occ["semantics"].shape == (200, 200, 16)
        assert len(item["data_samples"].gt_instances_3d.bboxes_3d) > 0


def test_map_raster_agrees_with_the_devkit(datasets, synthetic_root):
    from nuscenes.map_expansion.map_api import NuScenesMap

    plain = datasets[0]
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
    plain, flipped = datasets[:2]
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


def _voxels_in_boxes(sample, lidar2ego, label):
    """Fraction of the occupancy voxels of ``label`` whose centre lies in a ground-truth car box (grown by
    one voxel), with the voxel centres taken from the ego-frame Occ3D grid into the sample's LiDAR frame."""
    import torch
    from mmcv.ops import points_in_boxes_cpu

    idx = np.argwhere(sample.gt_occ["semantics"].numpy() == label)
    centres = np.concatenate([-40 + (idx[:, :2] + 0.5) * 0.4, -1 + (idx[:, 2:] + 0.5) * 0.4], 1)
    ego = np.concatenate([centres, np.ones((len(idx), 1))], 1)
    lidar = (np.linalg.inv(lidar2ego) @ ego.T).T[:, :3]
    # Only a disc about the LiDAR (the augmentation's centre) stays inside the square grid under any yaw.
    lidar = lidar[np.linalg.norm(lidar[:, :2], axis=1) < 36.0]
    boxes = sample.gt_instances_3d.bboxes_3d.tensor[sample.gt_instances_3d.labels_3d == DET_CAR].clone()
    boxes[:, 3:6] += 0.8
    boxes[:, 2] -= 0.4
    inside = points_in_boxes_cpu(torch.as_tensor(lidar, dtype=torch.float32)[None], boxes[None, :, :7].float())
    return float(inside[0].any(-1).float().mean()), len(lidar)


OCC_CAR = 1  # the synthetic occupancy ids follow the Occ3D challenge order (1 = car)
DET_CAR = 0  # nuScenes detection classes start with car


def test_rotation_and_flip_keep_boxes_map_and_occupancy_aligned(datasets):
    """One sample, yawed by 0.6 rad and mirrored: every target moves with the boxes and points.

    Map: the raster rendered at the augmented pose, read at ``A p``, equals the plain raster read at ``p``.
    Occupancy: the car voxels still lie in the (augmented) car boxes, and not in the plain ones.
    """
    plain, turned = datasets[0], datasets[2]
    a, b = plain[0], turned[0]
    aug = b["inputs"]["calib"].lidar_aug[0].numpy().astype(np.float64)
    assert np.allclose(aug[:2, :2], [[-np.cos(0.6), np.sin(0.6)], [np.sin(0.6), np.cos(0.6)]], atol=1e-5)

    boxes_a = a["data_samples"].gt_instances_3d.bboxes_3d.tensor.numpy()
    boxes_b = b["data_samples"].gt_instances_3d.bboxes_3d.tensor.numpy()
    moved = (aug[:3, :3] @ boxes_a[:, :3].T).T + aug[:3, 3]
    # Every augmented box within 50 m is a moved plain box (a rotation keeps the range; boxes near the
    # square range's corners may turn in or out of it).
    near = np.linalg.norm(boxes_b[:, :2], axis=1) < 50
    gaps = np.linalg.norm(boxes_b[near, None, :3] - moved[None], axis=-1).min(1)
    assert near.sum() == (np.linalg.norm(boxes_a[:, :2], axis=1) < 50).sum() > 5 and gaps.max() < 1e-3

    rng = np.random.default_rng(0)
    p = rng.uniform(-34, 34, size=(4000, 2))  # inside the map grid before and after the rotation
    q = (aug[:2, :2] @ p.T).T + aug[:2, 3]

    def cells(xy):
        return np.clip(np.floor((xy + 50) / 0.5).astype(int), 0, 199)

    map_a, map_b = a["data_samples"].gt_bev_seg.numpy(), b["data_samples"].gt_bev_seg.numpy()
    ca, cb = cells(p), cells(q)
    for k in range(map_a.shape[0]):
        if map_a[k].any():
            assert (map_a[k, ca[:, 0], ca[:, 1]] == map_b[k, cb[:, 0], cb[:, 1]]).mean() > 0.97, MAP_CLASSES[k]
    drivable_a, drivable_b = map_a[0, ca[:, 0], ca[:, 1]], map_b[0, ca[:, 0], ca[:, 1]]
    assert (drivable_a != drivable_b).mean() > 0.1  # reading the turned raster at p instead would disagree

    lidar2ego = np.asarray(plain.get_data_info(0)["lidar_points"]["lidar2ego"], np.float64)
    inside_a, n_a = _voxels_in_boxes(a["data_samples"], lidar2ego, OCC_CAR)
    inside_b, n_b = _voxels_in_boxes(b["data_samples"], lidar2ego, OCC_CAR)
    assert n_a > 50 and abs(n_b - n_a) / n_a < 0.1
    assert inside_a > 0.9 and inside_b > 0.9
    b["data_samples"].gt_instances_3d = a["data_samples"].gt_instances_3d
    wrong, _ = _voxels_in_boxes(b["data_samples"], lidar2ego, OCC_CAR)
    assert wrong < 0.5  # the turned occupancy against the unturned boxes: misaligned
