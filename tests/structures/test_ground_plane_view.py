"""Ground-plane (bird's-eye) resampling against OpenCV's projection."""

import cv2
import numpy as np
import pytest
import torch

from perception_mtl.structures.camera_geometry import rotation_x_np
from perception_mtl.structures.ground_plane_view import ground_plane_view


def _coordinate_images(batch: int, height: int, width: int) -> torch.Tensor:
    """Channels u (column) and v (row): bilinear sampling of these ramps returns the sampled point."""
    vs, us = torch.meshgrid(
        torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64), indexing="ij"
    )
    return torch.stack([us, vs]).expand(batch, 2, height, width).contiguous()


def test_each_cell_samples_the_pixel_opencv_projects_its_ground_point_to():
    rng = np.random.default_rng(3)
    batch, height, width = 4, 96, 128
    fx, fy = rng.uniform(70, 140, batch), rng.uniform(70, 140, batch)
    u0, v0 = rng.uniform(60, 68, batch), rng.uniform(44, 52, batch)
    pitch, cam_height = np.deg2rad(rng.uniform(-2, 10, batch)), rng.uniform(1.2, 2.2, batch)
    xs, zs = torch.linspace(-6, 6, 13, dtype=torch.float64), torch.linspace(3, 30, 28, dtype=torch.float64)
    t = lambda a: torch.as_tensor(a, dtype=torch.float64)  # noqa: E731
    view, valid = ground_plane_view(
        _coordinate_images(batch, height, width), t(fx), t(fy), t(u0), t(v0), t(pitch), t(cam_height), xs, zs
    )
    assert view.shape == (batch, 2, 28, 13) and valid.shape == (batch, 28, 13)
    zg, xg = np.meshgrid(zs.numpy(), xs.numpy(), indexing="ij")
    for b in range(batch):
        points = np.stack([xg, np.full_like(xg, cam_height[b]), zg], -1).reshape(-1, 3)
        rvec, _ = cv2.Rodrigues(rotation_x_np(pitch[b]))
        k = np.array([[fx[b], 0, u0[b]], [0, fy[b], v0[b]], [0, 0, 1]])
        uv = cv2.projectPoints(points, rvec, np.zeros(3), k, None)[0].reshape(28, 13, 2)
        inside = (uv[..., 0] >= 0) & (uv[..., 0] <= width - 1) & (uv[..., 1] >= 0) & (uv[..., 1] <= height - 1)
        np.testing.assert_array_equal(valid[b].numpy(), inside)
        assert inside.sum() > 100  # most of the road is in view
        np.testing.assert_allclose(view[b, 0].numpy()[inside], uv[..., 0][inside], atol=1e-6)
        np.testing.assert_allclose(view[b, 1].numpy()[inside], uv[..., 1][inside], atol=1e-6)
        assert (view[b][:, ~valid[b]] == 0).all()


def test_points_behind_the_camera_are_invalid_not_mirrored():
    one = torch.ones(1)
    view, valid = ground_plane_view(
        torch.ones(1, 1, 96, 128),
        100 * one,
        100 * one,
        63.5 * one,
        47.5 * one,
        0 * one,
        1.5 * one,
        torch.tensor([0.0]),
        torch.tensor([-10.0, -5.0, 5.0]),
    )
    # z = -10 and -5 m project (mirrored through the centre) inside the image: they must not count.
    assert valid[0, :, 0].tolist() == [False, False, True]
    assert view[0, 0, :, 0].tolist() == [0.0, 0.0, 1.0]


def test_images_must_be_batched():
    one = torch.ones(1)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        ground_plane_view(torch.ones(3, 96, 128), one, one, one, one, one, one, torch.zeros(1), torch.ones(1))
