"""LSSDepthTransform: frustum geometry from SensorCalibration, depth targets, caching, ONNX export."""

import numpy as np
import torch

from perception_mtl.deploy import export_onnx
from perception_mtl.models.view_transforms import LSSDepthTransform
from perception_mtl.structures import SensorCalibration
from perception_mtl.testing.bev import ring_calibration

BOUND = [-51.2, 51.2, 3.2]


def transform(**kwargs):
    args = dict(in_channels=8, out_channels=4, xbound=BOUND, ybound=BOUND, zbound=[-10, 10, 20], dbound=[1, 60, 1])
    args.update(kwargs)
    return LSSDepthTransform(**args)


def augmented_calibration():
    """Ring of cameras with a resize+crop+flip image aug and a rotate+flip BEV aug."""
    base = ring_calibration(image_hw=(64, 176))
    img_aug = torch.eye(4).repeat(1, 6, 1, 1)
    img_aug[..., :3, :3] = torch.tensor([[-0.5, 0.0, 80.0], [0.0, 0.5, -3.0], [0.0, 0.0, 1.0]])
    lidar_aug = torch.eye(4)[None].clone()
    c, s = np.cos(0.3), np.sin(0.3)
    lidar_aug[0, :2, :2] = torch.tensor([[c, -s], [-s, -c]])  # rotation, then mirror y
    return SensorCalibration(base.cam2img, base.lidar2cam, img_aug, lidar_aug)


def test_frustum_points_project_back_to_their_pixels_and_depths():
    vt = transform()
    calib = augmented_calibration()
    geometry = vt.frustum_geometry(calib, (4, 11), (32, 88))
    assert geometry.shape == (1, 6, vt.num_bins, 4, 11, 3)
    uv, depth = calib.project_points(geometry.reshape(1, -1, 3).double().float())
    per_cam = geometry.shape[2] * 4 * 11
    for cam in range(6):
        sl = slice(cam * per_cam, (cam + 1) * per_cam)
        expected_uv = vt.frustum_pixels((4, 11), (32, 88)).expand(vt.num_bins, 4, 11, 2).reshape(-1, 2)
        expected_depth = vt.depth_centres().view(-1, 1, 1).expand(vt.num_bins, 4, 11).reshape(-1)
        assert torch.allclose(uv[0, cam, sl], expected_uv, atol=2e-3)
        assert torch.allclose(depth[0, cam, sl], expected_depth, atol=2e-3)
    # Cell centres of an 8-pixel stride sit at pixels 3.5, 11.5, ...
    assert vt.frustum_pixels((4, 11), (32, 88))[0, :2, 0].tolist() == [3.5, 11.5]


def test_depth_targets_take_the_nearest_key_frame_point_per_cell():
    vt = transform(dbound=[1, 60, 0.5], time_lag_dim=4)
    calib = ring_calibration(image_hw=(32, 88))
    # Camera 0 looks along +x (focal 44 px, centre (43.5, 15.5)); these points land at v = 16.8.
    points = torch.tensor(
        [
            [10.2, 0.0, -0.3, 0.5, 0.0],  # key frame, depth 10.2 -> bin floor((10.2 - 1) / 0.5) = 18
            [20.4, 0.0, -0.6, 0.5, 0.0],  # farther in the same cell: ignored
            [5.1, 0.0, -0.15, 0.5, 0.05],  # a sweep point (lag 0.05 s): ignored
            [0.51, 0.0, -0.015, 0.5, 0.0],  # closer than dbound: ignored
        ]
    )
    target = vt.depth_targets([points], calib, (4, 11), (32, 88))
    assert target.shape == (1, 6, 4, 11)
    row, col = int((16.8 + 0.5) // 8), int((43.5 + 0.5) // 8)
    assert target[0, 0, row, col].item() == 18
    assert (target >= 0).sum().item() == 1
    logits = torch.zeros(1, 6, vt.num_bins, 4, 11)
    logits[0, 0, 18, row, col] = 50.0
    assert vt.depth_loss(logits, [points], calib, (32, 88)).item() == 0.0  # depth_loss_weight = 0 by default
    vt.depth_loss_weight = 1.0
    assert vt.depth_loss(logits, [points], calib, (32, 88)).item() < 1e-6
    logits[0, 0, 18, row, col] = -50.0
    assert vt.depth_loss(logits, [points], calib, (32, 88)).item() > 10


def test_pool_indices_are_cached_in_eval_until_the_calibration_changes():
    vt = transform().eval()
    calib = ring_calibration(image_hw=(32, 88))
    first = vt.pool_index(calib, (4, 11), (32, 88))
    assert vt.pool_index(calib, (4, 11), (32, 88)) is first
    moved = augmented_calibration()
    assert vt.pool_index(moved, (4, 11), (64, 176)) is not first
    vt.train()
    assert vt.pool_index(calib, (4, 11), (32, 88)) is not vt.pool_index(calib, (4, 11), (32, 88))


def test_bev_output_and_downsample_shapes():
    feats = torch.randn(2, 6, 8, 4, 11)
    calib = ring_calibration(image_hw=(32, 88), batch=2)
    bev, depth = transform()(feats, calib, (32, 88))
    assert bev.shape == (2, 4, 32, 32) and depth.shape == (2, 6, 59, 4, 11)
    assert bev.abs().sum() > 0
    bev2, _ = transform(downsample=2, out_channels=6)(feats, calib, (32, 88))
    assert bev2.shape == (2, 6, 16, 16)


class _Exported(torch.nn.Module):
    def __init__(self, vt):
        super().__init__()
        self.vt = vt

    def forward(self, feats, pool_index):
        return self.vt(feats, pool_index=pool_index)


def test_view_transform_with_precomputed_indices_exports_to_onnx():
    vt = transform().eval()
    calib = ring_calibration(image_hw=(32, 88))
    feats = torch.randn(1, 6, 8, 4, 11)
    index = vt.pool_index(calib, (4, 11), (32, 88))
    session, ops = export_onnx(
        _Exported(vt).eval(), (feats, index), input_names=["feats", "pool_index"], output_names=["bev", "depth"]
    )
    assert "NonZero" not in ops
    feats2 = torch.randn(1, 6, 8, 4, 11)
    bev, depth = session.run(None, {"feats": feats2.numpy(), "pool_index": index.numpy()})
    with torch.no_grad():
        ref_bev, ref_depth = vt(feats2, calib, (32, 88))
    assert np.abs(bev - ref_bev.numpy()).max() < 1e-5 and np.abs(depth - ref_depth.numpy()).max() < 1e-5
