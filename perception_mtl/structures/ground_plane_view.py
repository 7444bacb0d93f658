"""Bird's-eye resampling of a pitched camera's image onto the ground plane (inverse perspective mapping).

Frame: that of :mod:`perception_mtl.structures.camera_geometry` (X right, Y down, Z forward), the
ground at Y = 0, the camera ``height`` above it and pitched down by ``pitch`` (``R = Rx(pitch)``).
Ground coordinates are taken from the camera's foot: the cell (x, z) is the ground point
``(x, height, z)`` relative to the camera centre. With wrong calibration the view is warped
predictably: a wrong height scales x and z alike, a wrong focal length scales z only (so lengths
along the road, e.g. a lane-marking period, measure f), a wrong horizon row bends z non-linearly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from perception_mtl.structures.camera_geometry import intrinsic_matrix, rotation_x


def ground_plane_view(
    images: Tensor,
    fx: Tensor,
    fy: Tensor,
    u0: Tensor,
    v0: Tensor,
    pitch: Tensor,
    height: Tensor,
    xs: Tensor,
    zs: Tensor,
) -> tuple[Tensor, Tensor]:
    """Samples (B, C, H, W) images at the ground points ``(xs[j], height, zs[i])`` (camera-centred, metres).

    Args:
        images: (B, C, H, W); pixel (row, col) has its centre at (u, v) = (col, row) (OpenCV).
        fx, fy, u0, v0, pitch, height: (B,) calibration per image (pixels, radians, metres).
        xs: (X,) lateral positions; zs: (Z,) forward distances along the ground.

    Returns:
        view (B, C, Z, X) bilinearly sampled (0 outside the image), valid (B, Z, X) bool: the point
        lies in front of the camera and inside the image.
    """
    if images.dim() != 4:
        raise ValueError(f"ground_plane_view: images must be (B, C, H, W), got {tuple(images.shape)}")
    height_px, width_px = images.shape[-2:]
    zg, xg = torch.meshgrid(zs.to(images), xs.to(images), indexing="ij")
    offsets = torch.stack([xg, torch.zeros_like(xg), zg], -1).reshape(1, -1, 3)  # (1, Z*X, 3)
    offsets = offsets + torch.stack([torch.zeros_like(height), height, torch.zeros_like(height)], -1)[:, None]
    cam = offsets.to(images) @ rotation_x(pitch.to(images)).transpose(1, 2)  # (B, Z*X, 3)
    pix = cam @ intrinsic_matrix(fx, fy, u0, v0).to(images).transpose(1, 2)
    depth = cam[..., 2]
    in_front = depth > 1e-6
    uv = pix[..., :2] / torch.where(in_front, depth, torch.ones_like(depth))[..., None]
    grid = torch.stack([uv[..., 0] / (width_px - 1) * 2 - 1, uv[..., 1] / (height_px - 1) * 2 - 1], -1)
    valid = in_front & (grid.abs() <= 1).all(-1)
    grid = torch.where(valid[..., None], grid, torch.full_like(grid, 2.0))  # far outside: sampled as 0
    shape = (len(images), len(zs), len(xs))
    view = F.grid_sample(images, grid.reshape(*shape, 2), align_corners=True, padding_mode="zeros")
    return view, valid.reshape(shape)
