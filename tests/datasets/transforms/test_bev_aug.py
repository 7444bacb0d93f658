"""BEV augmentation moves points, boxes (incl. velocity) and occupancy together."""

import numpy as np
import pytest
import torch
from mmcv.ops import points_in_boxes_cpu
from mmdet3d.structures import LiDARInstance3DBoxes
from mmdet3d.structures.points import LiDARPoints

from perception_mtl.datasets.transforms import BEVAug, LoadOccupancy
from perception_mtl.datasets.transforms.bev_aug import apply_bev_matrix


def _boxes():
    return LiDARInstance3DBoxes(
        torch.tensor(
            [[10.0, 5.0, -1.0, 4.5, 1.9, 1.6, 0.3, 2.0, 1.0], [-8.0, -3.0, -0.5, 0.7, 0.7, 1.8, -2.0, 0.0, -1.0]]
        ),
        box_dim=9,
    )


@pytest.mark.parametrize("seed", range(8))
def test_box_corners_and_points_follow_the_matrix(seed):
    np.random.seed(seed)
    aug = BEVAug(rot_range=(-1.0, 1.0), scale_range=(0.9, 1.1), translation_std=(0.5, 0.5, 0.2))
    boxes = _boxes()
    inside = boxes.tensor[:, :3].clone()
    inside[:, 2] += boxes.tensor[:, 5] / 2  # gravity centres lie inside their boxes
    results = dict(points=LiDARPoints(inside.clone(), points_dim=3), gt_bboxes_3d=_boxes())
    matrix = aug.sample_matrix()
    results = apply_bev_matrix(results, matrix)
    corners = boxes.corners.reshape(-1, 3).double().numpy()
    moved = corners @ matrix[:3, :3].T + matrix[:3, 3]
    new_corners = results["gt_bboxes_3d"].corners.reshape(-1, 3).double().numpy()
    # Same corner set (order may change under reflection): match each moved corner to its nearest.
    dist = np.linalg.norm(moved[:, None] - new_corners[None], axis=-1)
    assert dist.min(1).max() < 1e-3
    velocity = boxes.tensor[:, 7:9].double().numpy() @ matrix[:2, :2].T
    assert np.allclose(results["gt_bboxes_3d"].tensor[:, 7:9].numpy(), velocity, atol=1e-4)
    inside_after = points_in_boxes_cpu(
        results["points"].tensor[None, :, :3], results["gt_bboxes_3d"].tensor[None, :, :7]
    )
    assert inside_after[0].diagonal().all()
    assert np.allclose(results["lidar_aug"], matrix, atol=1e-6)


def test_flip_y_mirrors_left_and_right():
    results = dict(gt_bboxes_3d=_boxes())
    results = apply_bev_matrix(results, np.diag([1.0, -1.0, 1.0, 1.0]))
    t = results["gt_bboxes_3d"].tensor
    assert t[0, :3].tolist() == pytest.approx([10.0, -5.0, -1.0])
    assert t[0, 6].item() == pytest.approx(-0.3)
    assert t[0, 7:9].tolist() == pytest.approx([2.0, -1.0])


def test_test_mode_is_identity():
    assert np.array_equal(BEVAug(is_train=False).sample_matrix(), np.eye(4))


def _occ_with_block():
    semantics = np.full((200, 200, 16), 17, np.uint8)
    semantics[150:160, 120:125, 2:6] = 1  # a car at x in [20, 24), y in [8, 10) m (ego frame)
    mask = np.ones((200, 200, 16), bool)
    return dict(semantics=semantics, mask_lidar=mask.copy(), mask_camera=mask.copy())


def test_occupancy_moves_with_the_bev_augmentation():
    loader = LoadOccupancy()
    # LiDAR rotated 90 degrees and offset in the ego frame, as on the nuScenes car.
    lidar2ego = np.array([[0.0, -1.0, 0.0, 0.9], [1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.8], [0.0, 0.0, 0.0, 1.0]])
    flip_lidar_y = np.diag([1.0, -1.0, 1.0, 1.0])
    out = loader.resample(_occ_with_block(), lidar2ego @ flip_lidar_y @ np.linalg.inv(lidar2ego))
    # Lidar y is ego -x, so flipping lidar y mirrors ego x about x = 0.9 m: [20, 24) -> [-22.2, -18.2).
    car = np.argwhere(out["semantics"] == 1)
    xs = -40 + (car[:, 0] + 0.5) * 0.4
    ys = -40 + (car[:, 1] + 0.5) * 0.4
    assert xs.min() > -22.4 and xs.max() < -18.0 and ys.min() > 7.9 and ys.max() < 10.1
    assert (out["semantics"] == 1).sum() == pytest.approx(10 * 5 * 4, rel=0.15)
    # Identity leaves the grid unchanged; a large shift empties it to free / unobserved.
    same = loader.resample(_occ_with_block(), np.eye(4))
    assert np.array_equal(same["semantics"], _occ_with_block()["semantics"])
    shift = np.eye(4)
    shift[0, 3] = 100.0
    gone = loader.resample(_occ_with_block(), shift)
    assert (gone["semantics"] == 17).all() and not gone["mask_camera"].any()
