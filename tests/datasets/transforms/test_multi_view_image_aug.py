"""Image augmentation keeps the calibration exact: the augmented matrix points at the augmented pixel."""

import numpy as np
import pytest
import torch

from perception_mtl.datasets.transforms import BEVAug, MultiViewImageAug
from perception_mtl.datasets.transforms.bev_aug import apply_bev_matrix
from perception_mtl.structures import SensorCalibration

K = np.array([[400.0, 0.0, 320.0], [0.0, 400.0, 180.0], [0.0, 0.0, 1.0]], np.float32)
LIDAR2CAM = np.array([[0, -1, 0, 0], [0, 0, -1, 0.3], [1, 0, 0, 0], [0, 0, 0, 1]], np.float32)


def _results_with_dot(point):
    """One 360x640 camera image with a 5x5 bright square where ``point`` (LiDAR frame) projects."""
    calib = SensorCalibration.from_single([K], [LIDAR2CAM])
    uv, depth = calib.project_points(torch.tensor([[point]], dtype=torch.float32))
    u, v = uv[0, 0, 0].round().int().tolist()
    assert depth.item() > 0 and 10 <= u < 630 and 10 <= v < 350
    image = np.zeros((360, 640, 3), np.uint8)
    image[v - 2 : v + 3, u - 2 : u + 3] = 255
    return dict(
        img=[image],
        cam2img=K[None],
        lidar2cam=LIDAR2CAM[None],
        img_aug=np.eye(4, dtype=np.float32)[None],
    )


def _dot_centre(image):
    ys, xs = np.nonzero(image[..., 0] > 128)
    assert len(xs) > 0, "the dot left the image"
    return np.array([xs.mean(), ys.mean()])


@pytest.mark.parametrize("seed", range(6))
def test_projection_through_augmented_matrix_hits_the_augmented_dot(seed):
    np.random.seed(seed)
    point = [12.0, 1.5, 0.5]
    results = _results_with_dot(point)
    aug = MultiViewImageAug(
        final_size=(192, 352), resize_lim=(0.5, 0.7), rot_lim=(-10, 10), rand_flip=True, is_train=True
    )
    results = aug(results)
    calib = SensorCalibration.from_single(results["cam2img"], results["lidar2cam"], results["img_aug"])
    uv, _ = calib.project_points(torch.tensor([[point]], dtype=torch.float32))
    expected = uv[0, 0, 0].numpy()
    # These aug ranges keep the dot inside the 352x192 output for every draw.
    assert 3 <= expected[0] < 349 and 3 <= expected[1] < 189
    assert np.abs(_dot_centre(results["img"][0]) - expected).max() < 1.0


def test_bev_augmentation_then_image_projection_still_agree():
    np.random.seed(3)
    point = np.array([12.0, 1.5, 0.5])
    results = _results_with_dot(point.tolist())
    results = MultiViewImageAug(final_size=(192, 352), resize_lim=(0.55, 0.55), rot_lim=(0, 0), rand_flip=False)(
        results
    )
    matrix = BEVAug(rot_range=(0.3, 0.3), scale_range=(1.1, 1.1), flip_x_prob=0, flip_y_prob=1).sample_matrix()
    results = apply_bev_matrix(results, matrix)
    moved = matrix[:3, :3] @ point + matrix[:3, 3]
    calib = SensorCalibration.from_single(
        results["cam2img"], results["lidar2cam"], results["img_aug"], results["lidar_aug"]
    )
    uv, depth = calib.project_points(torch.tensor([[moved]], dtype=torch.float32))
    assert depth.item() == pytest.approx(12.0, abs=1e-3)
    assert np.abs(_dot_centre(results["img"][0]) - uv[0, 0, 0].numpy()).max() < 1.0


def test_test_mode_is_deterministic_and_centred():
    results = _results_with_dot([12.0, 0.0, 0.0])
    aug = MultiViewImageAug(final_size=(192, 352), resize_lim=(0.5, 0.7), is_train=False)
    first = aug(dict(results, img=[results["img"][0].copy()]))["img_aug"]
    second = aug(dict(results, img=[results["img"][0].copy()]))["img_aug"]
    assert np.array_equal(first, second)
    assert first[0, 0, 0] == pytest.approx(0.6)
