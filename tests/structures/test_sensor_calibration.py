"""SensorCalibration against projections computed by hand."""

import math

import pytest
import torch

from perception_mtl.structures import SensorCalibration

# LiDAR (x forward, y left, z up) -> camera (x right, y down, z forward), offset 0.5 m along camera y.
R_LIDAR2CAM = torch.tensor([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])
K = torch.tensor([[100.0, 0.0, 50.0], [0.0, 100.0, 40.0], [0.0, 0.0, 1.0]])


def _lidar2cam(t=(0.0, 0.5, 0.0)):
    m = torch.eye(4)
    m[:3, :3] = R_LIDAR2CAM
    m[:3, 3] = torch.tensor(t)
    return m


def _calib(img_aug=None, lidar_aug=None, batch=1, cams=1):
    cam2img = K.expand(batch, cams, 3, 3)
    lidar2cam = _lidar2cam().expand(batch, cams, 4, 4)
    return SensorCalibration(cam2img, lidar2cam, img_aug, lidar_aug)


def test_pads_intrinsics_and_defaults_identity_augmentations():
    calib = _calib(batch=2, cams=3)
    assert calib.cam2img.shape == (2, 3, 4, 4)
    assert torch.equal(calib.cam2img[0, 0, 3], torch.tensor([0.0, 0.0, 0.0, 1.0]))
    assert torch.equal(calib.img_aug, torch.eye(4).expand(2, 3, 4, 4))
    assert torch.equal(calib.lidar_aug, torch.eye(4).expand(2, 4, 4))


def test_projection_matches_hand_computation():
    # p = (10, 2, 1): camera (-2, -1 + 0.5, 10) -> u = 100 * -2 / 10 + 50 = 30, v = 100 * -0.5 / 10 + 40 = 35.
    uv, depth = _calib().project_points(torch.tensor([[[10.0, 2.0, 1.0]]]))
    assert uv[0, 0, 0].tolist() == pytest.approx([30.0, 35.0])
    assert depth[0, 0, 0].item() == pytest.approx(10.0)
    homo = _calib().lidar2img[0, 0] @ torch.tensor([10.0, 2.0, 1.0, 1.0])
    assert (homo[:2] / homo[2]).tolist() == pytest.approx([30.0, 35.0])


def test_image_augmentation_resize_crop_flip():
    # Resize by 0.5, crop 5 px left / 3 px top, then flip a 100 px wide image: u -> 100 - u.
    aug = torch.eye(4)
    aug[:3, :3] = torch.tensor([[-0.5, 0.0, 100.0 + 5.0], [0.0, 0.5, -3.0], [0.0, 0.0, 1.0]])
    calib = _calib(img_aug=aug.expand(1, 1, 4, 4))
    uv, depth = calib.project_points(torch.tensor([[[10.0, 2.0, 1.0]]]))
    # resize: (15, 17.5); crop: (10, 14.5); flip: (90, 14.5).
    assert uv[0, 0, 0].tolist() == pytest.approx([90.0, 14.5])
    assert depth[0, 0, 0].item() == pytest.approx(10.0)  # augmentation never changes depth
    homo = calib.lidar2img[0, 0] @ torch.tensor([10.0, 2.0, 1.0, 1.0])
    assert (homo[:2] / homo[2]).tolist() == pytest.approx([90.0, 14.5])


def test_bev_augmentation_is_undone_before_projection():
    yaw = math.pi / 2
    aug = torch.eye(4)
    aug[:2, :2] = torch.tensor([[math.cos(yaw), -math.sin(yaw)], [math.sin(yaw), math.cos(yaw)]])
    aug[:3, 3] = torch.tensor([1.0, -2.0, 0.0])
    calib = _calib(lidar_aug=aug[None])
    point = torch.tensor([10.0, 2.0, 1.0, 1.0])
    augmented = (aug @ point)[:3]  # rotated by 90 degrees: (-2 + 1, 10 - 2, 1)
    assert augmented.tolist() == pytest.approx([-1.0, 8.0, 1.0])
    uv, depth = calib.project_points(augmented.view(1, 1, 3))
    assert uv[0, 0, 0].tolist() == pytest.approx([30.0, 35.0], abs=1e-4)
    assert depth[0, 0, 0].item() == pytest.approx(10.0, abs=1e-5)
    homo = calib.aug_lidar2img[0, 0] @ torch.cat([augmented, torch.ones(1)])
    assert (homo[:2] / homo[2]).tolist() == pytest.approx([30.0, 35.0], abs=1e-4)


def test_unproject_inverts_projection():
    torch.manual_seed(0)
    aug = torch.eye(4)
    aug[:3, :3] = torch.tensor([[0.7, 0.1, 3.0], [-0.1, 0.7, -2.0], [0.0, 0.0, 1.0]])
    calib = _calib(img_aug=aug.expand(2, 3, 4, 4).clone(), batch=2, cams=3)
    points = torch.rand(2, 7, 3) * torch.tensor([20.0, 10.0, 2.0]) + torch.tensor([5.0, -5.0, -1.0])
    uv, depth = calib.project_points(points)
    back = calib.unproject(uv, depth)
    assert torch.allclose(back, points[:, None].expand(2, 3, 7, 3), atol=1e-4)


def test_indexing_cat_and_to():
    a = _calib(batch=2, cams=6)
    b = _calib(batch=3, cams=6)
    both = SensorCalibration.cat([a, b])
    assert len(both) == 5 and both.num_cams == 6
    assert len(both[0]) == 1 and len(both[1:4]) == 3 and len(both[torch.tensor([0, 4])]) == 2
    assert len(both[-1]) == 1
    assert torch.equal(both[3].lidar2cam, b[1].lidar2cam)
    half = both.to(torch.float64)
    assert half.dtype == torch.float64 and half.lidar_aug.dtype == torch.float64
    with pytest.raises(IndexError):
        both[5]


def test_from_single_builds_a_batch_of_one():
    calib = SensorCalibration.from_single([K.numpy()] * 6, [_lidar2cam().numpy()] * 6)
    assert len(calib) == 1 and calib.num_cams == 6 and calib.dtype == torch.float32


def test_shape_errors_name_the_field():
    with pytest.raises(ValueError, match="lidar2cam"):
        SensorCalibration(K.expand(1, 2, 3, 3), torch.eye(4).expand(1, 3, 4, 4))
    with pytest.raises(ValueError, match="lidar_aug"):
        SensorCalibration(K.expand(1, 2, 3, 3), torch.eye(4).expand(1, 2, 4, 4), lidar_aug=torch.eye(4))
    with pytest.raises(ValueError, match="cam2img"):
        SensorCalibration(torch.ones(1, 2, 2, 2), torch.eye(4).expand(1, 2, 4, 4))
    with pytest.raises(ValueError, match="camera counts"):
        SensorCalibration.cat([_calib(cams=2), _calib(cams=3)])
    with pytest.raises(ValueError, match="project_points"):
        _calib().project_points(torch.zeros(2, 4, 3))
