"""Pinhole camera geometry: projection matrices, their decomposition, vanishing points.

Conventions (used by the UGCL calibration head, its data and its tests):

- Camera frame: OpenCV axes, x right, y down, z forward (along the optical axis).
- ``K = [[fx, 0, u0], [0, fy, v0], [0, 0, 1]]`` in pixels; ``R`` (3, 3) maps world vectors into
  the camera frame and ``t`` (3,) is the world origin in camera coordinates, so a world point X
  projects with ``P = K [R | t]`` to ``x ~ P [X; 1]`` and the camera centre is ``C = -R^T t``.
- Column i (i = 0, 1, 2) of P is the image of the point at infinity of world axis i, i.e. its
  vanishing point once dehomogenised; column 3 is the image of the world origin. A column whose
  last entry is 0 is a vanishing point at infinity (an axis parallel to the image plane).
- Euler angles ``(pitch, yaw, roll)`` in radians about the x, y and z axes, composed about fixed
  axes as ``R = Rz(roll) @ Ry(yaw) @ Rx(pitch)``: the package's one convention,
  :func:`perception_mtl.structures.rotations.euler_xyz_to_matrix_torch` ``(pitch, yaw, roll)``
  (and its inverse ``matrix_to_euler_xyz_torch``, yaw in [-pi/2, pi/2]).
- Rectified stereo (Middlebury 2014's ``calib.txt`` convention): both views share fx, fy, v0 and
  R; the right camera sits ``baseline`` along the left one's +x and its principal point is
  ``u0_right = u0_left + doffs``. A point at depth Z has disparity ``d = u_left - u_right =
  fx b / Z - doffs``, so ``Z = fx b / (d + doffs)``; ``doffs = 0`` (one principal point) is the
  special case CVGL and our default synthetic rigs use.
- Road scenes (the synthetic CVGL renderer) use a world frame with the same axes as a level
  camera: X right, Y down, Z forward along the road, ground at Y = 0. A camera pitched by
  ``pitch`` has ``R = Rx(pitch)``; pitch > 0 tilts the optical axis down towards the road
  (its world direction is ``R^T e_z = (0, sin(pitch), cos(pitch))``, Y pointing down).

The torch functions are batched over a leading dimension and differentiable (the loss uses
them); the ``*_np`` helpers are float64 numpy versions for data generation.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

# ----------------------------------------------------------------------------------------- torch


def intrinsic_matrix(fx: Tensor, fy: Tensor, u0: Tensor, v0: Tensor) -> Tensor:
    """(B,) focal lengths and principal point in pixels -> (B, 3, 3) K (zero skew)."""
    zero, one = torch.zeros_like(fx), torch.ones_like(fx)
    rows = [torch.stack([fx, zero, u0], -1), torch.stack([zero, fy, v0], -1), torch.stack([zero, zero, one], -1)]
    return torch.stack(rows, -2)


def rotation_x(angle: Tensor) -> Tensor:
    """(B,) angles in radians -> (B, 3, 3) rotations about x: ``[[1, 0, 0], [0, c, -s], [0, s, c]]``."""
    return rotation_x_from_cos_sin(torch.cos(angle), torch.sin(angle))


def rotation_x_from_cos_sin(cos: Tensor, sin: Tensor) -> Tensor:
    """Rotation about x assembled from a free 2-vector (B,), (B,): ``[[1, 0, 0], [0, c, -s], [0, s, c]]``.

    Orthonormal with det 1 only when ``c^2 + s^2 = 1``: ``R R^T = diag(1, n, n)`` and
    ``det R = n`` with ``n = c^2 + s^2``. The calibration head predicts (c, s) unconstrained, so
    its orthonormality and determinant losses carry a real gradient.
    """
    zero, one = torch.zeros_like(cos), torch.ones_like(cos)
    rows = [torch.stack([one, zero, zero], -1), torch.stack([zero, cos, -sin], -1), torch.stack([zero, sin, cos], -1)]
    return torch.stack(rows, -2)


def projection_matrix(intrinsics: Tensor, rot: Tensor, trans: Tensor) -> Tensor:
    """``P = K [R | t]``: (B, 3, 3), (B, 3, 3), (B, 3) -> (B, 3, 4). Exact: nothing is added to P."""
    return intrinsics @ torch.cat([rot, trans.unsqueeze(-1)], -1)


def project_points(proj: Tensor, points: Tensor) -> Tensor:
    """(B, 3, 4) P, (B, N, 3) world points -> (B, N, 2) pixels (points must lie in front of the camera)."""
    homo = points @ proj[..., :3].transpose(-1, -2) + proj[..., None, :, 3]
    return homo[..., :2] / homo[..., 2:]


def dehomogenise(homo: Tensor, eps: float = 0.0) -> Tensor:
    """(..., 3) homogeneous image points -> (..., 2). With ``eps > 0`` the last entry is kept at least
    ``eps`` away from zero (keeping its sign), so points near infinity stay finite."""
    w = homo[..., 2:]
    if eps > 0:
        sign = torch.where(w < 0, -torch.ones_like(w), torch.ones_like(w))
        w = sign * w.abs().clamp(min=eps)
    return homo[..., :2] / w


def vanishing_points(proj: Tensor, eps: float = 0.0) -> Tensor:
    """(B, 3, 4) P -> (B, 3, 2) pixel vanishing points of the world X, Y and Z axes (columns 1-3 of P).

    An axis parallel to the image plane has its vanishing point at infinity (inf / nan with
    ``eps = 0``); see :func:`dehomogenise` for ``eps``.
    """
    return dehomogenise(proj[..., :3].transpose(-1, -2), eps)


def vanishing_directions(proj: Tensor) -> Tensor:
    """(B, 3, 4) P -> (B, 3, 3) unit homogeneous vanishing points (column i of P over its norm), row i
    for world axis i. Finite for every axis, including vanishing points at infinity."""
    cols = proj[..., :3].transpose(-1, -2)
    return cols / cols.norm(dim=-1, keepdim=True).clamp(min=1e-12)


def world_origin_image(proj: Tensor, eps: float = 0.0) -> Tensor:
    """(B, 3, 4) P -> (B, 2) pixel image of the world origin (column 4 of P, dehomogenised)."""
    return dehomogenise(proj[..., 3], eps)


def axis_planes(proj: Tensor) -> Tensor:
    """(B, 3, 4) P -> (B, 3, 4) the rows of P as world planes in Hesse normal form ``(n, d)``, ``|n| = 1``:
    a world point X lies on plane i when ``n . X + d = 0``. Row 1 holds the points imaged on the
    column u = 0, row 2 those on the row v = 0 (both planes pass through the camera centre), row 3 is
    the principal plane (through the centre, parallel to the image plane; its normal is the optical
    axis and ``d`` the depth of the world origin). Any positive multiple of P gives the same planes."""
    return proj / proj[..., :3].norm(dim=-1, keepdim=True).clamp(min=1e-12)


def camera_centre(rot: Tensor, trans: Tensor) -> Tensor:
    """(B, 3, 3) R, (B, 3) t -> (B, 3) camera centre in the world frame, ``C = -R^T t``."""
    return -(rot.transpose(-1, -2) @ trans.unsqueeze(-1)).squeeze(-1)


def _rq(mat: Tensor) -> tuple[Tensor, Tensor]:
    """RQ decomposition of (B, 3, 3) ``mat = U @ Q`` (U upper triangular, Q orthogonal) via QR."""
    flip = torch.flip(torch.eye(3, dtype=mat.dtype, device=mat.device), dims=[0])  # the exchange matrix J
    q, r = torch.linalg.qr((flip @ mat).transpose(-1, -2))
    # (J M)^T = q r  =>  M = J r^T q^T = (J r^T J) (J q^T), J r^T J upper triangular, J q^T orthogonal.
    return flip @ r.transpose(-1, -2) @ flip, flip @ q.transpose(-1, -2)


def decompose_projection_matrix(proj: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Splits (B, 3, 4) P = s K [R | t] into K (B, 3, 3) with positive diagonal and K[2, 2] = 1, a
    rotation R (B, 3, 3) with det R = +1 and t (B, 3). The scale s (and its sign) is dropped, so
    any nonzero multiple of P gives the same K, R, t; the RQ split of P[:, :3] is the one of
    ``cv2.decomposeProjectionMatrix``.
    """
    upper, rot = _rq(proj[..., :3])
    # Make the diagonal of K positive: K D, D R with D = diag(sign(K_ii)) (D D = I).
    signs = torch.where(torch.diagonal(upper, dim1=-2, dim2=-1) < 0, -1.0, 1.0).to(upper.dtype)
    upper = upper * signs.unsqueeze(-2)
    rot = rot * signs.unsqueeze(-1)
    scale = upper[..., 2:3, 2:3]  # K[2, 2] = s (> 0)
    # det R = -1 means P was scaled by a negative s: flip R (and t below) to get a rotation.
    det_sign = torch.sign(torch.linalg.det(rot)).unsqueeze(-1)
    intrinsics = upper / scale
    rot = rot * det_sign.unsqueeze(-1)
    trans = torch.linalg.solve(intrinsics, proj[..., 3:]).squeeze(-1) / scale[..., 0] * det_sign
    return intrinsics, rot, trans


def disparity_from_depth(depth, fx, baseline, doffs=0.0):
    """Disparity ``u_left - u_right = fx b / Z - doffs`` (pixels) of points at depth ``Z`` (metres, along
    the optical axis) on a rectified rig (see the module docstring). Elementwise on tensors, arrays or
    floats (broadcast); ``doffs = u0_right - u0_left`` in pixels (Middlebury's ``doffs``)."""
    return fx * baseline / depth - doffs


def depth_from_disparity(disparity, fx, baseline, doffs=0.0, min_disparity: float = 0.0):
    """Depth ``Z = fx b / (d + doffs)`` (units of ``baseline``) from disparity ``d`` (pixels) on a rectified
    rig, the inverse of :func:`disparity_from_depth`. ``d + doffs`` is clamped to at least ``min_disparity``
    when that is > 0 (a loss on predicted disparities keeps a finite, positive depth). Elementwise."""
    total = disparity + doffs
    if min_disparity > 0:
        total = total.clamp(min=min_disparity) if isinstance(total, Tensor) else np.maximum(total, min_disparity)
    return fx * baseline / total


# ----------------------------------------------------------------------------------------- numpy


def rotation_x_np(angle: float) -> np.ndarray:
    """(3, 3) float64 rotation about x by ``angle`` radians (see :func:`rotation_x`)."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def intrinsic_matrix_np(fx: float, fy: float, u0: float, v0: float) -> np.ndarray:
    """(3, 3) float64 K."""
    return np.array([[fx, 0.0, u0], [0.0, fy, v0], [0.0, 0.0, 1.0]])


def projection_matrix_np(intrinsics: np.ndarray, rot: np.ndarray, trans: np.ndarray) -> np.ndarray:
    """(3, 4) float64 ``P = K [R | t]``."""
    return np.asarray(intrinsics, np.float64) @ np.concatenate([rot, np.reshape(trans, (3, 1))], 1)
